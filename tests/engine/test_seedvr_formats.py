"""A ComfyUI `models/SEEDVR2` folder (several formats side by side) works as --model-dir."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from seedvr_desktop.engine.seedvr.folder import load_model, resolve_folder
from seedvr_desktop.models import gguf_io
from seedvr_desktop.models.quant import QuantLinear
from tests.engine.seedvr_tiny import tiny_state_dicts, write_tiny_model


@pytest.fixture
def comfy_dir(tmp_path: Path) -> Path:
    """Tiny weights under the community's file names; seedvr.json only gives the tiny sizes."""
    src = write_tiny_model(tmp_path / "tiny")
    folder = tmp_path / "SEEDVR2"
    folder.mkdir()
    dit, vae = tiny_state_dicts("v2")
    save_file({k: v.half() for k, v in dit.items()},
              str(folder / "seedvr2_ema_3b_fp16.safetensors"))
    fp8 = {k: v.to(torch.float8_e4m3fn) if v.dim() == 2 and k.endswith(".weight") else v
           for k, v in dit.items()}
    save_file(fp8, str(folder / "seedvr2_ema_3b_fp8_e4m3fn.safetensors"))
    gguf_io.write_gguf(dit, folder / "seedvr2_ema_3b-Q8_0.gguf", gguf_io.default_qtype("Q8_0"),
                       prefix="model.diffusion_model.")
    save_file({k: v.half() for k, v in vae.items()}, str(folder / "ema_vae_fp16.safetensors"))
    for name in ("pos_emb.pt", "neg_emb.pt", "seedvr.json"):
        shutil.copy(src / name, folder / name)
    return folder


@pytest.mark.parametrize(("variant", "fmt"), [
    (None, "fp16 safetensors"), ("fp8_e4m3fn", "fp8_e4m3fn safetensors"), ("Q8_0", "GGUF Q8_0")])
def test_comfyui_folder_variants_load(comfy_dir: Path, variant: str | None, fmt: str) -> None:
    spec = resolve_folder(comfy_dir, preset="seedvr2-3b", variant=variant)
    assert spec.vae_path.name == "ema_vae_fp16.safetensors"
    assert spec.dit_format == fmt
    per_param = spec.dit_bytes_per_param(2)
    assert per_param == pytest.approx(2.0) if variant is None else per_param < 1.2
    model = load_model(spec, device=torch.device("cpu"), dtype=torch.float32)
    quantised = [m for m in model.dit.modules() if isinstance(m, QuantLinear)]
    assert bool(quantised) == (variant is not None)
    assert model.dit.dtype == torch.float32


def test_unknown_variant_names_the_files(comfy_dir: Path) -> None:
    from seedvr_desktop.errors import ModelError

    with pytest.raises(ModelError, match=r"no Q4_K_M file.*seedvr2_ema_3b-Q8_0\.gguf"):
        resolve_folder(comfy_dir, preset="seedvr2-3b", variant="Q4_K_M")
