"""Which device and number format a SeedVR job runs on, and what that device can hold.

Why a module of its own: the engine, the memory planner, `--plan` and the model manager all need
the same answers ("is there a GPU?", "how much memory is free?", "is this error an out-of-memory
error?"), and each answer has platform quirks (bf16 support on older GPUs, MPS on Apple, CPU memory
read from the OS) that should be decided once.
"""

from __future__ import annotations

import functools
import logging
import os
import platform
from dataclasses import dataclass

import torch

from seedvr_desktop.errors import UserError
from seedvr_desktop.vocab import PRECISIONS

log = logging.getLogger(__name__)

DEVICE_CHOICES = ("auto", "cuda", "cpu", "mps")
PRECISION_CHOICES = PRECISIONS
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
_NAMES = {v: k for k, v in _DTYPES.items()}


@dataclass(frozen=True)
class DeviceChoice:
    """A resolved device plus the number format the models run in there."""

    device: torch.device
    dtype: torch.dtype
    label: str  # human description, e.g. "cuda:0 (NVIDIA H100 80GB HBM3)"

    @property
    def precision(self) -> str:
        return precision_name(self.dtype)

    @property
    def is_gpu(self) -> bool:
        return self.device.type in ("cuda", "mps")


def mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def gpu_available() -> bool:
    """True when a CUDA or Apple GPU can run the models (what `auto` engine choice asks)."""
    return torch.cuda.is_available() or mps_available()


def select_device(requested: str = "auto") -> torch.device:
    """`auto` prefers CUDA, then MPS, then the CPU; an unavailable explicit one is a UserError."""
    name = (requested or "auto").lower()
    if name not in DEVICE_CHOICES and not name.startswith("cuda:"):
        raise UserError(f"unknown device {requested!r} (choose {', '.join(DEVICE_CHOICES)})")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(
                "--device cuda was asked for but this PyTorch build sees no CUDA GPU "
                f"(torch {torch.__version__}); use --device cpu or install a CUDA build of torch"
            )
        dev = torch.device(name)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UserError(f"{name}: only {torch.cuda.device_count()} CUDA device(s) present")
        return dev if dev.index is not None else torch.device("cuda", torch.cuda.current_device())
    if name == "mps" and not mps_available():
        raise UserError("--device mps was asked for but no Apple GPU (MPS) is available")
    return torch.device(name)


def default_dtype(device: torch.device) -> torch.dtype:
    """bf16 on CUDA (fp16 on GPUs without bf16), fp32 on the CPU, bf16/fp16 on MPS.

    bf16 is what the official inference uses; fp16 is the fallback for pre-Ampere GPUs. The CPU
    default is fp32 because CPU bf16 convolutions are slower than fp32 on most desktop processors.
    """
    if device.type == "cuda":
        return torch.bfloat16 if cuda_bf16_native(device) else torch.float16
    if device.type == "mps":
        return torch.bfloat16 if _mps_bf16_ok() else torch.float16
    return torch.float32


def cuda_bf16_native(device: torch.device | None = None) -> bool:
    """True only where the GPU computes bf16 natively (compute capability 8.0+, Ampere on).

    `torch.cuda.is_bf16_supported()` alone also says yes on Turing/Volta/Pascal, where bf16 is
    emulated: no fused attention kernel exists for it there, so SDPA falls back to the math
    kernel and its full score matrices (slow, and out of memory at 720p).
    """
    if not torch.cuda.is_available():
        return False
    try:
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    except TypeError:  # torch < 2.3 has no including_emulation; ask the capability instead
        major, _minor = torch.cuda.get_device_capability(device)
        return major >= 8


@functools.lru_cache(maxsize=1)
def _mps_bf16_ok() -> bool:
    """bf16 on Apple GPUs needs macOS 14 (Sonoma); on older systems the dtype exists in torch
    but kernels fail, so make and multiply a small tensor rather than trust the dtype."""
    if not mps_available():
        return False
    try:
        x = torch.ones(4, 4, dtype=torch.bfloat16, device="mps")
        return bool(torch.isfinite((x @ x).float().sum()).item())
    except (RuntimeError, TypeError):
        return False


def attention_rounding(device: torch.device) -> torch.dtype | None:
    """What the DiT attention rounds q/k/v to on this device: None = the official bf16 (fp16
    for fp16 models); float32 (no rounding) on an Apple GPU without bf16."""
    if device.type == "mps" and not _mps_bf16_ok():
        return torch.float32
    return None


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so wall-clock timings measure the work and not its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps" and hasattr(torch, "mps"):
        torch.mps.synchronize()


def parse_precision(name: str | None, device: torch.device) -> torch.dtype:
    """`auto|fp32|bf16|fp16` to a dtype, refusing combinations the device cannot run."""
    key = (name or "auto").lower()
    if key == "auto":
        return default_dtype(device)
    if key not in _DTYPES:
        raise UserError(f"unknown precision {name!r} (choose {', '.join(PRECISION_CHOICES)})")
    dtype = _DTYPES[key]
    if device.type == "cuda" and dtype == torch.bfloat16 and not cuda_bf16_native(device):
        raise UserError("this GPU has no native bf16 (it would be emulated, slowly); "
                        "use --precision fp16 or fp32")
    if device.type == "mps" and dtype == torch.bfloat16 and not _mps_bf16_ok():
        raise UserError("this Apple GPU has no bf16 (needs macOS 14); use --precision fp16")
    if device.type == "cpu" and dtype == torch.float16:
        raise UserError("fp16 is not supported on the CPU; use --precision fp32 or bf16")
    return dtype


def precision_name(dtype: torch.dtype) -> str:
    return _NAMES.get(dtype, str(dtype).replace("torch.", ""))


def resolve(device: str = "auto", precision: str | None = "auto") -> DeviceChoice:
    """The device and dtype for a job from the user's `--device` and `--precision` options."""
    dev = select_device(device)
    return DeviceChoice(dev, parse_precision(precision, dev), describe(dev))


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    if device.type == "mps":
        return "mps (Apple GPU)"
    return f"cpu ({platform.machine() or 'unknown'}, {os.cpu_count() or 1} threads)"


def device_key(device: torch.device) -> str:
    """A stable name of the hardware, used to key calibration records (per machine and device)."""
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return f"mps:{platform.machine()}"
    return f"cpu:{platform.machine()}:{os.cpu_count() or 1}:{platform.node()}"


# ----------------------------------------------------------------------------------- memory
def total_memory(device: torch.device) -> int:
    """Bytes of memory the device has in all (host RAM for the CPU and for MPS unified memory)."""
    if device.type == "cuda":
        return int(torch.cuda.get_device_properties(device).total_memory)
    return _host_memory()[0]


def free_memory(device: torch.device) -> int:
    """Bytes the job may still allocate on the device right now.

    CUDA: driver-reported free memory plus what PyTorch's caching allocator holds but does not
    use (that is free to us). CPU/MPS: the OS's "available" figure (free plus reclaimable cache).
    """
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        reserved = torch.cuda.memory_reserved(device)
        allocated = torch.cuda.memory_allocated(device)
        return int(free + max(reserved - allocated, 0))
    return _host_memory()[1]


def _host_memory() -> tuple[int, int]:
    """(total, available) host RAM in bytes; conservative guesses where the OS does not say."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in fh if ":" in line}
        total = info.get("MemTotal", 0)
        return total, info.get("MemAvailable", info.get("MemFree", total // 2))
    except (OSError, ValueError, IndexError):
        pass
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        total = int(pages * size)
        try:
            avail = int(os.sysconf("SC_AVPHYS_PAGES") * size)
        except (ValueError, OSError):
            avail = total // 2
        return total, avail
    except (ValueError, OSError, AttributeError):
        return 8 << 30, 4 << 30


def empty_cache(device: torch.device) -> None:
    """Return cached blocks to the driver after an OOM so the retry sees the real free memory."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps" and hasattr(torch, "mps"):
        torch.mps.empty_cache()


def is_out_of_memory(exc: BaseException) -> bool:
    """True for the several ways PyTorch reports exhausted memory on CUDA, MPS and the CPU."""
    oom_type = getattr(torch, "OutOfMemoryError", None) or getattr(
        torch.cuda, "OutOfMemoryError", None
    )
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    if isinstance(exc, MemoryError):
        return True
    if isinstance(exc, RuntimeError):
        text = str(exc).lower()
        return any(
            s in text
            for s in ("out of memory", "can't allocate memory", "not enough memory",
                      "failed to allocate", "mps backend out of memory")
        )
    return False
