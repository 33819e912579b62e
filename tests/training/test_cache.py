from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import pytest
import torch

from seedvr_desktop.errors import ModelError, UserError
from seedvr_desktop.training.cache import MANIFEST, LatentCache
from seedvr_desktop.training.session import run_prepare
from tests.clips import make_text_file, make_video
from tests.engine.seedvr_tiny import write_tiny_model
from tests.training.conftest import FRAMES, SIZE

CPU = torch.device("cpu")


def test_prepared_cache_has_clips_and_images(cache_dir: Path) -> None:
    manifest = json.loads((cache_dir / MANIFEST).read_text())
    assert manifest["buckets"].keys() == {"2x4x4", "1x4x4"}
    assert len(manifest["buckets"]["1x4x4"]) == 1  # the still image
    assert len(manifest["buckets"]["2x4x4"]) == 4  # two clips, two samples each
    assert len(manifest["done_sources"]) == 3
    entry = manifest["samples"][0]
    assert {"source", "degradation_seed", "degradation", "shard", "latent"} <= entry.keys()
    cache = LatentCache(cache_dir, manifest["model"])
    s = cache.load(0)
    assert s.hq.shape == (2, 4, 4, 16) and s.lq.shape == s.hq.shape
    assert (s.hq_std > 0).all()
    assert not torch.equal(s.hq, s.lq)  # the condition is a degraded version
    assert sorted(cache.eligible(FRAMES, SIZE)) == list(range(5))
    assert cache.eligible(FRAMES, 64) == []


def test_prepare_is_resumable_and_deterministic(tmp_path: Path, tiny_model: Path,
                                                data_dir: Path, cache_dir: Path) -> None:
    cache = tmp_path / "c"
    first = sorted(data_dir.rglob("*.mp4"))
    run_prepare(first, tiny_model, cache, shapes=[(FRAMES, SIZE)], per_clip=2, device=CPU)
    partial = json.loads((cache / MANIFEST).read_text())
    assert len(partial["samples"]) == 2
    # A second run over everything adds only what is missing.
    run_prepare([data_dir], tiny_model, cache, shapes=[(FRAMES, SIZE)], per_clip=2, device=CPU)
    again = json.loads((cache / MANIFEST).read_text())
    assert len(again["samples"]) == 5
    assert again["samples"][:2] == partial["samples"]
    # Same seed, same sources: the same degradations and latents as the shared cache.
    ref = LatentCache(cache_dir)
    mine = LatentCache(cache)
    by_key = {(e.source, e.start, e.frames): i for i, e in enumerate(ref.entries)}
    for i, e in enumerate(mine.entries):
        j = by_key[(e.source, e.start, e.frames)]
        assert e.degradation_seed == ref.entries[j].degradation_seed
        assert torch.equal(mine.load(i).lq, ref.load(j).lq)
    with pytest.raises(UserError, match="other settings"):
        run_prepare([data_dir], tiny_model, cache, shapes=[(FRAMES, SIZE)], seed=5, device=CPU)


def test_cache_from_another_model_is_refused(tmp_path: Path, cache_dir: Path) -> None:
    from seedvr_desktop.training.model_io import fingerprint, resolve_folder

    other = write_tiny_model(tmp_path / "other", seed=9)
    with pytest.raises(ModelError, match="another model") as info:
        LatentCache(cache_dir, fingerprint(resolve_folder(other)))
    assert "\n" not in str(info.value)


def test_bad_data_is_one_line_error(tmp_path: Path, tiny_model: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="no clips or images"):
        run_prepare([empty], tiny_model, tmp_path / "c1", shapes=[(5, 32)], device=CPU)
    with pytest.raises(UserError, match="not found"):
        run_prepare([tmp_path / "nope"], tiny_model, tmp_path / "c2", shapes=[(5, 32)])
    junk = tmp_path / "junk"
    junk.mkdir()
    make_text_file(junk / "fake.mp4")
    good = Path(make_video(tmp_path / "ok.mp4", frames=8, size=(32, 32)) or tmp_path / "ok.mp4")
    (junk / "broken.mp4").write_bytes(good.read_bytes()[:300])  # truncated download
    with pytest.raises(UserError, match="no usable samples"):
        run_prepare([junk], tiny_model, tmp_path / "c3", shapes=[(5, 32)], device=CPU)
    assert not (tmp_path / "c3" / "shard-00000.safetensors").exists()


def test_disk_full_leaves_nothing_half_written(tmp_path: Path, tiny_model: Path,
                                               data_dir: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import safetensors.torch

    real = safetensors.torch.save_file
    calls = {"n": 0}

    def full(tensors: dict, filename: str, metadata: dict | None = None) -> None:
        calls["n"] += 1
        if calls["n"] > 1:  # text embeddings fit, the first shard does not
            real(tensors, filename, metadata)
            with open(filename, "r+b") as fh:
                fh.truncate(10)
            raise OSError(errno.ENOSPC, "No space left on device")
        real(tensors, filename, metadata)

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    cache = tmp_path / "c"
    with pytest.raises(UserError, match="No space left") as info:
        run_prepare([data_dir], tiny_model, cache, shapes=[(5, 32)], device=CPU)
    assert "\n" not in str(info.value)
    names = sorted(p.name for p in cache.iterdir())
    assert names == ["text.safetensors"]  # no shard, no temp, no manifest naming a lost shard
    shutil.rmtree(cache)


def test_prepare_removes_temps_of_a_killed_run(tmp_path: Path, tiny_model: Path,
                                               data_dir: Path) -> None:
    cache = tmp_path / "c"
    cache.mkdir()
    stale = cache / ".shard-00000.safetensors.0123abcd.tmp"
    stale.write_bytes(b"half")
    run_prepare([data_dir / "sub" / "still.png"], tiny_model, cache, shapes=[(5, 32)],
                device=CPU)
    assert not stale.exists()
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]
