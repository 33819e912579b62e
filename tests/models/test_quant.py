"""Low-precision DiT weights: fp8 safetensors and GGUF stay stored low, dequantise per layer.

The accuracy check runs the parity inputs (official-code vectors) through the DiT loaded from the
same random weights in bf16 and in each low-precision form, and bounds the relative L2 error of
the output against bf16. Measured (seed-0 parity file, both families): fp8 e4m3 ~0.04, e5m2
~0.077, Q8_0 ~0.008, Q4_K ~0.08 (`python bench/gpu_check.py --device cpu --tiny` prints them).
The bounds leave ~1.5x headroom; a layer that dequantises wrongly
(scrambled blocks, a transposed weight) gives ~1.0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from seedvr_desktop.errors import ModelError
from seedvr_desktop.models import gguf_io, quant
from seedvr_desktop.models.dit.config import DiTConfig
from seedvr_desktop.models.loading import load_dit, read_state_dict, weight_file_info
from tests.models.parity_data import load_parity, parity_files

gguf = pytest.importorskip("gguf")

# Relative L2 error of the DiT output vs bf16 weights, upper bounds (see module doc).
TOLERANCES = {"fp8_e4m3fn": 0.06, "fp8_e5m2": 0.12, "Q8_0": 0.013, "Q4_K": 0.12}


def fp8_state(state: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """The community's fp8 conversion: 2-D weights to fp8, everything else as it was."""
    return {k: v.to(dtype) if v.dim() == 2 and k.endswith(".weight") else v
            for k, v in state.items()}


def _family(name: str) -> tuple[DiTConfig, dict[str, Any], dict[str, Any]]:
    data = load_parity(parity_files()[0])[name]
    case = next(iter(data["cases"].values()))
    return DiTConfig.from_official(data["config"]), data["state_dict"], case["inputs"]


def _run(model: torch.nn.Module, inp: dict[str, Any]) -> torch.Tensor:
    with torch.no_grad():
        return model(inp["vid"], inp["txt"], inp["vid_shape"], inp["txt_shape"],
                     inp["timestep"]).float()


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    return float((out - ref).norm() / ref.norm())


# ------------------------------------------------------------------------------ dequantisers
@pytest.mark.parametrize("qtype", ["Q8_0", "Q4_K", "Q5_K", "Q6_K"])
def test_torch_dequantizer_matches_gguf_package(qtype: str) -> None:
    qt = gguf.GGMLQuantizationType[qtype]
    rng = np.random.default_rng(1)
    if qtype in ("Q8_0", "Q4_K"):
        x = rng.standard_normal((8, 512)).astype(np.float32)
        raw = gguf_io.quantize_q4_k(x) if qtype == "Q4_K" else gguf.quants.quantize(x, qt)
    else:  # no quantiser in the package: random blocks with a sane fp16 scale
        _, nbytes = quant.TORCH_BLOCKS[int(qt)]
        blocks = rng.integers(0, 256, (16, nbytes), dtype=np.uint8)
        spots = [0, 2] if qtype == "Q5_K" else [208]
        for s in spots:
            blocks[:, s:s + 2] = np.full((16, 1), 0.01, np.float16).view(np.uint8)
        raw = blocks.reshape(8, -1)
    ref = gguf.quants.dequantize(raw, qt)
    mine = quant.dequantize(torch.from_numpy(raw), int(qt), ref.shape, torch.float32)
    assert np.array_equal(mine.numpy(), ref)


def test_q4_k_quantiser_is_close() -> None:
    x = np.random.default_rng(2).standard_normal((4, 256)).astype(np.float32)
    back = gguf.quants.dequantize(gguf_io.quantize_q4_k(x), gguf.GGMLQuantizationType.Q4_K)
    assert np.sqrt(((back - x) ** 2).mean()) < 0.12


# ------------------------------------------------------------------------------ fp8
def test_fp8_weights_stay_fp8_and_survive_to_dtype() -> None:
    cfg, sd, inp = _family("dit_v2")
    model = load_dit(fp8_state(sd, torch.float8_e4m3fn), cfg, dtype=torch.bfloat16)
    layers = [m for m in model.modules() if isinstance(m, quant.QuantLinear)]
    assert layers and all(m.weight.dtype == torch.float8_e4m3fn for m in layers)
    assert model.dtype == torch.bfloat16
    model.to(torch.bfloat16)  # the engine's moves must not upcast the stored weights
    assert all(m.weight.dtype == torch.float8_e4m3fn for m in layers)
    # RoPE frequencies come from the config, never from the (fp8-rounded) file.
    rope = model.blocks[0].attn.rope.rope.freqs  # type: ignore[union-attr]
    assert rope.dtype == torch.float32 and bool((rope > 0).all())
    assert quant.stored_bytes_per_param(model) < 1.2
    assert _run(model, inp).isfinite().all()


def test_fp8_rope_from_file_is_ignored() -> None:
    cfg, sd, inp = _family("dit_v2")
    fp8 = fp8_state(sd, torch.float8_e4m3fn)
    zeroed = {k: torch.zeros_like(v) if k.endswith("rope.rope.freqs") else v
              for k, v in fp8.items()}
    dropped = {k: v for k, v in fp8.items() if not k.endswith("rope.rope.freqs")}
    a = _run(load_dit(fp8, cfg, dtype=torch.float32), inp)
    assert torch.equal(a, _run(load_dit(zeroed, cfg, dtype=torch.float32), inp))
    assert torch.equal(a, _run(load_dit(dropped, cfg, dtype=torch.float32), inp))


def test_fp8_safetensors_file_round_trip(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    cfg, sd, inp = _family("dit_v1")
    path = tmp_path / "seedvr2_ema_7b_fp8_e4m3fn.safetensors"
    save_file(fp8_state(sd, torch.float8_e4m3fn), str(path))
    info = weight_file_info(path)
    assert info.format == "fp8_e4m3fn safetensors"
    assert 1.0 <= info.bytes_per_param(2) < 1.1
    model = load_dit(path, cfg, dtype=torch.bfloat16)
    ref = _run(load_dit(sd, cfg, dtype=torch.bfloat16), inp)
    assert rel_err(_run(model, inp), ref) < TOLERANCES["fp8_e4m3fn"]


# ------------------------------------------------------------------------------ GGUF
def test_gguf_file_round_trip_with_prefix_and_orig_shape(tmp_path: Path) -> None:
    cfg, sd, inp = _family("dit_v2")
    path = tmp_path / "seedvr2_ema_3b-Q8_0.gguf"
    gguf_io.write_gguf(sd, path, gguf_io.default_qtype("Q8_0"), prefix="model.diffusion_model.")
    info = weight_file_info(path)
    assert info.format == "GGUF Q8_0" and info.bytes_per_param(2) < 1.2
    model = load_dit(path, cfg, dtype=torch.bfloat16)
    layers = [m for m in model.modules() if isinstance(m, quant.QuantLinear)]
    assert layers and all(m.weight.dtype == torch.uint8 for m in layers)
    ref = _run(load_dit(sd, cfg, dtype=torch.bfloat16), inp)
    assert rel_err(_run(model, inp), ref) < TOLERANCES["Q8_0"]
    # Read as a plain state dict (e.g. for conversion) every tensor has its official shape.
    plain = read_state_dict(path)
    assert {k: tuple(v.shape) for k, v in plain.items()} == {
        k: tuple(v.shape) for k, v in sd.items()}


def test_gguf_orig_shape_metadata_is_used(tmp_path: Path) -> None:
    state = {"w": torch.randn(4, 2, 32)}  # 3-D: stored flattened to (4, 64) with orig_shape
    path = tmp_path / "x.gguf"
    gguf_io.write_gguf(state, path, lambda k, t: "Q8_0")
    raw = gguf_io.read_gguf(path)["w"]
    assert isinstance(raw, gguf_io.GGUFTensor) and raw.shape == (4, 2, 32)


def test_damaged_gguf_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "seedvr2_ema_3b-Q4_K_M.gguf"
    path.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 40)
    with pytest.raises(ModelError, match="damaged or not a model file: seedvr2_ema_3b-Q4_K_M"):
        read_state_dict(path)


# ------------------------------------------------------------------------------ accuracy
@pytest.mark.parametrize("family", ["dit_v2", "dit_v1"])
def test_low_precision_output_difference_vs_bf16(family: str, tmp_path: Path) -> None:
    cfg, sd, inp = _family(family)
    ref = _run(load_dit(sd, cfg, dtype=torch.bfloat16), inp)
    errors = {}
    for name, dt in (("fp8_e4m3fn", torch.float8_e4m3fn), ("fp8_e5m2", torch.float8_e5m2)):
        errors[name] = rel_err(_run(load_dit(fp8_state(sd, dt), cfg, dtype=torch.bfloat16),
                                    inp), ref)
    for kind in ("Q8_0", "Q4_K"):
        path = tmp_path / f"{kind}.gguf"
        gguf_io.write_gguf(sd, path, gguf_io.default_qtype(kind))
        errors[kind] = rel_err(_run(load_dit(path, cfg, dtype=torch.bfloat16), inp), ref)
    for name, err in errors.items():
        assert err < TOLERANCES[name], errors


# ------------------------------------------------------------------------------ unsupported
@pytest.mark.parametrize(("file_name", "label"), [
    ("seedvr2_ema_3b_nvfp4.safetensors", "NVFP4"),
    ("seedvr2_ema_3b_mxfp8.safetensors", "MXFP8"),
    ("seedvr2_ema_3b_int8_convrot.safetensors", "INT8-ConvRot"),
])
def test_other_formats_say_not_supported(tmp_path: Path, file_name: str, label: str) -> None:
    from safetensors.torch import save_file

    path = tmp_path / file_name
    save_file({"vid_in.proj.weight": torch.zeros(4, 4, dtype=torch.int8)}, str(path))
    with pytest.raises(ModelError, match=f"{label} weights are not supported yet"):
        read_state_dict(path)
