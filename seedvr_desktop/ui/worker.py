"""The restoration worker: one parentless QObject living on its own QThread.

It owns the engine and keeps it (and its loaded model) between jobs, because loading a diffusion
model takes far longer than a preview chunk. It talks to the GUI only through signals carrying
plain data (job ids, `ProgressEvent` dataclasses, numpy frames, strings); the worker thread posts
each emission to a `Mailbox` so the signals are emitted on the GUI thread (no Qt call and no
queued Python object crosses threads). Control flows the other way through thread-safe
`threading.Event`s rather than queued slots: while a job runs the worker's event loop is busy, and
cancel must still be seen within a second (the pipeline checks the event between chunks and
engines inside long chunks).

Exports go where Settings > "Render on" says (read when each export starts): this computer, or
the cluster runner of `--cluster` (every GPU here, or a Ray cluster), whose connection and
workers are then kept between exports like the engine.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from seedvr_desktop.engine.base import Engine, ProgressEvent
from seedvr_desktop.engine.job import RestoreJob
from seedvr_desktop.engine.preview import PreviewRequest, render_preview
from seedvr_desktop.errors import Cancelled, UserError
from seedvr_desktop.settings import Settings, load_settings
from seedvr_desktop.ui.mailbox import Mailbox

log = logging.getLogger(__name__)

PAUSE_POLL_SECONDS = 0.1


@dataclass
class _Job:
    job_id: str
    payload: RestoreJob | PreviewRequest
    cancel: threading.Event = field(default_factory=threading.Event)
    running: threading.Event = field(default_factory=threading.Event)  # cleared = paused

    def __post_init__(self) -> None:
        self.running.set()


class RestoreWorker(QObject):
    """Runs jobs one after another on the worker thread; create it without a parent."""

    started = Signal(str)  # job id
    progressed = Signal(str, object)  # job id, ProgressEvent
    chunk_ready = Signal(str, int, object)  # job id, first source frame, (T, H, W, 3) uint8
    finished = Signal(str, str)  # job id, output path ("" for previews)
    failed = Signal(str, str)  # job id, one-line message for the user
    cancelled = Signal(str)  # job id

    def __init__(self, post: Callable[..., None] | None = None,
                 settings: Callable[[], Settings] | None = None) -> None:
        super().__init__(None)
        # How signals leave the worker thread: the host's mailbox (GUI thread), or direct.
        self._post = post or (lambda fn, *args: fn(*args))
        # The settings as they are now (the window's, or the saved file): "Render on".
        self._settings = settings or load_settings
        self._cluster: Any = None  # a KeptRunner while exports go to a cluster
        self.cluster_runner_factory: Callable[[str], Any] | None = None  # tests: a fake
        self._lock = threading.Lock()
        self._pending: deque[_Job] = deque()
        self._jobs: dict[str, _Job] = {}
        self._shutdown = threading.Event()
        self._engine: Engine | None = None
        self._engine_key: tuple | None = None
        self.engine_loads = 0  # how many times an engine was created (tests check reuse)

    # ------------------------------------------------------------ any thread
    def enqueue(self, payload: RestoreJob | PreviewRequest, job_id: str | None = None) -> str:
        job = _Job(job_id or uuid.uuid4().hex[:10], payload)
        with self._lock:
            self._pending.append(job)
            self._jobs[job.job_id] = job
        return job.job_id

    def cancel(self, job_id: str) -> bool:
        """Cancel a queued or running job. A queued job is dropped and reported at once."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return False
            job.cancel.set()
            job.running.set()  # a paused job must wake up to notice
            queued = job in self._pending
            if queued:
                self._pending.remove(job)
                del self._jobs[job_id]
        if queued:
            self._post(self.cancelled.emit, job_id)
        return True

    def set_paused(self, job_id: str, paused: bool) -> bool:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            return False
        if paused:
            job.running.clear()
        else:
            job.running.set()
        return True

    def cancel_all(self) -> None:
        with self._lock:
            ids = list(self._jobs)
        for job_id in ids:
            self.cancel(job_id)

    def request_shutdown(self) -> None:
        self._shutdown.set()
        self.cancel_all()

    def busy(self) -> bool:
        with self._lock:
            return bool(self._jobs)

    # ------------------------------------------------------------ worker thread
    @Slot()
    def drain(self) -> None:
        """Run queued jobs until none is left (invoked through a queued signal)."""
        while not self._shutdown.is_set():
            with self._lock:
                job = self._pending.popleft() if self._pending else None
            if job is None:
                return
            try:
                self._run(job)
            finally:
                with self._lock:
                    self._jobs.pop(job.job_id, None)

    def _run(self, job: _Job) -> None:
        self._post(self.started.emit, job.job_id)
        try:
            if isinstance(job.payload, PreviewRequest):
                self._run_preview(job, job.payload)
            else:
                self._run_export(job, job.payload)
        except Cancelled:
            self._post(self.cancelled.emit, job.job_id)
        except UserError as exc:
            self._post(self.failed.emit, job.job_id, str(exc))
        except MemoryError:
            self._drop_engine()
            message = "out of memory: try a smaller memory budget or output size"
            self._post(self.failed.emit, job.job_id, message)
        except Exception as exc:  # a bug must reach the user as a message, never a crash
            log.exception("job %s failed", job.job_id)
            self._post(self.failed.emit, job.job_id, f"internal error: {exc}")

    def _wait_while_paused(self, job: _Job) -> None:
        while not job.running.wait(PAUSE_POLL_SECONDS):
            if job.cancel.is_set() or self._shutdown.is_set():
                break
        if job.cancel.is_set():
            raise Cancelled()

    def _run_export(self, job: _Job, restore_job: RestoreJob) -> None:
        from seedvr_desktop.engine.pipeline import run_restore

        runner = self._cluster_for(self._settings())
        if runner is not None:
            events = runner(restore_job, job.cancel)
        else:
            # The pipeline uses the worker's engine and leaves it open: the model stays loaded
            # for the next export or preview with the same engine settings.
            engine = self._engine_for(restore_job.engine, restore_job.engine_options)
            events = run_restore(restore_job, job.cancel, engine=engine)
        last: ProgressEvent | None = None
        try:
            for event in events:
                last = event
                self._post(self.progressed.emit, job.job_id, event)
                self._wait_while_paused(job)
        finally:
            events.close()
        if job.cancel.is_set() or (last is not None and last.stage == "cancelled"):
            raise Cancelled()
        self._post(self.finished.emit, job.job_id, str(restore_job.output_path))

    def _cluster_for(self, settings: Settings) -> Any:
        """The cluster runner the settings ask for (kept from the last export when the address
        is the same), or None to export on this computer."""
        from seedvr_desktop.cluster.cli_options import KeptRunner, settings_address

        address = settings_address(settings.render_on, settings.cluster_address)
        if self._cluster is not None and (address is None or self._cluster.address != address):
            self._drop_cluster()
        if address is None:
            return None
        if self._cluster is None:
            make = self.cluster_runner_factory or KeptRunner
            self._cluster = make(address)
        return self._cluster

    def _drop_cluster(self) -> None:
        runner, self._cluster = self._cluster, None
        if runner is not None:
            try:
                runner.close()
            except Exception:
                log.warning("leaving the cluster failed", exc_info=True)

    def _run_preview(self, job: _Job, request: PreviewRequest) -> None:
        engine = self._engine_for(request.engine, request.engine_options)
        first, frames = render_preview(engine, request, job.cancel)
        if job.cancel.is_set():
            raise Cancelled()
        self._post(self.chunk_ready.emit, job.job_id, first, frames)
        self._post(self.finished.emit, job.job_id, "")

    def _engine_for(self, name: str, options: dict[str, object]) -> Engine:
        from seedvr_desktop.engine.registry import create_engine, engine_options, resolve_auto

        if name == "auto":
            name = resolve_auto()
        # Keyed by what the engine itself receives: options the pipeline consumes (chunk
        # length, overlap) or the engine ignores do not force a reload of the model.
        own = engine_options(name, options)
        key = (name, tuple(sorted((k, repr(v)) for k, v in own.items())))
        if self._engine is None or key != self._engine_key:
            self._drop_engine()
            self._engine = create_engine(name, **options)
            self._engine_key = key
            self.engine_loads += 1
        return self._engine

    def _drop_engine(self) -> None:
        engine, self._engine, self._engine_key = self._engine, None, None
        if engine is not None:
            try:
                engine.close()
            except Exception:
                log.warning("closing the engine failed", exc_info=True)

    @Slot()
    def release_engine(self) -> None:
        """Free the model and leave the cluster (runs on the worker thread, after the current
        job)."""
        self._drop_engine()
        self._drop_cluster()


class WorkerHost(QObject):
    """GUI-side owner of the worker thread: submit, pause, cancel and a clean shutdown."""

    _wake = Signal()
    _release = Signal()

    def __init__(self, parent: QObject | None = None,
                 settings: Callable[[], Settings] | None = None) -> None:
        super().__init__(parent)
        self.mailbox = Mailbox(self)
        self.worker = RestoreWorker(self.mailbox.post, settings)
        # Not named `thread`: that would hide QObject.thread(), the thread an object lives in.
        self.worker_thread = QThread()
        self.worker_thread.setObjectName("restore-worker")
        self.worker.moveToThread(self.worker_thread)
        self._wake.connect(self.worker.drain)
        self._release.connect(self.worker.release_engine)
        self.worker_thread.start()
        self._closed = False

    def submit(self, payload: RestoreJob | PreviewRequest, job_id: str | None = None) -> str:
        if self._closed:
            raise UserError("the application is closing; no new jobs are accepted")
        job_id = self.worker.enqueue(payload, job_id)
        self._wake.emit()
        return job_id

    def cancel(self, job_id: str) -> bool:
        return self.worker.cancel(job_id)

    def pause(self, job_id: str) -> bool:
        return self.worker.set_paused(job_id, True)

    def resume(self, job_id: str) -> bool:
        return self.worker.set_paused(job_id, False)

    def busy(self) -> bool:
        return self.worker.busy()

    def release_engine(self) -> None:
        self._release.emit()

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Cancel everything, stop the thread and wait for it; True when it stopped in time."""
        if self._closed:
            return True
        self._closed = True
        self.worker.request_shutdown()
        self.worker_thread.quit()
        stopped = self.worker_thread.wait(timeout_ms)
        if stopped:
            self.worker.release_engine()  # thread is gone: safe to call directly
            self.mailbox.drain()  # deliver the last cancelled/finished signals
        else:
            log.error("the restore worker did not stop within %d ms", timeout_ms)
        return bool(stopped)

