"""End to end: `restore --engine seedvr2-3b` through the CLI with a tiny model installed in the
models folder, and a long clip restored chunk by chunk that resumes after being stopped."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from seedvr_desktop import cli
from seedvr_desktop.engine import pipeline
from seedvr_desktop.engine import plan as job_planning
from seedvr_desktop.engine.base import ChunkContext
from seedvr_desktop.engine.job import RestoreJob, SizeRule
from seedvr_desktop.engine.registry import register_engine
from seedvr_desktop.engine.seedvr.engine import SeedVREngine, seedvr_caps
from seedvr_desktop.media.codecs import EncodeSettings
from tests.clips import make_video
from tests.engine.seedvr_tiny import write_tiny_model

CALLS: list[int] = []  # chunk index of every restore_chunk call
STOP_AFTER: list[tuple[int, threading.Event]] = []



def _decode(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def test_restore_with_named_engine_through_the_cli(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    models = tmp_path / "models"
    write_tiny_model(models / "seedvr2-3b")  # official file names + a tiny seedvr.json
    monkeypatch.setenv("SEEDVR_DESKTOP_MODELS_DIR", str(models))
    clip = make_video(tmp_path / "in.mp4", frames=11, size=(48, 32))
    outs = []
    for name in ("a.mkv", "b.mkv"):
        out = tmp_path / name
        rc = cli.main(["restore", str(clip.path), "-o", str(out), "--engine", "seedvr2-3b",
                       "--scale", "2", "--seed", "5", "--codec", "ffv1"])
        assert rc == 0 and out.exists()
        outs.append(_decode(out))
    a, b = outs
    assert len(a) == 11 and a[0].shape == (64, 96, 3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))  # same seed, same pictures


class _CountingEngine(SeedVREngine):
    def restore_chunk(self, frames: np.ndarray, context: ChunkContext,
                      cancel: threading.Event | None = None) -> np.ndarray:
        out = super().restore_chunk(frames, context, cancel)
        CALLS.append(context.index)
        for index, event in STOP_AFTER:
            if context.index == index:
                event.set()
        return out


@pytest.fixture(scope="module")
def chunked_engine(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SeedVR engine with short chunks (9 frames, 4 cross-faded) so a short clip has many."""
    folder = write_tiny_model(tmp_path_factory.mktemp("tiny") / "m")
    caps = seedvr_caps("seedvr-test-chunks", "test")
    caps = type(caps)(**{**caps.__dict__, "chunk_length": 9, "overlap": 4})
    register_engine("seedvr-test-chunks",
                    lambda **o: _CountingEngine("seedvr", model_dir=folder, device="cpu"),
                    caps, lambda: True, priority=-1)
    return "seedvr-test-chunks"


def _job(src: Path, out: Path, engine: str, **kw: Any) -> RestoreJob:
    return RestoreJob(src, out, engine=engine, size=SizeRule(scale=1.0), seed=11,
                      encode=EncodeSettings(codec="ffv1"), **kw)


def test_long_clip_restores_chunkwise_and_resumes_identically(
        tmp_path: Path, chunked_engine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(job_planning, "SEGMENT_SECONDS_GENERATIVE", 0.2)  # segments of 5 frames
    clip = make_video(tmp_path / "long.mp4", frames=41, size=(64, 48))
    full = tmp_path / "full.mkv"
    CALLS.clear()
    events = list(pipeline.run_restore(_job(clip.path, full, chunked_engine)))
    assert events[-1].stage == "done"
    chunks = len(CALLS)
    assert chunks >= 7  # 41 frames in 9-frame chunks overlapping by 4
    frames = _decode(full)
    assert len(frames) == 41 and frames[0].shape == (48, 64, 3)

    out = tmp_path / "resumed.mkv"
    stop = threading.Event()
    CALLS.clear()
    STOP_AFTER.append((3, stop))
    try:
        events = list(pipeline.run_restore(_job(clip.path, out, chunked_engine), stop))
    finally:
        STOP_AFTER.clear()
    assert events[-1].stage == "cancelled" and not out.exists()
    CALLS.clear()
    events = list(pipeline.run_restore(_job(clip.path, out, chunked_engine, resume=True)))
    assert events[-1].stage == "done"
    assert CALLS and CALLS[0] > 0  # finished chunks were not redone
    resumed = _decode(out)
    assert len(resumed) == len(frames)
    assert all(np.array_equal(x, y) for x, y in zip(frames, resumed))


def test_memory_settings_from_the_cli_reach_the_plan(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    model = write_tiny_model(tmp_path / "m")
    clip = make_video(tmp_path / "in.mp4", frames=9, fps=25).path
    base = ["restore", str(clip), "-o", str(tmp_path / "out.mp4"), "--engine", "seedvr",
            "--model-dir", str(model), "--scale", "1", "--device", "cpu", "--plan"]
    assert cli.main(base) == 0
    assert "settings:      DiT window whole chunk\n" in capsys.readouterr().out
    assert cli.main([*base, "--dit-window", "1", "--vae-tile", "96", "--offload", "none"]) == 0
    assert "settings:      DiT window 1, VAE tiles 96px\n" in capsys.readouterr().out
    assert cli.main([*base, "--vae-tile", "100"]) == 1
    err = capsys.readouterr().err
    assert "--vae-tile must be a multiple of 8" in err and err.count("\n") == 1
    # A classic job takes the same flags without complaint: they mean nothing to it.
    assert cli.main(["restore", str(clip), "-o", str(tmp_path / "c.mp4"), "--engine", "classic",
                     "--offload", "dit", "--compile", "--plan"]) == 0
    args = cli.build_parser().parse_args([*base, "--compile"])
    assert cli.engine_options_from_args(args)["compile"] is True
