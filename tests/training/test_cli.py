from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.training.cli_runner import main


def test_prepare_run_export_through_the_cli(tmp_path: Path, tiny_model: Path, data_dir: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    cache, run, out, prev = (tmp_path / n for n in ("cache", "run", "model", "prev"))
    assert main(["train", "prepare", str(data_dir), "--model-dir", str(tiny_model),
                 "--cache", str(cache), "--size", "32", "--frames", "5", "--per-clip", "1",
                 "--preview", str(prev)]) == 0
    assert "3 samples" in capsys.readouterr().out
    pngs = sorted(prev.glob("*.png"))
    assert len(pngs) == 3
    from seedvr_desktop.media.images import read_image

    assert read_image(pngs[0]).shape == (32, 64, 3)  # LQ | HQ side by side
    cfg = tmp_path / "t.toml"
    cfg.write_text("batch = 2\nlr = 1e-3\n[[stages]]\nframes = 5\nsize = 32\nsteps = 3\n")
    assert main(["train", "run", "--model-dir", str(tiny_model), "--cache", str(cache),
                 "--out", str(run), "--config", str(cfg), "--lora", "2", "--cpu"]) == 0
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert main(["train", "export", str(run), "--out", str(out), "--merge-lora"]) == 0
    assert (out / "dit.safetensors").is_file() and (out / "seedvr.json").is_file()


@pytest.mark.parametrize("extra, needle", [
    (["--steps", "0"], "must be at least 1"),
    (["--frames", "4"], "4n+1"),
    (["--size", "64"], "no samples in the cache"),
])
def test_run_errors_are_one_line(tmp_path: Path, tiny_model: Path, cache_dir: Path,
                                 capsys: pytest.CaptureFixture[str], extra: list[str],
                                 needle: str) -> None:
    code = main(["train", "run", "--model-dir", str(tiny_model), "--cache", str(cache_dir),
                 "--out", str(tmp_path / "r"), "--cpu", *extra])
    err = capsys.readouterr().err
    assert code == 1
    assert needle in err and err.count("\n") == 1


def test_config_unknown_key_and_bad_cache(tmp_path: Path, tiny_model: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "t.toml"
    cfg.write_text("learning_rate = 1\n")
    assert main(["train", "run", "--model-dir", str(tiny_model), "--cache", str(tmp_path),
                 "--out", str(tmp_path / "r"), "--config", str(cfg)]) == 1
    assert "unknown key 'learning_rate'" in capsys.readouterr().err
    assert main(["train", "run", "--model-dir", str(tiny_model), "--cache", str(tmp_path),
                 "--out", str(tmp_path / "r")]) == 1
    assert "not a training cache" in capsys.readouterr().err


def test_a_second_run_on_a_folder_is_refused_and_a_resume_clears_killed_writes(
        tmp_path: Path, tiny_model: Path, cache_dir: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    from seedvr_desktop.cli_train import RUN_LOCK
    from seedvr_desktop.fsutil import ExclusiveLock
    from tests.training.conftest import FRAMES, SIZE

    run = tmp_path / "r"
    base = ["train", "run", "--model-dir", str(tiny_model), "--cache", str(cache_dir),
            "--out", str(run), "--frames", str(FRAMES), "--size", str(SIZE), "--batch", "1",
            "--cpu"]
    args = [*base, "--steps", "2"]
    run.mkdir()
    with ExclusiveLock(run / RUN_LOCK):  # another `train run` holds the folder
        assert main(args) == 1
    err = capsys.readouterr().err
    assert "another training run is writing to" in err and err.count("\n") == 1
    assert main(args) == 0
    # What safetensors' own atomic write leaves when killed mid-write, and a look-alike of ours.
    orphan, kept = run / ".tmpAb12Cd", run / ".tmp-notes"
    orphan.write_bytes(b"half a checkpoint")
    kept.write_text("mine")
    assert main([*base, "--steps", "3", "--resume"]) == 0
    assert not orphan.exists() and kept.exists()
    assert not (run / RUN_LOCK).exists()
