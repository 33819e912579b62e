from __future__ import annotations

from pathlib import Path

import pytest
import torch

from seedvr_desktop.errors import ModelError, UserError
from seedvr_desktop.models.loading import read_state_dict
from seedvr_desktop.training.checkpoint import CHECKPOINT, load_checkpoint
from seedvr_desktop.training.config import Stage, TrainConfig
from seedvr_desktop.training.export import export
from seedvr_desktop.training.lora import adapter_tensors, add_lora, apply_lora_file, save_adapter
from seedvr_desktop.training.model_io import load_for_training, load_model, resolve_folder
from seedvr_desktop.training.session import build_trainer
from tests.training.conftest import FRAMES, SIZE

CPU = torch.device("cpu")


def _cfg(**kw: object) -> TrainConfig:
    base = {"stages": (Stage(FRAMES, SIZE, 4),), "batch": 2, "lr": 5e-3, "warmup_steps": 0,
            "ema_decay": 0.5, "ema_warmup": False}
    base.update(kw)
    return TrainConfig(**base).validate()  # type: ignore[arg-type]


def _probe(dit: torch.nn.Module) -> torch.Tensor:
    gen = torch.Generator().manual_seed(3)
    vid = torch.randn(2 * 4 * 4, 33, generator=gen)
    txt = torch.randn(7, 32, generator=gen)
    dit.set_exact_attention(False)
    dit.set_attention_rounding(torch.float32)
    with torch.no_grad():
        return dit(vid, txt, torch.tensor([[2, 4, 4]]), torch.tensor([[7]]), torch.tensor([400.]))


def test_full_finetune_export_loads_in_the_engine(tmp_path: Path, tiny_model: Path,
                                                  cache_dir: Path) -> None:
    build_trainer(tiny_model, cache_dir, tmp_path / "run", _cfg(), device=CPU).run()
    out = export(tmp_path / "run", tmp_path / "exported")
    spec = resolve_folder(out)
    assert spec.dit_path.name == "dit.safetensors" and spec.vae_path.name == "vae.safetensors"
    loaded = load_model(spec, device=CPU, dtype=torch.float32)
    ema = load_checkpoint(tmp_path / "run" / CHECKPOINT).ema
    for name, p in loaded.dit.named_parameters():
        assert torch.equal(p.detach(), ema[name]), name
    base = read_state_dict(resolve_folder(tiny_model).dit_path)
    assert any(not torch.equal(base[k], ema[k]) for k in ema)
    with pytest.raises(UserError, match="not empty"):
        export(tmp_path / "run", out)


def test_lora_trains_only_the_adapter_and_merges(tmp_path: Path, tiny_model: Path,
                                                 cache_dir: Path) -> None:
    trainer = build_trainer(tiny_model, cache_dir, tmp_path / "run", _cfg(lora_rank=4),
                            device=CPU)
    names = [n for n, _ in trainer.named]
    assert names and all(".lora_" in n for n in names)
    assert any("attn.proj_qkv" in n for n in names) and any("mlp." in n for n in names)
    trainer.run()
    ck = load_checkpoint(tmp_path / "run" / CHECKPOINT)
    assert set(ck.model) == set(names)

    merged = export(tmp_path / "run", tmp_path / "merged", merge_lora=True)
    plain = export(tmp_path / "run", tmp_path / "plain")
    assert (plain / "lora.safetensors").is_file() and not (merged / "lora.safetensors").exists()
    base_dit = load_model(resolve_folder(plain), device=CPU, dtype=torch.float32).dit
    merged_dit = load_model(resolve_folder(merged), device=CPU, dtype=torch.float32).dit
    before = _probe(base_dit)
    assert not torch.allclose(before, _probe(merged_dit))
    # The restore engine's future `--lora FILE`: merging the file gives the merged export.
    apply_lora_file(base_dit, plain / "lora.safetensors")
    torch.testing.assert_close(_probe(base_dit), _probe(merged_dit), rtol=1e-5, atol=1e-5)


def test_adapter_file_matches_peft_forward(tmp_path: Path, tiny_model: Path) -> None:
    peft_dit = load_for_training(tiny_model, device=CPU).loaded.dit
    add_lora(peft_dit, 2, 4.0)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in peft_dit.named_parameters():
            if ".lora_" in name:
                p.copy_(0.05 * torch.randn(p.shape, generator=gen))
    state = {n: p.detach() for n, p in peft_dit.named_parameters() if ".lora_" in n}
    path = save_adapter(tmp_path / "a.safetensors", adapter_tensors(state), 2, 4.0)
    plain = load_for_training(tiny_model, device=CPU).loaded.dit
    apply_lora_file(plain, path)
    torch.testing.assert_close(_probe(plain), _probe(peft_dit), rtol=1e-5, atol=1e-5)
    with pytest.raises(ModelError, match="not a"):
        apply_lora_file(plain, resolve_folder(tiny_model).pos_path)


def test_export_disk_full_leaves_no_folder(tmp_path: Path, tiny_model: Path, cache_dir: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    import seedvr_desktop.training.export as export_mod

    build_trainer(tiny_model, cache_dir, tmp_path / "run", _cfg(), device=CPU).run()
    real = export_mod.save_safetensors
    calls = {"n": 0}

    def full(state: dict, path: Path, metadata: dict | None = None) -> Path:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(state, path, metadata)

    monkeypatch.setattr(export_mod, "save_safetensors", full)
    with pytest.raises(UserError, match="No space left"):
        export(tmp_path / "run", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no model, no hidden temp


def test_an_export_removes_the_temp_folder_a_killed_one_left(tmp_path: Path, tiny_model: Path,
                                                              cache_dir: Path) -> None:
    from seedvr_desktop.fsutil import sibling_name

    build_trainer(tiny_model, cache_dir, tmp_path / "run", _cfg(), device=CPU).run()
    stale = sibling_name(tmp_path / "out", "export")  # what a kill -9 mid-export leaves
    stale.mkdir()
    (stale / "dit.safetensors").write_bytes(b"half a model")
    other = tmp_path / ".out-notes.export"  # not one of ours: left alone
    other.mkdir()
    export(tmp_path / "run", tmp_path / "out")
    assert not stale.exists() and other.exists()
    assert (tmp_path / "out" / "dit.safetensors").is_file()
