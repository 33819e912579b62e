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
    # With `auto` the refusal still comes alone, before the "engine auto: using ..." line.
    assert cli.main(["restore", str(clip.path), "-o", str(existing)]) == 1
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


def test_seedvr_options_become_engine_options(tmp_path: Path) -> None:
    base = ["restore", "in.mp4", "-o", str(tmp_path / "o.mp4")]
    parser = cli.build_parser(with_modules=False)
    (plain,) = cli.jobs_from_args(parser.parse_args(base))
    assert plain.engine_options == {} and plain.engine == "auto"  # only options given are passed
    args = parser.parse_args([*base, "--engine", "seedvr2-7b", "--model-dir", "models/7b",
                              "--device", "cpu", "--precision", "bf16", "--color-fix", "lab",
                              "--memory-budget", "6.5", "--steps", "4", "--chunk-length", "21",
                              "--overlap", "4"])
    (job,) = cli.jobs_from_args(args)
    assert job.engine == "seedvr2-7b"
    assert job.engine_options == {"model_dir": "models/7b", "device": "cpu",
                                  "precision": "bf16", "color_fix": "lab",
                                  "memory_budget_gb": 6.5, "steps": 4, "chunk_length": 21,
                                  "overlap": 4}
    # A model folder with `auto` means "this model": the generic folder engine.
    (folder_job,) = cli.jobs_from_args(parser.parse_args([*base, "--model-dir", "m"]))
    assert folder_job.engine == "seedvr"
    for bad in (["--device", "tpu"], ["--memory-budget", "-1"], ["--steps", "0"],
                ["--color-fix", "sepia"], ["--overlap", "-2"]):
        with pytest.raises(cli.UserError):
            parser.parse_args([*base, *bad])


def test_chunk_options_change_the_plan(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    clip = make_video(tmp_path / "c.mp4", frames=20)
    out = tmp_path / "o.mkv"
    assert cli.main(["restore", str(clip.path), "-o", str(out), "--engine", "classic",
                     "--chunk-length", "8", "--overlap", "2", "--plan"]) == 0
    text = capsys.readouterr().out
    assert "20 frames" in text and "3 chunk(s) of up to 8 frames, overlap 2" in text
    assert "96x64 -> 192x128" in text and not out.exists()  # classic enlarges x2 by default
    assert cli.main(["restore", str(clip.path), "-o", str(out), "--engine", "classic",
                     "--chunk-length", "4", "--overlap", "2", "--plan"]) == 1
    assert "overlap" in _one_line_error(capsys.readouterr().err)


def test_plan_with_a_model_folder_forecasts_memory_and_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A named SeedVR engine whose files are not installed runs from --model-dir, and --plan
    prints the engine's forecast without loading weights or writing anything."""
    pytest.importorskip("torch")
    from tests.engine.seedvr_tiny import write_tiny_model

    monkeypatch.setenv("SEEDVR_DESKTOP_MODELS_DIR", str(tmp_path / "no-models"))
    folder = write_tiny_model(tmp_path / "tiny")
    clip = make_video(tmp_path / "c.mp4", frames=30, size=(48, 32))
    out = tmp_path / "o.mkv"
    before = sorted(p.name for p in tmp_path.iterdir() if p.name != "logs")
    argv = ["restore", str(clip.path), "-o", str(out), "--engine", "seedvr2-3b", "--scale",
            "2", "--device", "cpu", "--chunk-length", "13", "--overlap", "2"]
    assert cli.main([*argv, "--plan"]) == 1  # not installed, no folder given
    assert "seedvr2-3b" in _one_line_error(capsys.readouterr().err)
    assert cli.main([*argv, "--model-dir", str(folder), "--plan"]) == 0
    text = capsys.readouterr().out
    assert "30 frames" in text and "48x32 -> 96x64" in text and "engine seedvr2-3b" in text
    assert "3 chunk(s) of up to 13 frames" in text  # [0, 13), [11, 24), [22, 30)
    assert "peak memory:" in text and "time:" in text and "settings:" in text
    assert "3 chunk(s) of up to 13" in text.split("peak memory:")[0].split("output:")[-1]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "logs") == before


def test_self_test_flag_runs_the_self_test(monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    from seedvr_desktop import selftest

    calls: list[int] = []
    monkeypatch.setattr(selftest, "run_self_test", lambda: calls.append(1) or 7)
    assert cli.main(["--self-test"]) == 7 and calls == [1]
    monkeypatch.setitem(sys.modules, "seedvr_desktop.selftest", None)  # cannot import
    assert cli.main(["--self-test"]) == 1
    assert "self-test" in _one_line_error(capsys.readouterr().err)


def test_files_on_the_command_line_open_in_the_gui(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """"Open with" from a file manager: media files and projects go to the GUI."""
    from seedvr_desktop.ui import app

    opened: list[list[str]] = []
    monkeypatch.setattr(app, "run_app", lambda argv: opened.append(list(argv)) or 0)
    video = make_video(tmp_path / "holiday.mp4", frames=2).path
    project = tmp_path / "tapes.svrproj"
    project.write_text("{}")
    assert cli.main([str(video), str(project)]) == 0
    assert opened == [[str(video), str(project)]]
    # A mistyped command is not a file: the usual one-line usage error, no GUI.
    assert cli.main(["restor", str(video)]) == 1
    assert "restor" in _one_line_error(capsys.readouterr().err) and len(opened) == 1
    monkeypatch.setitem(sys.modules, "seedvr_desktop.ui.app", None)  # no Qt here
    assert cli.main([str(video)]) == 1
    assert "GUI" in _one_line_error(capsys.readouterr().err)


def test_inputs_with_the_same_name_get_distinct_outputs(tmp_path: Path) -> None:
    """Two cameras' MVI_0001.MOV into one folder: neither result may replace the other."""
    for name in ("d1", "d2"):
        (tmp_path / name).mkdir()
    first = make_video(tmp_path / "d1" / "clip.mp4", frames=3, size=(64, 48))
    second = make_video(tmp_path / "d2" / "clip.mp4", frames=5, size=(96, 64))
    out = tmp_path / "out"
    assert cli.main(["restore", str(first.path), str(second.path), "-o", str(out),
                     "--engine", "none"]) == 0
    assert probe(out / "clip.restored.mp4").video.frame_count == 3
    assert probe(out / "clip.restored-2.mp4").video.frame_count == 5


def test_several_inputs_refuse_a_file_name_as_output(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    clip = make_video(tmp_path / "a.mp4", frames=3, size=(64, 48))
    target = tmp_path / "one.mp4"
    assert cli.main(["restore", str(clip.path), str(clip.path), "-o", str(target)]) == 1
    assert "output folder" in _one_line_error(capsys.readouterr().err)
    assert not target.exists()
