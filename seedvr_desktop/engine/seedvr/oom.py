"""Which exceptions mean "the device ran out of memory" for the SeedVR retry ladder."""

from __future__ import annotations

# cuBLAS and cuDNN report a failed workspace allocation as a plain RuntimeError; the retry
# with more frugal settings cures them like any other out-of-memory error.
_LIBRARY_ALLOC_FAILURES = (
    "cublas_status_alloc_failed",
    "cudnn_status_alloc_failed",
    "unable to find an engine",  # cuDNN v8/v9 API when no algorithm's workspace fits
)


def is_out_of_memory(exc: BaseException) -> bool:
    """True for PyTorch's out-of-memory errors and cuBLAS/cuDNN allocation failures."""
    from seedvr_desktop.engine import device as dev

    if dev.is_out_of_memory(exc):
        return True
    if isinstance(exc, RuntimeError):
        text = str(exc).lower()
        return any(s in text for s in _LIBRARY_ALLOC_FAILURES)
    return False
