"""The command line: exit codes, one-line errors, progress, Ctrl-C, probe, demo, GUI fallback.

Most tests call `cli.main(argv)` in-process; a few run the real command in a subprocess to check
what a user sees (exit status, a single stderr line, no traceback).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from seedvr_desktop import __version__, cli
from seedvr_desktop.media.probe import probe
from tests.clips import make_image, make_text_file, make_video
from tests.conftest import REPO_ROOT
from tests.engine import pipeline_fakes


@pytest.fixture(autouse=True)
def _log_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Logs go to a temporary folder; the CLI's handlers are removed after each test."""
    folder = tmp_path / "logs"
    monkeypatch.setenv("SEEDVR_DESKTOP_LOG_DIR", str(folder))
    pipeline_fakes.HOOK.clear()
    yield folder
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_seedvr", False)]:
        root.removeHandler(handler)
        handler.close()


def _one_line_error(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def test_restore_probe_and_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clip = make_video(tmp_path / "c.mp4", frames=12, audio="aac")
    out = tmp_path / "out.mkv"
    assert cli.main(["restore", str(clip.path), "-o", str(out), "--engine", "none",
                     "--scale", "2"]) == 0
    info = probe(out)
    assert (info.video.width, info.video.height, info.video.frame_count) == (192, 128, 12)
    err = capsys.readouterr().err
    assert "12/12 frames" in err and "fps" in err and "ETA" in err

    assert cli.main(["probe", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["video"]["frame_count"] == 12 and data["audio"][0]["codec"] == "aac"
    assert cli.main(["probe", str(out)]) == 0
    table = capsys.readouterr().out
    assert "frames" in table and "192x128" in table

    assert cli.main(["restore", str(clip.path), "-o", str(tmp_path / "p.mp4"), "--engine",
                     "none", "--short-side", "128", "--plan"]) == 0
    assert "192x128" in capsys.readouterr().out and not (tmp_path / "p.mp4").exists()


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out


def test_user_errors_exit_1_with_one_line(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    text = make_text_file(tmp_path / "notes.mp4")
    assert cli.main(["restore", str(text), "-o", str(tmp_path / "o.mp4")]) == 1
    assert _one_line_error(capsys.readouterr().err).startswith("error: ")

    clip = make_video(tmp_path / "c.mp4", frames=4)
    existing = tmp_path / "exists.mp4"
    existing.write_bytes(b"mine")
    assert cli.main(["restore", str(clip.path), "-o", str(existing), "--engine", "none"]) == 1
    assert "--overwrite" in _one_line_error(capsys.readouterr().err)
    assert existing.read_bytes() == b"mine"
    assert cli.main(["restore", str(clip.path), "-o", str(existing), "--engine", "none",
                     "--overwrite"]) == 0
    assert probe(existing).video.frame_count == 4
    capsys.readouterr()

    for argv in (["restore", str(clip.path), "-o", "x.mp4", "--codec", "divx"],
                 ["restore", str(clip.path), "-o", str(tmp_path / "x.mp4"), "--scale", "-1"],
                 ["restore", str(clip.path), "-o", str(tmp_path / "x.mp4"), "--engine", "nope"],
                 ["probe", str(tmp_path / "missing.mp4")]):
        assert cli.main(argv) == 1, argv
        _one_line_error(capsys.readouterr().err)


def test_internal_error_exit_2_with_log_path(tmp_path: Path, _log_dir: Path,
                                            monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    def broken(*args: object, **kwargs: object) -> int:
        raise RuntimeError("something broke inside")

    monkeypatch.setattr("seedvr_desktop.cli_progress.run_job_with_progress", broken)
    clip = make_video(tmp_path / "c.mp4", frames=4)
    assert cli.main(["restore", str(clip.path), "-o", str(tmp_path / "o.mp4")]) == 2
    line = _one_line_error(capsys.readouterr().err)
    assert line.startswith("internal error: something broke inside")
    log_file = _log_dir / "seedvr-desktop.log"
    assert str(log_file) in line
    assert "Traceback" in log_file.read_text() and "something broke inside" in \
        log_file.read_text()


def test_several_inputs_go_into_a_folder(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "holiday.mov", frames=6)
    make_image(tmp_path / "photo.png", index=3)
    folder = tmp_path / "restored"
    assert cli.main(["restore", str(clip.path), str(tmp_path / "photo.png"), "-o", str(folder),
                     "--engine", "none"]) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["holiday.restored.mov",
                                                        "photo.restored.png"]


def test_ctrl_c_cancels_cleanly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clip = make_video(tmp_path / "c.mp4", frames=40)
    out = tmp_path / "out.mp4"
    out.write_bytes(b"previous result")

    def interrupt(ctx: object) -> None:
        if getattr(ctx, "index", 0) == 1:
            os.kill(os.getpid(), signal.SIGINT)  # as if the user pressed Ctrl-C

    pipeline_fakes.HOOK.append(interrupt)
    code = cli.main(["restore", str(clip.path), "-o", str(out), "--engine", "test-chunky",
                     "--overwrite"])
    assert code == 130
    assert out.read_bytes() == b"previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.mp4", "logs", "out.mp4"]
    assert "cancel" in capsys.readouterr().err


def test_demo_makes_and_restores_a_sample(tmp_path: Path) -> None:
    out = tmp_path / "sample_clip.restored.mp4"
    assert cli.main(["demo", "--output", str(out), "--engine", "none"]) == 0
    sample = probe(tmp_path / "sample_clip.mp4")
    restored = probe(out)
    assert sample.audio and restored.audio and restored.audio[0].codec == "aac"
    assert (restored.video.width, restored.video.height) == (2 * sample.video.width,
                                                            2 * sample.video.height)
    assert restored.video.frame_count == sample.video.frame_count == 100


def test_gui_missing_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "seedvr_desktop.ui.app", None)  # import fails
    assert cli.main([]) == 1
    assert "GUI" in _one_line_error(capsys.readouterr().err)


def test_real_command_exit_codes(tmp_path: Path) -> None:
    env = {**os.environ, "SEEDVR_DESKTOP_LOG_DIR": str(tmp_path / "logs")}
    text = make_text_file(tmp_path / "notes.txt")
    bad = subprocess.run([sys.executable, "-m", "seedvr_desktop", "restore", str(text), "-o",
                          str(tmp_path / "o.mp4")], capture_output=True, text=True, env=env,
                         cwd=REPO_ROOT)
    assert bad.returncode == 1
    assert _one_line_error(bad.stderr).startswith("error: ")
    imports = subprocess.run(
        [sys.executable, "-c", "import sys, seedvr_desktop.cli; "
         "print(sorted(m for m in ('av', 'torch', 'numpy', 'cv2', 'PySide6') if m in "
         "sys.modules))"], capture_output=True, text=True, env=env, cwd=REPO_ROOT, check=True)
    assert imports.stdout.strip() == "[]"  # importing the CLI stays cheap for the GUI start
