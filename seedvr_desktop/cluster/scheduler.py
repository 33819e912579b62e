"""Keeps every worker busy with units and gives the results back in segment order.

Each worker has DEPTH units queued at a time, so it never waits on the driver. Units are
handed out at most `window` ahead of the oldest unfinished one, which bounds the results held
for in-order commit (the driver journals them as they finish, so a killed driver loses only the
units in flight). A worker that dies (node lost,
process killed, out of memory) is replaced when the cluster can, and its units go to the next
free workers.
"""

from __future__ import annotations

import bisect
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seedvr_desktop.cluster.connect import ClusterSession, WorkerHandle
from seedvr_desktop.cluster.unit_restore import JobContext
from seedvr_desktop.cluster.units import WorkUnit
from seedvr_desktop.cluster.worker import JobView, UnitResult
from seedvr_desktop.errors import Cancelled, UserError

log = logging.getLogger(__name__)

# Units queued on each worker: the second one starts the moment the first is done, without a
# round trip to the driver. A worker that dies loses both; both are given again.
DEPTH = 2
UPLOAD_LIMIT = 8 << 30  # bytes: a larger source must be on storage every node sees
_TICK = 0.25  # seconds between checks of the cancel flag while workers are busy


@dataclass
class Finished:
    """A unit's result and the worker that made it."""

    unit: WorkUnit
    result: UnitResult
    worker: WorkerHandle


class Scheduler:
    """Runs the units of one job on the session's workers; see the module docstring."""

    def __init__(self, session: ClusterSession, ctx: JobContext, units: list[WorkUnit], *,
                 needs_gpu: bool, cancel: threading.Event) -> None:
        self.session = session
        self.ctx = ctx
        self.units = units
        self.needs_gpu = needs_gpu
        self.cancel = cancel
        self.retried = 0  # units given again after their worker died
        self._shared: dict[int, bool] = {}  # worker number -> sees the work folder
        self._upload: Any = None  # the source in the object store, once needed
        self._idle: deque[WorkerHandle] = deque()
        self._replacements = 0
        self._dead: set[int] = set()  # numbers of workers that died
        self.running: dict[Any, tuple[WorkUnit, WorkerHandle]] = {}  # task -> what, where

    # ---------------------------------------------------------------- opening

    def open(self) -> list[WorkerHandle]:
        """Open the job on every worker; UserError naming the node for any that cannot."""
        for handle in self.session.workers(self.needs_gpu):
            self._open_on(handle)
        if not self._idle:
            raise UserError("no cluster worker could open the job")
        return list({h.number: h for h in self._idle}.values())  # each worker once

    def _open_on(self, handle: WorkerHandle) -> None:
        ray = _ray()
        view: JobView = ray.get(handle.actor.open_job.remote(self.ctx))
        if not view.error and not view.sees_source:
            view = ray.get(handle.actor.open_job.remote(self.ctx, self._source_ref(handle)))
        if view.error:
            raise UserError(view.error)
        if not view.sees_source:
            raise UserError(f"node {handle.info.node} cannot read the source "
                            f"{self.ctx.plan.input_path}")
        self._shared[handle.number] = view.sees_work_folder
        self._idle.extend([handle] * DEPTH)

    def _source_ref(self, handle: WorkerHandle) -> Any:
        if self._upload is None:
            path = Path(self.ctx.plan.input_path)
            size = path.stat().st_size
            if size > UPLOAD_LIMIT:
                raise UserError(f"node {handle.info.node} cannot see the source {path} and it "
                                f"is too large to send ({size / 2**30:.1f} GiB): put it on "
                                "storage every node sees")
            log.info("uploading %s for nodes that cannot see it", path.name)
            self._upload = _ray().put(path.read_bytes())
        return self._upload

    # ---------------------------------------------------------------- running

    def results(self, window: int | None = None,
                on_finished: Callable[[Finished], None] | None = None
                ) -> Iterator[Finished | None]:
        """Finished units in segment order; None now and then while waiting (cancel checks,
        progress). Raises UserError when a unit fails on a worker or every worker is gone.

        `on_finished` sees every unit as it finishes, in any order, before it is held for its
        turn (the driver journals those that finished ahead of an earlier one)."""
        ray = _ray()
        workers = max(1, len(self._idle) // DEPTH)
        window = window or (DEPTH + 1) * workers
        todo: list[WorkUnit] = list(self.units)  # sorted by number; retried units go back in
        running = self.running
        done: dict[int, Finished] = {}
        order = [u.number for u in self.units]
        position = 0  # index in `order` of the next unit to give back
        try:
            while position < len(order):
                if self.cancel.is_set():
                    raise Cancelled()
                self._dispatch(todo, order[min(position + window, len(order)) - 1])
                if not running and not self._idle:
                    raise UserError("every cluster worker has died; the finished segments are "
                                    "kept: run again with --resume")
                ready, _ = ray.wait(list(running), num_returns=1, timeout=_TICK)
                for ref in ready:
                    unit, worker = running.pop(ref)
                    result = self._collect(ref, unit, worker, todo)
                    if result is not None:
                        done[unit.number] = Finished(unit, result, worker)
                        if on_finished is not None:
                            on_finished(done[unit.number])
                # Refill before the caller commits what is done: workers never wait on that.
                self._dispatch(todo, order[min(position + window, len(order)) - 1])
                while position < len(order) and order[position] in done:
                    yield done.pop(order[position])
                    position += 1
                if not ready:
                    yield None
        finally:
            for ref in running:
                try:
                    ray.cancel(ref, force=False)
                except Exception:  # its worker is gone already: nothing left to stop
                    log.debug("could not cancel a unit", exc_info=True)

    def _dispatch(self, todo: list[WorkUnit], limit: int) -> None:
        """Give units up to number `limit` to free worker slots."""
        while self._idle and todo and todo[0].number <= limit:
            unit, worker = todo.pop(0), self._idle.popleft()
            ref = worker.actor.restore.remote(self.ctx.key, unit, self._shared[worker.number])
            self.running[ref] = (unit, worker)

    def _collect(self, ref: Any, unit: WorkUnit, worker: WorkerHandle,
                 todo: list[WorkUnit]) -> UnitResult | None:
        ray = _ray()
        try:
            result: UnitResult = ray.get(ref)
        except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError,
                ray.exceptions.ObjectLostError) as exc:
            log.warning("%s died during segment %d (%s); giving it to another worker",
                        worker.label, unit.number, type(exc).__name__)
            self.retried += 1
            bisect.insort(todo, unit, key=lambda u: u.number)
            if worker.number not in self._dead:
                self._dead.add(worker.number)
                self._idle = deque(h for h in self._idle if h.number != worker.number)
                self._replace(worker)
            return None
        if result.error:
            raise UserError(result.error)
        self._idle.append(worker)
        return result

    def _replace(self, dead: WorkerHandle) -> None:
        if self._replacements >= 2 * len(self.units) + 2:
            return  # something kills every worker: stop starting new ones
        self._replacements += 1
        new = self.session.replace(dead, self.needs_gpu)
        if new is not None:
            try:
                self._open_on(new)
            except _ray().exceptions.RayActorError:
                log.warning("the replacement %s died at once", new.label)


def _ray() -> Any:
    import ray

    return ray
