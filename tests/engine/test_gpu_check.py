"""`bench/gpu_check.py` runs end to end on the CPU with tiny models, so it works when a GPU comes;
and the `cuda`-marked checks it runs (skipped without a CUDA GPU)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO_ROOT

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_gpu_check_runs_on_cpu_tiny(tmp_path: Path) -> None:
    out = tmp_path / "gpu_check.json"
    proc = subprocess.run(
        [sys.executable, "bench/gpu_check.py", "--device", "cpu", "--tiny", "--skip-pytest",
         "--out", str(out)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["deterministic"] is True
    assert {r["format"] for r in report["runs"]} == {"bf16", "fp8_e4m3fn", "Q8_0"}
    assert all(r["finite"] and r["stages"]["dit"] > 0 for r in report["runs"])
    assert "rel L2 vs bf16" in proc.stdout


@pytest.mark.cuda
@cuda
def test_fp8_linear_upcasts_per_layer_on_the_device() -> None:
    from seedvr_desktop.models.quant import QuantLinear

    dev = torch.device("cuda")
    w = torch.randn(256, 128, device=dev)
    layer = QuantLinear(w.to(torch.float8_e4m3fn), (256, 128), kind="fp8",
                        bias=torch.zeros(256, device=dev, dtype=torch.bfloat16))
    layer.to(dev, torch.bfloat16)
    assert layer.weight.dtype == torch.float8_e4m3fn and layer.weight.is_cuda
    x = torch.randn(4, 128, device=dev, dtype=torch.bfloat16)
    before = torch.cuda.memory_allocated(dev)
    y = layer(x)
    assert y.dtype == torch.bfloat16 and y.is_cuda
    ref = x.float() @ w.to(torch.float8_e4m3fn).float().T
    assert torch.allclose(y.float(), ref, atol=0.1, rtol=0.05)
    # The upcast copy is freed after the call: only the output stays allocated.
    assert torch.cuda.memory_allocated(dev) - before <= y.numel() * y.element_size() + 4096


@pytest.mark.cuda
@cuda
def test_gguf_dequantises_on_the_device() -> None:
    from seedvr_desktop.models.gguf_io import quantize_q8_0
    from seedvr_desktop.models.quant import dequantize

    w = torch.randn(64, 256, device="cuda")
    q = quantize_q8_0(w)
    assert q.data.is_cuda
    back = dequantize(q.data, q.qtype, q.shape, torch.bfloat16)
    assert back.is_cuda and back.dtype == torch.bfloat16
    assert (back.float() - w).abs().max() < 0.05


@pytest.mark.cuda
@cuda
def test_dit_mixed_devices_and_dtypes_on_cuda() -> None:
    from seedvr_desktop.engine.device import cuda_bf16_native, default_dtype
    from seedvr_desktop.models.dit.config import DiTConfig
    from seedvr_desktop.models.loading import build_dit, load_dit
    from tests.engine.seedvr_tiny import TINY_DIT_V2

    dev = torch.device("cuda")
    dtype = default_dtype(dev)
    assert dtype == (torch.bfloat16 if cuda_bf16_native(dev) else torch.float16)
    cfg = DiTConfig.from_official(TINY_DIT_V2)
    state = build_dit(cfg, device="cpu").state_dict()
    fp8 = {k: v.to(torch.float8_e4m3fn) if v.dim() == 2 and k.endswith(".weight") else v
           for k, v in state.items()}
    model = load_dit(fp8, cfg, dtype=dtype, device=dev)
    vid = torch.randn(1 * 4 * 4, 33)  # CPU float32 inputs: the model moves/casts them
    txt = torch.randn(3, 32)
    out = model(vid.to(dev), txt.to(dev), torch.tensor([[1, 4, 4]], device=dev),
                torch.tensor([[3]], device=dev), torch.tensor([500.0], device=dev))
    assert out.is_cuda and out.dtype == dtype and bool(out.isfinite().all())
