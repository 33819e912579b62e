"""Loading out of memory: a cuBLAS/cuDNN workspace failure while the weights go to the device
takes the same "keep the DiT in CPU memory" fallback as PyTorch's own out-of-memory error
(injected failures; the chunk path's equivalent is in test_seedvr_oom.py)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import torch

from seedvr_desktop.engine import device as dev
from seedvr_desktop.engine.seedvr import folder as seedvr_folder
from seedvr_desktop.engine.seedvr.engine import SeedVREngine
from seedvr_desktop.models import loading
from tests.engine.seedvr_tiny import write_tiny_model

LIBRARY_FAILURES = [
    "CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`",
    "cuDNN error: CUDNN_STATUS_ALLOC_FAILED",
    "GET was unable to find an engine to execute this computation",
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("tiny") / "v2")


class _FailFirstLoad:
    """models.loading.load_dit raising `message` on its first call (the weights' way to the
    device), loading for real afterwards; records the devices asked for."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, message: str) -> None:
        self.real, self.message, self.devices = loading.load_dit, message, []
        monkeypatch.setattr(loading, "load_dit", self)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.devices.append(str(kwargs.get("device")))
        if len(self.devices) == 1:
            raise RuntimeError(self.message)
        return self.real(*args, **kwargs)


@pytest.mark.parametrize("message", LIBRARY_FAILURES)
def test_library_allocation_failure_while_loading_is_out_of_memory(
        tiny: Path, monkeypatch: pytest.MonkeyPatch, message: str,
        caplog: pytest.LogCaptureFixture) -> None:
    fail = _FailFirstLoad(monkeypatch, message)
    engine = SeedVREngine("seedvr", model_dir=tiny, device="cpu")
    with caplog.at_level(logging.WARNING):
        engine.load()
    assert engine.model is not None and len(fail.devices) == 2
    assert "keeping it in CPU memory" in caplog.text


def test_load_model_turns_library_failures_into_torch_oom(
        tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _FailFirstLoad(monkeypatch, LIBRARY_FAILURES[0])
    spec = seedvr_folder.resolve_folder(tiny)
    with pytest.raises(RuntimeError) as err:
        seedvr_folder.load_model(spec, device=torch.device("cpu"), dtype=torch.float32)
    assert dev.is_out_of_memory(err.value) and "CUBLAS_STATUS_ALLOC_FAILED" in str(err.value)
    assert isinstance(err.value.__cause__, RuntimeError)


def test_other_loading_errors_pass_unchanged(tiny: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    _FailFirstLoad(monkeypatch, "size mismatch for blocks.0.attn.proj_qkv.vid.weight")
    engine = SeedVREngine("seedvr", model_dir=tiny, device="cpu")
    with pytest.raises(RuntimeError, match="size mismatch") as err:
        engine.load()
    assert not dev.is_out_of_memory(err.value)
