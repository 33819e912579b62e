"""Hardening: a stopped run lets go of its output at once, and a long chunk shows progress.

- a cancelled or failed run releases the work folder's OS lock when it stops, not when the
  caller drops the generator or the exception, so another run of the same output can start;
- while one slow chunk is being restored, progress events keep coming (a heartbeat with the
  elapsed time), so the CLI and the GUI show something moving.
"""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import pytest

from seedvr_desktop.engine import chunk_wait
from seedvr_desktop.engine import plan as job_planning
from seedvr_desktop.engine.job import RestoreJob
from seedvr_desktop.engine.journal import LOCK_FILE, work_dir_for
from seedvr_desktop.engine.pipeline import run_restore
from seedvr_desktop.fsutil import ExclusiveLock
from tests.clips import make_video
from tests.engine import pipeline_fakes


@pytest.fixture(autouse=True)
def _clean() -> None:
    pipeline_fakes.HOOK.clear()
    pipeline_fakes.CALLS.clear()
    yield
    pipeline_fakes.HOOK.clear()


def _lock_is_free(out: Path) -> bool:
    """Whether someone else (a fresh OS lock, as another process would take) gets the lock."""
    from seedvr_desktop.fsutil import LockBusy

    lock = ExclusiveLock(work_dir_for(out) / LOCK_FILE)
    try:
        lock.acquire()
    except LockBusy:
        return False
    lock.release(remove=False)
    return True


# ------------------------------------------------------------------ a stopped run's lock


def test_a_cancelled_run_releases_its_lock_before_the_generator_is_dropped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(job_planning, "SEGMENT_SECONDS", 0.2)
    clip = make_video(tmp_path / "c.mp4", frames=45)
    out = tmp_path / "out.mp4"
    cancel = threading.Event()
    pipeline_fakes.HOOK.append(lambda ctx: cancel.set() if ctx.index == 4 else None)
    events = run_restore(RestoreJob(clip.path, out, engine="test-chunky"), cancel)
    stages = []
    for event in events:
        stages.append(event.stage)
        if event.stage == "cancelled":
            break  # the generator stays suspended at its last yield, its run alive
    assert stages[-1] == "cancelled"
    assert _lock_is_free(out)
    pipeline_fakes.HOOK.clear()
    # A second run of the same output, right away, in this process: it resumes the kept work.
    again = list(run_restore(RestoreJob(clip.path, out, engine="test-chunky", resume=True)))
    assert again[-1].stage == "done"
    assert any("resuming after" in e.message for e in again)
    assert out.is_file() and not work_dir_for(out).exists()
    del events


def test_a_failed_run_releases_its_lock_while_its_exception_is_held(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(job_planning, "SEGMENT_SECONDS", 0.2)
    clip = make_video(tmp_path / "c.mp4", frames=45)
    out = tmp_path / "out.mp4"

    def fail(ctx: object) -> None:
        if getattr(ctx, "index", 0) == 4:
            raise RuntimeError("engine broke")

    pipeline_fakes.HOOK.append(fail)
    with pytest.raises(RuntimeError) as caught:
        list(run_restore(RestoreJob(clip.path, out, engine="test-chunky")))
    # The traceback (kept by `caught`) still references the run and its journal.
    assert caught.value.__traceback__ is not None
    assert work_dir_for(out).is_dir()  # finished segments are kept for --resume
    assert _lock_is_free(out)


# ------------------------------------------------------------------ progress inside one chunk


class _SlowEngine(pipeline_fakes.ChunkyEngine):
    """The chunky test engine, taking `seconds` over each chunk listed in `slow`; it looks at
    the cancel event (like SeedVR between blocks) and reports how far it is when `reports`."""

    def __init__(self, slow: dict[int, float], reports: bool = False) -> None:
        self.slow = slow
        self.reports = reports
        self.threads: set[str] = set()

    def restore_chunk(self, frames, context, cancel=None):  # type: ignore[no-untyped-def]
        from seedvr_desktop.errors import Cancelled

        self.threads.add(threading.current_thread().name)
        seconds = self.slow.get(context.index, 0.0)
        steps = max(int(seconds / 0.02), 1) if seconds else 0
        for step in range(steps):
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            time.sleep(seconds / steps)
            if self.reports:
                context.report((step + 1) / steps)
        return super().restore_chunk(frames, context, cancel)


def _timed(events) -> list[tuple[float, object]]:  # type: ignore[no-untyped-def]
    out = []
    for event in events:
        out.append((time.monotonic(), event))
    return out


def test_heartbeats_keep_coming_while_a_single_chunk_is_restored(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:

    monkeypatch.setattr(chunk_wait, "HEARTBEAT_SECONDS", 0.1)
    clip = make_video(tmp_path / "c.mp4", frames=9)  # one chunk of the chunky engine
    engine = _SlowEngine({0: 1.0})
    timed = _timed(run_restore(RestoreJob(clip.path, tmp_path / "o.mp4", engine="test-chunky"),
                               engine=engine))
    assert timed[-1][1].stage == "done"
    beats = [(t, e) for t, e in timed if e.stage == "restore" and e.frames_done == 0]
    assert len(beats) >= 5, [e for _, e in timed]
    assert all(e.chunk_index == 1 and e.chunk_count == 1 for _, e in beats)
    assert all("restoring chunk 1/1" in e.message and "s so far" in e.message for _, e in beats)
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(beats)]
    assert max(gaps) < 0.5  # steady, not bunched up at the end
    assert engine.threads and threading.current_thread().name not in engine.threads


def test_heartbeats_move_the_bar_and_count_the_eta_down(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from seedvr_desktop.engine import video_run

    monkeypatch.setattr(chunk_wait, "HEARTBEAT_SECONDS", 0.1)
    monkeypatch.setattr(video_run, "_EVENT_INTERVAL", 0.0)
    clip = make_video(tmp_path / "c.mp4", frames=30)  # chunks of the chunky engine: 4
    # Paced chunks, then a slow one: during it the estimate goes on from the pace so far.
    engine = _SlowEngine({0: 0.5, 1: 0.5, 2: 1.2})
    events = list(run_restore(RestoreJob(clip.path, tmp_path / "o.mp4", engine="test-chunky"),
                              engine=engine))
    assert events[-1].stage == "done"
    beats = [e for e in events if e.stage == "restore" and e.chunk_index == 3 and e.message]
    assert len(beats) >= 5
    assert all(e.fps > 0 and e.eta_seconds is not None for e in beats)
    etas = [e.eta_seconds for e in beats]
    fractions = [e.fraction for e in beats]
    assert etas[1] < etas[0]  # counts down while the chunk is on pace
    assert fractions == sorted(fractions) and fractions[-1] > fractions[0]
    before = max(e.fraction for e in events if e.stage == "restore" and e.chunk_index == 2)
    assert before < fractions[0] and fractions[-1] < 1.0


def test_an_engine_that_reports_its_progress_drives_the_first_chunk(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:

    monkeypatch.setattr(chunk_wait, "HEARTBEAT_SECONDS", 0.1)
    clip = make_video(tmp_path / "c.mp4", frames=9)
    engine = _SlowEngine({0: 1.0}, reports=True)
    events = list(run_restore(RestoreJob(clip.path, tmp_path / "o.mp4", engine="test-chunky"),
                              engine=engine))
    beats = [e for e in events if e.stage == "restore" and e.frames_done == 0]
    assert len(beats) >= 5
    late = beats[len(beats) // 2:]
    assert all(0 < e.fraction < 1 and e.eta_seconds is not None for e in late)
    assert [e.fraction for e in beats] == sorted(e.fraction for e in beats)


@pytest.mark.parametrize("how", ["cancel", "close"])
def test_stopping_during_a_long_chunk_is_prompt_and_clean(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str) -> None:

    monkeypatch.setattr(chunk_wait, "HEARTBEAT_SECONDS", 0.05)
    clip = make_video(tmp_path / "c.mp4", frames=9)
    out = tmp_path / "o.mp4"
    engine = _SlowEngine({0: 30.0})
    cancel = threading.Event()
    events = run_restore(RestoreJob(clip.path, out, engine="test-chunky"), cancel,
                         engine=engine)
    began = time.monotonic()
    last = None
    for event in events:
        last = event
        if event.message.startswith("restoring chunk"):
            if how == "close":
                events.close()
                break
            cancel.set()
    assert time.monotonic() - began < 5.0  # not the chunk's 30 s
    if how == "cancel":
        assert last is not None and last.stage == "cancelled"
    assert not out.exists() and not work_dir_for(out).exists()
