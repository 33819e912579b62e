"""Hardening (issue 14): no lost files.

Inputs never overwritten by the same command, projects never written over media, one run per
output (an OS lock on the work folder), serialized project edits, long names, stale temps, and
a damaged work folder on --resume.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from seedvr_desktop import cli
from seedvr_desktop.engine import plan as job_planning
from seedvr_desktop.engine.job import RestoreJob
from seedvr_desktop.engine.journal import Journal, work_dir_for
from seedvr_desktop.engine.pipeline import run_restore
from seedvr_desktop.media.probe import probe
from tests.cli_support import subprocess_env
from tests.clips import make_video
from tests.engine import pipeline_fakes
from tests.engine.pipeline_fakes import decode_video


@pytest.fixture(autouse=True)
def _clean() -> None:
    pipeline_fakes.HOOK.clear()
    pipeline_fakes.CALLS.clear()


def _one_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    assert lines and "Traceback" not in text, text
    return lines[-1]



# ------------------------------------------------------------------ 2: input = another output


def test_an_output_that_is_another_input_is_refused_up_front(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    first = make_video(folder / "x.mp4", frames=6).path
    second = folder / "x.restored.mp4"
    make_video(second, frames=8, content="static")
    before = second.read_bytes()
    code = cli.main(["restore", str(first), str(second), "-o", str(folder), "--overwrite",
                     "--engine", "none"])
    line = _one_line(capsys.readouterr().err)
    assert code == 1
    assert "x.restored.mp4" in line and "x.mp4" in line and "overwrite the input" in line
    assert second.read_bytes() == before  # input 2 was never written over
    assert sorted(p.name for p in folder.iterdir()) == ["x.mp4", "x.restored.mp4"]


# ------------------------------------------------------------------ 3: project over a video


def test_project_create_never_writes_over_a_media_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    v = make_video(tmp_path / "v.mp4", frames=4).path
    w = make_video(tmp_path / "w.mp4", frames=4).path
    before = v.read_bytes()
    assert cli.main(["project", "create", "--force", str(v), str(w)]) == 1
    assert ".svrproj" in _one_line(capsys.readouterr().err)
    assert v.read_bytes() == before and not (tmp_path / "v.mp4.bak").exists()
    # A media file renamed .svrproj is not replaced either, even with --force.
    fake = tmp_path / "clip.svrproj"
    fake.write_bytes(before)
    assert cli.main(["project", "create", "--force", str(fake), str(w)]) == 1
    assert "media file" in _one_line(capsys.readouterr().err)
    assert fake.read_bytes() == before
    # A real project may be replaced with --force, whatever its name.
    good = tmp_path / "p.svrproj"
    assert cli.main(["project", "create", str(good), str(w)]) == 0
    assert cli.main(["project", "create", "--force", str(good), str(v), str(w)]) == 0
    assert len(json.loads(good.read_text())["clips"]) == 2


# ------------------------------------------------------------------ 4: two runs, one output


_HOLDER = """
import sys, time
from pathlib import Path
from seedvr_desktop.engine.journal import Journal
journal, _ = Journal.open(Path(sys.argv[1]), "other-run", resume=False)
(journal.folder / "seg_00000.mov").write_bytes(b"another run's work")
print("locked", flush=True)
time.sleep(30)
"""


def test_a_second_run_on_the_same_output_is_refused_and_leaves_the_first_alone(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clip = make_video(tmp_path / "c.mp4", frames=6).path
    out = tmp_path / "out.mp4"
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(out)], env=subprocess_env(),
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        code = cli.main(["restore", str(clip), "-o", str(out), "--engine", "none"])
        line = _one_line(capsys.readouterr().err)
        assert code == 1 and "being written by another run" in line
        work = work_dir_for(out)
        assert (work / "seg_00000.mov").read_bytes() == b"another run's work"
        assert not out.exists()
    finally:
        holder.kill()
        holder.wait()
    # Once the other run is gone, the output is free again (its lock died with it).
    assert cli.main(["restore", str(clip), "-o", str(out), "--engine", "none"]) == 0
    assert probe(out).video.frame_count == 6 and not work_dir_for(out).exists()


# ------------------------------------------------------------------ 5: concurrent project edits


def test_concurrent_caption_edits_all_land_and_a_symlink_stays_a_link(tmp_path: Path) -> None:
    (tmp_path / "media").mkdir()
    clip = make_video(tmp_path / "media" / "c.mp4", frames=250, fps=25).path
    real = tmp_path / "real" / "p.svrproj"
    real.parent.mkdir()
    assert cli.main(["project", "create", str(real), str(clip)]) == 0
    link = tmp_path / "link.svrproj"
    link.symlink_to(real)
    runs = [subprocess.Popen(
        [sys.executable, "-m", "seedvr_desktop", "project", "caption", str(link), "--clip", "1",
         "--start", str(i), "--end", str(i + 0.5), "--text", f"caption {i}"],
        env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(8)]
    results = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0] * 8, results
    assert link.is_symlink() and link.resolve() == real.resolve()
    data = json.loads(real.read_text())
    texts = sorted(c["text"] for c in data["clips"][0]["captions"])
    assert texts == sorted(f"caption {i}" for i in range(8))
    assert not list(real.parent.glob(".*lock*"))  # the lock file is tidied away


# ------------------------------------------------------------------ 7: long names


def test_long_output_names_work_and_too_long_ones_are_refused_up_front(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clip = make_video(tmp_path / "c.mp4", frames=6).path
    name = "n" * 246 + ".mp4"  # 250 bytes: legal, but the hidden names beside it are not
    out = tmp_path / name
    assert cli.main(["restore", str(clip), "-o", str(out), "--engine", "none"]) == 0
    assert probe(out).video.frame_count == 6
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    capsys.readouterr()
    too_long = tmp_path / ("m" * 252 + ".mp4")
    assert cli.main(["restore", str(clip), "-o", str(too_long), "--engine", "none"]) == 1
    assert "at most 255" in _one_line(capsys.readouterr().err)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["c.mp4", name])


# ------------------------------------------------------------------ 8: stale temps


def test_a_successful_run_removes_temps_a_killed_run_left(tmp_path: Path) -> None:
    from seedvr_desktop.fsutil import sibling_name

    clip = make_video(tmp_path / "c.mp4", frames=6).path
    out = tmp_path / "out.mp4"
    stale = sibling_name(out, "tmp")
    stale.write_bytes(b"x" * 1000)  # what SIGKILL while "writing the output file" leaves
    unrelated = sibling_name(tmp_path / "other.mp4", "tmp")
    unrelated.write_bytes(b"y")
    assert cli.main(["restore", str(clip), "-o", str(out), "--engine", "none"]) == 0
    assert out.exists() and not stale.exists()
    assert unrelated.exists()  # another output's temp is not this job's to remove


# ------------------------------------------------------------------ 11: damaged work folder


def _cancelled_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Path]:
    monkeypatch.setattr(job_planning, "SEGMENT_SECONDS", 0.2)
    clip = make_video(tmp_path / "c.mp4", frames=45)
    full = tmp_path / "full.mp4"
    list(run_restore(RestoreJob(clip.path, full, engine="test-chunky")))
    out = tmp_path / "out.mp4"
    cancel = threading.Event()
    pipeline_fakes.HOOK.append(lambda ctx: cancel.set() if ctx.index == 4 else None)
    events = list(run_restore(RestoreJob(clip.path, out, engine="test-chunky"), cancel))
    pipeline_fakes.HOOK.clear()
    assert events[-1].stage == "cancelled"
    return clip.path, full, out


def _same_pictures(a: Path, b: Path) -> None:
    times_a, images_a = decode_video(a)
    times_b, images_b = decode_video(b)
    assert times_a == times_b and len(images_a) == len(images_b)
    assert all((x == y).all() for x, y in zip(images_a, images_b))


def test_resume_with_a_truncated_last_segment_goes_on_from_the_one_before(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    src, full, out = _cancelled_run(tmp_path, monkeypatch)
    journal = Journal._load(work_dir_for(out))
    assert journal is not None and len(journal.segments) >= 2
    last = work_dir_for(out) / journal.segments[-1].file
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    del journal
    events = list(run_restore(RestoreJob(src, out, engine="test-chunky", resume=True)))
    assert events[-1].stage == "done"
    assert any("damaged" in e.message and "resuming" in e.message for e in events)
    _same_pictures(full, out)


def test_resume_with_a_missing_tail_file_goes_on_or_says_start_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    src, full, out = _cancelled_run(tmp_path, monkeypatch)
    work = work_dir_for(out)
    for tail in work.glob("tail_*.npz"):
        tail.unlink()  # every saved blender state gone: nothing can be continued
    code = cli.main(["restore", str(src), "-o", str(out), "--engine", "test-chunky",
                     "--resume"])
    line = _one_line(capsys.readouterr().err)
    assert code == 1 and "start again without --resume" in line
    assert cli.main(["restore", str(src), "-o", str(out), "--engine", "test-chunky"]) == 0
    _same_pictures(full, out)


def test_resume_with_a_missing_last_tail_uses_the_one_before(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src, full, out = _cancelled_run(tmp_path, monkeypatch)
    journal = Journal._load(work_dir_for(out))
    assert journal is not None and journal.segments[-1].tail
    (work_dir_for(out) / journal.segments[-1].tail).unlink()
    del journal
    events = list(run_restore(RestoreJob(src, out, engine="test-chunky", resume=True)))
    assert events[-1].stage == "done"
    _same_pictures(full, out)


# ------------------------------------------------------------------ 6: disk full, one line


_DISK_FULL = """
import errno, sys
import av
from seedvr_desktop import cli
from seedvr_desktop.media import remux
def full(req):
    raise av.error.OSError(errno.ENOSPC, "No space left on device")
remux.mux_output = full
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_disk_full_while_muxing_is_one_line(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "c.mp4", frames=6).path
    out = tmp_path / "out.mp4"
    run = subprocess.run([sys.executable, "-c", _DISK_FULL, "restore", str(clip), "-o",
                          str(out), "--engine", "none"], env=subprocess_env(), capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr and "av.error" not in run.stderr
    assert "No space left on device" in run.stderr.strip().splitlines()[-1]
    assert not out.exists()
    time.sleep(0)
