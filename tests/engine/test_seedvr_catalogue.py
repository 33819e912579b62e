"""Community weight variants (fp16, fp8, GGUF) in the store: download from two repositories
(the variant's DiT, the official VAE and embeddings), SHA-256 from the hub's LFS metadata, a
folder the engine resolves, and the `models` command's --variant. Never the network."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from seedvr_desktop import cli
from seedvr_desktop.engine.seedvr import catalogue, store
from seedvr_desktop.engine.seedvr.folder import _guess_preset_name, resolve_folder
from seedvr_desktop.errors import ModelError, UserError
from tests.engine.test_seedvr_store import FakeHf, _fake_repo, _files

OFFICIAL_3B = "ByteDance-Seed/SeedVR2-3B"
Q8 = catalogue.find_variant("seedvr2-3b", "Q8_0")
assert Q8 is not None


@pytest.fixture
def hub(tmp_path: Path) -> Path:
    root = tmp_path / "hub"
    _fake_repo(root, OFFICIAL_3B, _files("seedvr2_ema_3b.pth"))
    _fake_repo(root, "ByteDance-Seed/SeedVR2-7B", _files("seedvr2_ema_7b.pth"))
    for repo in ("numz/SeedVR2_comfyUI", "AInVFX/SeedVR2_comfyUI"):
        _fake_repo(root, repo, {v.dit_file: b"community " + os.urandom(2000)
                                for v in catalogue.VARIANTS if v.repo_id == repo})
        # The community repositories ship no text embeddings; their VAE is another file.
        (root / repo / "ema_vae_fp16.safetensors").write_bytes(b"other vae")
    return root


@pytest.fixture
def models_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "models"
    monkeypatch.setenv("SEEDVR_DESKTOP_MODELS_DIR", str(folder))
    return folder


@pytest.fixture
def fake_hf(hub: Path, monkeypatch: pytest.MonkeyPatch) -> FakeHf:
    import huggingface_hub

    fake = FakeHf(hub)
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", fake.model_info)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake.hf_hub_download)
    return fake


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_variant_download_takes_the_dit_from_the_community_and_the_rest_official(
        models_dir: Path, fake_hf: FakeHf, hub: Path) -> None:
    folder = store.download("seedvr2-3b", variant="q8_0")  # any letter case
    assert folder == models_dir / "seedvr2-3b-q8_0"
    assert sorted(fake_hf.downloads) == sorted([
        ("AInVFX/SeedVR2_comfyUI", "seedvr2_ema_3b-Q8_0.gguf", fake_hf.commit),
        *((OFFICIAL_3B, f, fake_hf.commit) for f in catalogue.SHARED_FILES)])
    assert not (folder / "seedvr2_ema_3b.pth").exists()  # the official DiT is not fetched
    manifest = store.Manifest.read(folder)
    assert manifest is not None
    assert (manifest.variant, manifest.repo_id) == ("Q8_0", "AInVFX/SeedVR2_comfyUI")
    dit = manifest.files["seedvr2_ema_3b-Q8_0.gguf"]
    assert dit["sha256"] == _sha(hub / "AInVFX/SeedVR2_comfyUI" / "seedvr2_ema_3b-Q8_0.gguf")
    assert dit["verified_against_hub"] is True and "repo_id" not in dit
    vae = manifest.files["ema_vae.pth"]
    assert vae["repo_id"] == OFFICIAL_3B and vae["sha256"] == _sha(hub / OFFICIAL_3B /
                                                                   "ema_vae.pth")
    assert store.is_installed("seedvr2-3b", variant="Q8_0")
    assert not store.is_installed("seedvr2-3b")  # the official model is a different folder
    report = store.verify("seedvr2-3b", variant="Q8_0")
    assert report.passed and len(report.ok) == 4 and report.name == "seedvr2-3b Q8_0"

    # A folder the engine accepts as --model-dir: the variant's DiT, the official VAE and
    # embeddings, the 3B architecture and the one-step recipe.
    spec = resolve_folder(folder)
    assert spec.dit_path.name == "seedvr2_ema_3b-Q8_0.gguf"
    assert (spec.vae_path.name, spec.pos_path.parent) == ("ema_vae.pth", folder)
    assert spec.recipe.family == "v2" and spec.dit_config.vid_dim == 2560
    assert json.loads((folder / "seedvr.json").read_text())["preset"] == "seedvr2-3b"


def test_variant_hash_mismatch_against_lfs_metadata_sets_the_file_aside(
        models_dir: Path, fake_hf: FakeHf) -> None:
    fake_hf.wrong_hash_for = "seedvr2_ema_7b-Q4_K_M.gguf"
    with pytest.raises(ModelError, match=r"Q4_K_M\.gguf: SHA-256"):
        store.download("seedvr2-7b", variant="Q4_K_M")
    folder = models_dir / "seedvr2-7b-q4_k_m"
    assert (folder / "seedvr2_ema_7b-Q4_K_M.gguf.corrupt").exists()
    assert not store.is_installed("seedvr2-7b", variant="Q4_K_M")


def test_variant_links_the_official_files_of_an_installed_model(models_dir: Path,
                                                                fake_hf: FakeHf) -> None:
    store.download("seedvr2-3b")
    fake_hf.downloads.clear()
    store.download("seedvr2-3b", variant="fp16")
    assert [f for _, f, _ in fake_hf.downloads] == ["seedvr2_ema_3b_fp16.safetensors"]
    a, b = models_dir / "seedvr2-3b" / "pos_emb.pt", models_dir / "seedvr2-3b-fp16" / "pos_emb.pt"
    assert a.read_bytes() == b.read_bytes()


def test_unknown_variant_and_offline_instructions(models_dir: Path) -> None:
    with pytest.raises(UserError, match=r"no variant 'Q9'.*Q8_0"):
        store.model_dir("seedvr2-3b", variant="Q9")
    with pytest.raises(UserError, match="no variant"):
        store.get_variant("seedvr-3b", "fp16")  # SeedVR (v1) has no community files
    text = store.offline_instructions("seedvr2-3b", variant="Q8_0")
    assert "AInVFX/SeedVR2_comfyUI/resolve/main/seedvr2_ema_3b-Q8_0.gguf" in text
    assert f"{OFFICIAL_3B}/resolve/main/ema_vae.pth" in text
    assert str(models_dir / "seedvr2-3b-q8_0") in text and "--variant Q8_0" in text


def test_every_variant_is_one_the_folder_loader_picks_and_the_planner_can_size() -> None:
    names = [(v.model, v.name) for v in catalogue.VARIANTS]
    assert len(names) == len(set(names))
    for v in catalogue.VARIANTS:
        assert v.model in catalogue.CATALOG and catalogue.CATALOG[v.model].family == "v2"
        assert _guess_preset_name(v.dit_file) == v.model, v.dit_file
        assert v.dit_file.endswith((".safetensors", ".gguf"))
        assert v.folder_name != v.model and v.folder_name not in catalogue.CATALOG
    q4 = catalogue.find_variant("seedvr2-3b", "Q4_K_M")
    fp8 = catalogue.find_variant("seedvr2-3b", "fp8_e4m3fn")
    fp16 = catalogue.find_variant("seedvr2-3b", "fp16")
    assert q4 and fp8 and fp16
    assert q4.bytes_per_param(2) < fp8.bytes_per_param(2) < Q8.bytes_per_param(2) < 1.1
    assert fp16.bytes_per_param(2) == 2.0 and fp16.bytes_per_param(4) == 4.0


def test_models_command_with_variants(models_dir: Path, hub: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["models", "download", "seedvr2-3b", "--variant", "Q8_0",
                     "--source", str(hub)]) == 0
    out = capsys.readouterr().out
    assert "seedvr2-3b Q8_0: installed in" in out
    assert "used by: seedvr-desktop restore ... --engine seedvr2-3b\n" in out  # no official
    assert cli.main(["models", "list"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert any("--variant Q8_0" in line and "installed" in line for line in listing)
    assert any("--variant Q4_K_M" in line and "installed" not in line for line in listing)
    assert cli.main(["models", "path", "seedvr2-3b", "--variant", "Q8_0"]) == 0
    assert capsys.readouterr().out.strip() == str(models_dir / "seedvr2-3b-q8_0")
    assert cli.main(["models", "verify"]) == 0
    assert "seedvr2-3b Q8_0: seedvr2_ema_3b-Q8_0.gguf: ok" in capsys.readouterr().out
    shutil.copy(hub / OFFICIAL_3B / "neg_emb.pt", models_dir / "seedvr2-3b-q8_0" / "pos_emb.pt")
    assert cli.main(["models", "verify", "seedvr2-3b", "--variant", "Q8_0"]) == 1
    assert "pos_emb.pt: DAMAGED" in capsys.readouterr().out
    assert cli.main(["models", "download", "seedvr2-3b", "--variant", "Q9",
                     "--source", str(hub)]) == 1
    err = capsys.readouterr().err
    assert "no variant 'Q9'" in err and len(err.strip().splitlines()) == 1
