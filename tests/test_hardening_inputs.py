"""Hardening (issue 14): bad input is one line and exit 1, never an internal error (exit 2)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from seedvr_desktop import cli
from tests.cli_support import subprocess_env
from tests.clips import make_video


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines and "Traceback" not in "\n".join(lines)
    assert lines[-1].startswith("error: "), lines
    return lines[-1]


@pytest.mark.parametrize("option", [["--start", "nan"], ["--end", "inf"], ["--start", "1e999"]])
def test_non_finite_times_are_user_errors(tmp_path: Path, option: list[str],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    clip = make_video(tmp_path / "c.mp4", frames=4).path
    assert cli.main(["restore", str(clip), "-o", str(tmp_path / "o.mp4"), "--engine", "none",
                     *option]) == 1
    assert "not a time" in _error(capsys)


@pytest.mark.parametrize("name", ["f_%d_%d.png", "f_%s.png"])
def test_bad_frame_patterns_are_user_errors(tmp_path: Path, name: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    clip = make_video(tmp_path / "c.mp4", frames=4).path
    assert cli.main(["restore", str(clip), "-o", str(tmp_path / name), "--engine", "none"]) == 1
    assert "one frame number" in _error(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.mp4"]


def test_an_extensionless_existing_file_or_dev_null_is_not_a_png_folder(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clip = make_video(tmp_path / "c.mp4", frames=4).path
    plain = tmp_path / "noext"
    plain.write_text("keep me")
    assert cli.main(["restore", str(clip), "-o", str(plain), "--engine", "none"]) == 1
    assert "without an extension" in _error(capsys)
    assert plain.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.mp4", "noext"]
    assert cli.main(["restore", str(clip), "-o", "/dev/null", "--engine", "none"]) == 1
    _error(capsys)
    assert not Path("/dev/.null.seedvr-work").exists()
    # An explicit video codec with an extension-less name is refused too.
    assert cli.main(["restore", str(clip), "-o", str(tmp_path / "newname"), "--codec", "h264",
                     "--engine", "none"]) == 1
    assert "needs a video file name" in _error(capsys)


def test_render_into_an_export_folder_that_is_a_file(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    import json

    clip = make_video(tmp_path / "c.mp4", frames=4).path
    project = tmp_path / "p.svrproj"
    assert cli.main(["project", "create", str(project), str(clip)]) == 0
    data = json.loads(project.read_text())
    (tmp_path / "blocked").write_text("a file")
    data["export"]["output_folder"] = str(tmp_path / "blocked")
    project.write_text(json.dumps(data))
    capsys.readouterr()
    assert cli.main(["render", str(project)]) == 1
    _error(capsys)


def test_size_rounding_short_side_and_dash_names_are_explained(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    clip = make_video(tmp_path / "c.mp4", frames=4).path
    assert cli.main(["restore", str(clip), "-o", str(tmp_path / "s.mp4"), "--engine", "none",
                     "--size", "321x241"]) == 0
    assert "rounded to 322x242" in capsys.readouterr().err
    assert cli.main(["restore", str(clip), "-o", str(tmp_path / "t.mp4"), "--engine", "none",
                     "--short-side", "1"]) == 1
    assert "at least 2" in _error(capsys)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "-dash.mp4").write_bytes(clip.read_bytes())
    assert cli.main(["restore", "-dash.mp4", "-o", "d.mp4"]) == 1
    assert "./-dash.mp4" in _error(capsys)


def test_captions_beyond_the_clip_or_empty_are_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clip = make_video(tmp_path / "c.mp4", frames=25, fps=25).path  # 1 s
    project = tmp_path / "p.svrproj"
    assert cli.main(["project", "create", str(project), str(clip)]) == 0
    before = project.read_bytes()
    base = ["project", "caption", str(project), "--clip", "1"]
    assert cli.main([*base, "--start", "5", "--end", "6", "--text", "late"]) == 1
    assert "after clip 1 ends" in _error(capsys)
    assert cli.main([*base, "--start", "0", "--end", "0.5", "--text", "  "]) == 1
    assert "empty" in _error(capsys)
    assert project.read_bytes() == before


def test_a_unicode_caption_on_an_ascii_terminal_and_a_closed_stderr(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "c.mp4", frames=25, fps=25).path
    project = tmp_path / "p.svrproj"
    assert cli.main(["project", "create", str(project), str(clip)]) == 0
    run = [sys.executable, "-m", "seedvr_desktop"]
    done = subprocess.run([*run, "project", "caption", str(project), "--clip", "1", "--start",
                           "0", "--end", "0.5", "--text", "Grüße 🎂"],
                          env=subprocess_env(PYTHONIOENCODING="ascii"), capture_output=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    shown = subprocess.run([*run, "project", "info", str(project)],
                           env=subprocess_env(PYTHONIOENCODING="ascii"), capture_output=True,
                          timeout=120)
    assert shown.returncode == 0 and b"Traceback" not in shown.stderr, shown.stderr
    quiet = subprocess.run(
        [*run, "restore", str(clip), "-o", str(tmp_path / "o.mp4"), "--engine", "none"],
        env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=None, timeout=120,
        preexec_fn=lambda: os.close(2))
    assert quiet.returncode == 0 and (tmp_path / "o.mp4").exists()


def test_a_corrupt_settings_file_warns_once(tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    from seedvr_desktop.settings import config_dir, load_settings

    folder = config_dir()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "settings.json").write_text("{not json")
    with caplog.at_level(logging.WARNING):
        for _ in range(5):
            load_settings()
    assert len([r for r in caplog.records if "settings" in r.getMessage()]) == 1
