"""Hardening (issue 14): SIGTERM, Ctrl-C while the file is written, a cancel that keeps nothing,
the GUI without a display, and a project whose media changed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from seedvr_desktop import cli, cli_progress
from seedvr_desktop.engine.base import ProgressEvent
from tests.cli_support import subprocess_env
from tests.clips import make_video
from tests.conftest import REPO_ROOT


def test_the_gui_without_a_display_says_so_and_exits_1(tmp_path: Path) -> None:
    env = subprocess_env()
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        env.pop(name, None)
    run = subprocess.run([sys.executable, "-m", "seedvr_desktop"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, (run.returncode, run.stderr)
    assert run.stderr.strip().splitlines()[-1] == (
        "error: no display found; the command-line restore works without one")


def test_display_check_rules() -> None:
    from seedvr_desktop.ui.app import display_available

    assert not display_available({}, "linux")
    assert display_available({"QT_QPA_PLATFORM": "offscreen"}, "linux")
    assert display_available({"WAYLAND_DISPLAY": "wayland-0"}, "linux")
    assert not display_available({"DISPLAY": ":987"}, "linux")  # no such X server socket
    assert display_available({}, "win32") and display_available({}, "darwin")


def _events(stages: list[str], signal_at: str, signum: int) -> object:
    for stage in stages:
        if stage == signal_at:
            os.kill(os.getpid(), signum)
        yield ProgressEvent(stage, 1, 1, message=f"{stage} message")


def test_sigterm_cancels_like_ctrl_c_and_exits_143(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[threading.Event] = []

    def fake_run(job: object, cancel: threading.Event) -> object:
        seen.append(cancel)
        os.kill(os.getpid(), signal.SIGTERM)
        yield ProgressEvent("cancelled", 3, 9, message="cancelled; 3 finished frames kept "
                            "for --resume in .x.seedvr-work")

    monkeypatch.setattr("seedvr_desktop.engine.pipeline.run_restore", fake_run)
    # A guard, so code that forgets SIGTERM fails this test instead of killing the test run.
    previous = signal.signal(signal.SIGTERM, lambda *args: None)
    try:
        code = cli_progress.run_job_with_progress(object())  # type: ignore[arg-type]
    finally:
        signal.signal(signal.SIGTERM, previous)
    err = capsys.readouterr().err
    assert code == 143 and seen[0].is_set()
    assert "cancelling after the current chunk" in err and "kept" in err


def test_ctrl_c_while_writing_the_file_says_it_is_finishing(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def fake_run(job: object, cancel: threading.Event) -> object:
        yield ProgressEvent("finalize", 9, 9, message="writing the output file")
        os.kill(os.getpid(), signal.SIGINT)
        yield ProgressEvent("done", 9, 9, message="wrote x.mp4")

    monkeypatch.setattr("seedvr_desktop.engine.pipeline.run_restore", fake_run)
    assert cli_progress.run_job_with_progress(object()) == 0  # type: ignore[arg-type]
    err = capsys.readouterr().err
    assert "finishing the output file" in err and "cancelling after" not in err


def test_a_cancel_that_keeps_nothing_says_so(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from seedvr_desktop.engine.job import RestoreJob

    clip = make_video(tmp_path / "c.mp4", frames=6).path
    cancel = threading.Event()
    cancel.set()  # before the first (and only) segment closes
    job = RestoreJob(clip, tmp_path / "o.mp4", engine="none")
    assert cli_progress.run_job_with_progress(job, cancel=cancel) == 130
    assert "no finished part to keep" in capsys.readouterr().err


def test_sigterm_during_a_real_restore_exits_143_with_a_message(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "c.mp4", frames=40).path
    script = (
        "import os, signal, sys\n"
        "from tests.engine import pipeline_fakes\n"
        "pipeline_fakes.HOOK.append(lambda ctx: os.kill(os.getpid(), signal.SIGTERM)"
        " if ctx.index == 1 else None)\n"
        "from seedvr_desktop import cli\n"
        "sys.exit(cli.main(sys.argv[1:]))\n")
    out = tmp_path / "o.mp4"
    run = subprocess.run([sys.executable, "-c", script, "restore", str(clip), "-o", str(out),
                          "--engine", "test-chunky"], env=subprocess_env(), capture_output=True,
                         text=True, timeout=120, cwd=REPO_ROOT)
    assert run.returncode == 143, run.stderr
    assert "cancel" in run.stderr and "Traceback" not in run.stderr
    assert not out.exists()


def test_render_warns_when_media_changed_since_it_was_added(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clip = make_video(tmp_path / "c.mp4", frames=4).path
    project = tmp_path / "p.svrproj"
    assert cli.main(["project", "create", str(project), str(clip)]) == 0
    make_video(clip, frames=4, content="static")  # different content, same name
    data = json.loads(project.read_text())
    data["export"]["output_folder"] = str(tmp_path / "out")
    project.write_text(json.dumps(data))
    capsys.readouterr()
    cli.main(["render", str(project)])
    assert "has changed since it was added" in capsys.readouterr().err
