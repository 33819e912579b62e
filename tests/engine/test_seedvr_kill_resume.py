"""A SeedVR restore whose process is killed (SIGKILL, no chance to clean up) resumes with
`--resume` and gives exactly the pictures of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from seedvr_desktop import cli
from seedvr_desktop.engine.journal import JOURNAL_FILE, work_dir_for
from tests.clips import make_video
from tests.conftest import REPO_ROOT
from tests.engine.seedvr_tiny import write_tiny_model

pytestmark = [pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX only"),
              pytest.mark.slow]  # about a minute: real processes killed and resumed


def _decode(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def _journaled_segments(output: Path) -> int:
    try:
        data = json.loads((work_dir_for(output) / JOURNAL_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0
    return len(data.get("segments", []))


def test_killed_seedvr_run_resumes_to_the_same_pictures(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    models = write_tiny_model(tmp_path / "model")
    # 10 fps: a journaled segment every 2 s of output, so 61 frames give three of them.
    clip = make_video(tmp_path / "in.mp4", frames=61, size=(96, 64), fps=Fraction(10))
    args = ["restore", str(clip.path), "--engine", "seedvr", "--model-dir", str(models),
            "--chunk-length", "9", "--overlap", "4", "--scale", "1", "--codec", "ffv1",
            "--seed", "11", "--device", "cpu"]

    full = tmp_path / "full.mkv"
    assert cli.main([*args, "-o", str(full)]) == 0

    out = tmp_path / "out.mkv"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "seedvr_desktop", *args, "-o", str(out)],
                            cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while _journaled_segments(out) < 1:
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no segment was journaled in time"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()  # nothing at the output path until the run completes

    capsys.readouterr()
    assert cli.main([*args, "-o", str(out), "--resume"]) == 0
    assert "resuming after" in capsys.readouterr().err  # the killed run's segments were reused
    resumed, reference = _decode(out), _decode(full)
    assert len(resumed) == len(reference) == 61
    differing = [i for i, (a, b) in enumerate(zip(resumed, reference)) if not np.array_equal(a, b)]
    assert not differing, f"frames {differing} differ from the uninterrupted run"
    assert not work_dir_for(out).exists()  # the work folder is cleaned up after success
