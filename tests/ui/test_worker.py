"""The restore worker on its QThread: engine reuse, cancel latency, failures, clean shutdown."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QObject

from seedvr_desktop.engine.job import RestoreJob
from seedvr_desktop.engine.preview import PreviewRequest
from seedvr_desktop.media.reader import VideoReader
from seedvr_desktop.ui.worker import WorkerHost
from tests.ui.conftest import INVERT, SLOW, InvertEngine, wait_until

pytestmark = pytest.mark.gui


class Recorder(QObject):
    """Collects every worker signal as (name, args) in arrival order, on the GUI thread
    (slots of a GUI-thread QObject, as the app's controllers receive them)."""

    def __init__(self, host: WorkerHost) -> None:
        super().__init__()
        self.events: list[tuple[str, tuple]] = []
        w = host.worker
        w.started.connect(self._on_started)
        w.progressed.connect(self._on_progressed)
        w.chunk_ready.connect(self._on_chunk_ready)
        w.finished.connect(self._on_finished)
        w.failed.connect(self._on_failed)
        w.cancelled.connect(self._on_cancelled)

    def _on_started(self, job_id: str) -> None:
        self.events.append(("started", (job_id,)))

    def _on_progressed(self, job_id: str, event: object) -> None:
        self.events.append(("progressed", (job_id, event)))

    def _on_chunk_ready(self, job_id: str, first: int, frames: object) -> None:
        self.events.append(("chunk_ready", (job_id, first, frames)))

    def _on_finished(self, job_id: str, output: str) -> None:
        self.events.append(("finished", (job_id, output)))

    def _on_failed(self, job_id: str, message: str) -> None:
        self.events.append(("failed", (job_id, message)))

    def _on_cancelled(self, job_id: str) -> None:
        self.events.append(("cancelled", (job_id,)))

    def of(self, name: str, job_id: str) -> list[tuple]:
        return [args for n, args in self.events if n == name and args[0] == job_id]

    def ended(self, job_id: str) -> bool:
        return any(self.of(n, job_id) for n in ("finished", "failed", "cancelled"))


@pytest.fixture
def host(qtbot, test_engines):
    h = WorkerHost()
    yield h
    assert h.shutdown(5000)


def test_preview_restores_one_chunk_and_keeps_the_engine(host, qtbot, small_clip: Path) -> None:
    rec = Recorder(host)
    first = host.submit(PreviewRequest(small_clip, center=20, engine=INVERT))
    second = host.submit(PreviewRequest(small_clip, center=40, engine=INVERT))
    wait_until(qtbot, lambda: rec.ended(first) and rec.ended(second))
    (_, start, frames), = rec.of("chunk_ready", first)
    assert frames.dtype == np.uint8 and frames.ndim == 4
    assert start <= 20 < start + len(frames)
    with VideoReader(small_clip) as reader:
        source = reader.read(start).image.astype(int)
    assert np.abs((255 - source) - frames[0].astype(int)).max() <= 1  # inverted, same size
    (_, start2, frames2), = rec.of("chunk_ready", second)
    assert start2 + len(frames2) == 48, "the window is kept inside the clip"
    assert InvertEngine.instances == 1, "one engine instance serves both previews"
    assert [n for n, a in rec.events if a[0] == first] == ["started", "chunk_ready", "finished"]


def test_cancel_of_a_running_chunk_is_answered_within_a_second(host, qtbot,
                                                               small_clip: Path) -> None:
    rec = Recorder(host)
    job = host.submit(PreviewRequest(small_clip, center=10, engine=SLOW))
    queued = host.submit(PreviewRequest(small_clip, center=30, engine=SLOW))
    wait_until(qtbot, lambda: rec.of("started", job))
    qtbot.wait(200)
    assert host.cancel(queued)
    # A job that never started is reported at once, while the running one keeps going.
    wait_until(qtbot, lambda: rec.of("cancelled", queued), 0.5)
    assert not rec.ended(job)
    t0 = time.perf_counter()
    host.cancel(job)
    wait_until(qtbot, lambda: rec.ended(job), 3)
    assert time.perf_counter() - t0 < 1.0
    assert rec.of("cancelled", job) and not rec.of("chunk_ready", job)
    assert not rec.of("started", queued)


def test_user_errors_arrive_as_one_line_messages(host, qtbot, tmp_path: Path) -> None:
    rec = Recorder(host)
    missing = host.submit(PreviewRequest(tmp_path / "gone.mp4", center=0, engine=INVERT))
    bad_engine = host.submit(RestoreJob(tmp_path / "gone.mp4", tmp_path / "out.mp4",
                                        engine="no-such-engine"))
    wait_until(qtbot, lambda: rec.ended(missing) and rec.ended(bad_engine))
    for job in (missing, bad_engine):
        ((_, message),) = rec.of("failed", job)
        assert message and "\n" not in message and "Traceback" not in message


def test_shutdown_while_busy_cancels_and_joins(qtbot, test_engines, small_clip: Path) -> None:
    host = WorkerHost()
    rec = Recorder(host)
    job = host.submit(PreviewRequest(small_clip, center=10, engine=SLOW))
    wait_until(qtbot, lambda: rec.of("started", job))
    t0 = time.perf_counter()
    assert host.shutdown(5000)
    assert time.perf_counter() - t0 < 1.0
    assert host.worker_thread.isFinished()
    with pytest.raises(Exception, match="closing"):
        host.submit(PreviewRequest(small_clip, center=10, engine=SLOW))


class _KeptEngine(InvertEngine):
    """The invert engine, counting instances and close() calls (class-wide: the registry
    builds it)."""

    made = 0
    closed = 0

    def __init__(self, **options: object) -> None:
        super().__init__(**options)
        type(self).made += 1

    def close(self) -> None:
        type(self).closed += 1


def test_exports_reuse_the_loaded_engine(host, qtbot, small_clip: Path, tmp_path: Path) -> None:
    """The worker hands its engine to the pipeline: two exports (with different chunk
    settings, which are the pipeline's, not the engine's) load the model once and the pipeline
    does not close it; releasing the engine does."""
    from seedvr_desktop.engine import registry

    _KeptEngine.made = _KeptEngine.closed = 0
    registry.register_engine("test-kept", _KeptEngine, InvertEngine.caps, priority=-100)
    rec = Recorder(host)
    jobs = [host.submit(RestoreJob(small_clip, tmp_path / f"out{n}.mkv", engine="test-kept",
                                   engine_options=options))
            for n, options in enumerate(({}, {"chunk_length": 3, "overlap": 1}))]
    wait_until(qtbot, lambda: all(rec.ended(j) for j in jobs), 30)
    for n, job in enumerate(jobs):
        assert rec.of("finished", job) == [(job, str(tmp_path / f"out{n}.mkv"))], rec.events
    with VideoReader(tmp_path / "out1.mkv") as reader:
        assert reader.frame_count == 48
    assert (_KeptEngine.made, _KeptEngine.closed) == (1, 0)
    host.release_engine()
    wait_until(qtbot, lambda: _KeptEngine.closed == 1)


def test_preview_follows_the_projects_chunk_length(small_clip: Path) -> None:
    """A preview must be restored in the chunks the export will use, not the engine's default."""
    from seedvr_desktop.engine.preview import render_preview

    lengths: list[int] = []

    class Recording(InvertEngine):
        def restore_chunk(self, frames, context, cancel=None):  # type: ignore[override]
            lengths.append(len(frames))
            return super().restore_chunk(frames, context, cancel)

    request = PreviewRequest(path=small_clip, center=20, engine=INVERT,
                             engine_options={"chunk_length": 3, "overlap": 0})
    start, frames = render_preview(Recording(), request)
    assert len(frames) == 25 and start == 8
    assert lengths == [3] * 8 + [1]  # the engine default (5) would give [5] * 5
