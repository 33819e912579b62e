"""Model folders: official files and seedvr.json overrides load; bad folders give one clear
ModelError naming the problem."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from seedvr_desktop.engine.seedvr.folder import (
    RECIPES,
    _dit_config,
    load_embedding,
    load_model,
    resolve_folder,
)
from seedvr_desktop.errors import ModelError
from seedvr_desktop.models.dit.config import DiTConfig
from tests.engine.seedvr_tiny import TINY_DIT_V2, tiny_state_dicts, write_tiny_model

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def v2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("models") / "v2")


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_folder_resolves_files_config_and_recipe(v2_dir: Path) -> None:
    spec = resolve_folder(v2_dir)
    assert spec.dit_path.name == "seedvr2_ema_3b.pth" and spec.vae_path.name == "ema_vae.pth"
    assert spec.dit_config.family == "v2" and spec.dit_config.vid_dim == 128
    assert spec.dit_config.num_layers == 2 and spec.vae_config.block_out_channels == (8, 8, 16, 16)
    assert spec.recipe == RECIPES["v2"]  # family v2: one step, no guidance
    model = load_model(spec, device=CPU, dtype=torch.float32)
    assert model.pos_emb.shape == (7, 32) and model.pos_emb.dtype == torch.float32
    assert model.neg_emb is None  # not needed without guidance
    # The weights are the file's, not a fresh initialisation.
    saved = torch.load(spec.dit_path, weights_only=True)
    assert torch.equal(model.dit.state_dict()["vid_in.proj.weight"], saved["vid_in.proj.weight"])


def test_json_recipe_overrides(tmp_path: Path, v2_dir: Path) -> None:
    folder = _copy(v2_dir, tmp_path / "m")
    meta = json.loads((folder / "seedvr.json").read_text())
    meta.update(family="seedvr", steps=7, cfg_scale=4.0)
    (folder / "seedvr.json").write_text(json.dumps(meta))
    spec = resolve_folder(folder)
    assert (spec.recipe.family, spec.recipe.steps, spec.recipe.cfg_scale) == ("v1", 7, 4.0)
    assert spec.recipe.cond_noise_scale == RECIPES["v1"].cond_noise_scale
    model = load_model(spec, device=CPU, dtype=torch.float32)
    assert model.neg_emb is not None and model.neg_emb.shape == (5, 32)


def test_depth_override_re_expands_per_layer_lists() -> None:
    base = DiTConfig.from_official(TINY_DIT_V2)
    cfg = _dit_config(base, {"num_layers": 3, "mm_layers": 2}, Path("x"))
    assert cfg.num_layers == 3 and len(cfg.window_method) == 3 and cfg.mm_layers == 2


def test_safetensors_form_loads_the_same_weights(tmp_path: Path, v2_dir: Path) -> None:
    from seedvr_desktop.models.loading import read_state_dict, save_safetensors

    folder = tmp_path / "st"
    folder.mkdir()
    save_safetensors(read_state_dict(v2_dir / "seedvr2_ema_3b.pth"), folder / "dit.safetensors")
    save_safetensors(read_state_dict(v2_dir / "ema_vae.pth"), folder / "vae.safetensors")
    for name in ("pos_emb.pt", "neg_emb.pt", "seedvr.json"):
        shutil.copy(v2_dir / name, folder / name)
    a = load_model(resolve_folder(v2_dir), device=CPU, dtype=torch.float32)
    b = load_model(resolve_folder(folder), device=CPU, dtype=torch.float32)
    for key, value in a.dit.state_dict().items():
        assert torch.equal(value, b.dit.state_dict()[key]), key
    for key, value in a.vae.state_dict().items():
        assert torch.equal(value, b.vae.state_dict()[key]), key


def test_truncated_checkpoint_is_a_clear_error(tmp_path: Path, v2_dir: Path) -> None:
    folder = _copy(v2_dir, tmp_path / "m")
    data = (folder / "seedvr2_ema_3b.pth").read_bytes()
    (folder / "seedvr2_ema_3b.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match=r"damaged or not a model file: seedvr2_ema_3b\.pth"
                       ) as err:
        load_model(resolve_folder(folder), device=CPU, dtype=torch.float32)
    # Never PyTorch's advice to load with weights_only=False (issue 14 item 16).
    assert "weights_only" not in str(err.value) and "\n" not in str(err.value)


def test_checkpoint_of_the_other_family_is_a_clear_error(tmp_path: Path, v2_dir: Path) -> None:
    folder = _copy(v2_dir, tmp_path / "m")
    v1_state, _ = tiny_state_dicts("v1")
    torch.save(v1_state, folder / "seedvr2_ema_3b.pth")
    with pytest.raises(ModelError) as err:
        load_model(resolve_folder(folder), device=CPU, dtype=torch.float32)
    msg = str(err.value)
    assert "missing key" in msg and "7B family" in msg and "\n" not in msg


def test_vae_file_in_the_dit_slot_is_a_clear_error(tmp_path: Path, v2_dir: Path) -> None:
    folder = _copy(v2_dir, tmp_path / "m")
    shutil.copy(folder / "ema_vae.pth", folder / "seedvr2_ema_3b.pth")
    with pytest.raises(ModelError, match="VAE file, not a DiT"):
        load_model(resolve_folder(folder), device=CPU, dtype=torch.float32)


@pytest.mark.parametrize(
    ("remove", "message"),
    [("ema_vae.pth", "no VAE checkpoint"), ("pos_emb.pt", "no text embedding"),
     ("seedvr2_ema_3b.pth", "no DiT checkpoint")],
)
def test_missing_files_are_named(tmp_path: Path, v2_dir: Path, remove: str, message: str) -> None:
    folder = _copy(v2_dir, tmp_path / "m")
    (folder / remove).unlink()
    with pytest.raises(ModelError, match=message):
        resolve_folder(folder)


def test_bad_json_and_bad_embedding(tmp_path: Path, v2_dir: Path) -> None:
    folder = _copy(v2_dir, tmp_path / "m")
    meta = json.loads((folder / "seedvr.json").read_text())
    (folder / "seedvr.json").write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        resolve_folder(folder)
    (folder / "seedvr.json").write_text(json.dumps({**meta, "family": "v3"}))
    with pytest.raises(ModelError, match="family must be"):
        resolve_folder(folder)
    torch.save(torch.zeros(4, 16), folder / "bad.pt")
    with pytest.raises(ModelError, match=r"expects \(length, 32\)"):
        load_embedding(folder / "bad.pt", 32)
    torch.save({"a": torch.zeros(2, 32), "b": torch.zeros(2, 32)}, folder / "two.pt")
    with pytest.raises(ModelError, match="does not hold a text embedding"):
        load_embedding(folder / "two.pt", 32)


def test_guidance_without_negative_embedding_is_refused(tmp_path: Path, v2_dir: Path) -> None:
    folder = _copy(v2_dir, tmp_path / "m")
    meta = json.loads((folder / "seedvr.json").read_text())
    meta["family"] = "v1"
    (folder / "seedvr.json").write_text(json.dumps(meta))
    (folder / "neg_emb.pt").unlink()
    with pytest.raises(ModelError, match=r"no neg_emb\.pt"):
        resolve_folder(folder)


def test_unknown_folder_without_hints(tmp_path: Path, v2_dir: Path) -> None:
    folder = _copy(v2_dir, tmp_path / "m")
    (folder / "seedvr.json").unlink()
    (folder / "seedvr2_ema_3b.pth").rename(folder / "dit.safetensors")
    with pytest.raises(ModelError, match="cannot tell which model"):
        resolve_folder(folder)


@pytest.mark.parametrize(
    ("dit_file", "dim", "steps", "cfg"),
    [("seedvr2_ema_3b.pth", 2560, 1, 1.0), ("seedvr_ema_7b.pth", 3072, 50, 6.5),
     ("seedvr2_ema_7b_sharp.pth", 3072, 1, 1.0)],
)
def test_official_file_names_select_the_preset(tmp_path: Path, dit_file: str, dim: int,
                                               steps: int, cfg: float) -> None:
    for name in (dit_file, "ema_vae.pth", "pos_emb.pt", "neg_emb.pt"):
        (tmp_path / name).write_bytes(b"x")  # resolving reads no weights
    spec = resolve_folder(tmp_path)
    assert spec.dit_config.vid_dim == dim and spec.dit_config.txt_in_dim == 5120
    assert (spec.recipe.steps, spec.recipe.cfg_scale) == (steps, cfg)
    assert spec.vae_config.block_out_channels == (128, 256, 512, 512)
