"""The driver of a cluster job: a local `VideoRun` whose segments are restored by workers.

Everything but restoring is the local code: probing, scene cuts (found once, here, and kept in
the journal), the chunk plan, the journal (so `--resume` reuses every finished segment, and a
journal left by a local run resumes on a cluster and the other way round), muxing audio and
subtitles, the atomic rename of the final file and post-processing (sidecar captions).
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import fields, replace
from fractions import Fraction
from typing import Any

from seedvr_desktop.cluster.connect import ClusterSession
from seedvr_desktop.cluster.progress import ClusterProgressEvent, WorkerProgress
from seedvr_desktop.cluster.scheduler import Finished, Scheduler
from seedvr_desktop.cluster.unit_restore import PROBE_FILE, JobContext
from seedvr_desktop.cluster.units import WorkUnit, plan_chunk_units, plan_frame_units
from seedvr_desktop.engine.base import Engine, ProgressEvent
from seedvr_desktop.engine.job import RestoreJob
from seedvr_desktop.engine.journal import SegmentRecord
from seedvr_desktop.engine.plan import JobPlan, plan_job
from seedvr_desktop.engine.progress import ProgressMeter
from seedvr_desktop.engine.sinks import writing
from seedvr_desktop.engine.video_run import VideoRun
from seedvr_desktop.fsutil import atomic_write_bytes

log = logging.getLogger(__name__)


def needs_gpu(plan: JobPlan, job: RestoreJob) -> bool:
    """Whether the job's workers each need a GPU: generative engines, unless told to run on
    the CPU (`device` option)."""
    return plan.caps.generative and str(job.engine_options.get("device", "auto")) != "cpu"


def cluster_restore(job: RestoreJob, session: ClusterSession,
                    cancel: threading.Event | None = None) -> Iterator[ProgressEvent]:
    """`run_restore` on a cluster: the same events, the same output file."""
    from seedvr_desktop.engine.still import restore_image

    cancel = cancel or threading.Event()
    plan = plan_job(job)
    yield ProgressEvent("probe", 0, plan.frame_count)
    for note in plan.notes:
        yield ProgressEvent("probe", 0, plan.frame_count, message=note)
    if plan.is_image:
        yield ProgressEvent("probe", 0, 1, message="a still image: restored on this computer")
        yield from restore_image(job, plan, cancel, None)
        return
    if plan.sequence:
        yield ProgressEvent("probe", 0, plan.frame_count,
                            message="PNG frames are written on this computer, not the cluster")
        yield from VideoRun(job, plan, cancel).events()
        return
    run = ClusterVideoRun(job, plan, cancel, session)
    yield from run.events()


def _fps(item: Finished) -> float:
    return item.result.frames / item.result.seconds if item.result.seconds else 0.0


class ClusterVideoRun(VideoRun):
    """A VideoRun that hands its segments to cluster workers instead of restoring them."""

    def __init__(self, job: RestoreJob, plan: JobPlan, cancel: threading.Event,
                 session: ClusterSession) -> None:
        super().__init__(job, plan, cancel)
        self.session = session
        self.scheduler: Scheduler | None = None  # while restoring (tests kill its workers)
        self.units: list[WorkUnit] = []  # the units this run restores
        self.reused: list[int] = []  # numbers of segments a killed run finished out of order
        # worker number -> (label, fps on its last segment, segments finished), for progress
        self._speeds: dict[int, tuple[str, float, int]] = {}

    def _open_engine(self) -> tuple[Engine | None, bool]:
        return None, False  # the workers load it

    def _restore(self, reader: Any, engine: Any, chunks: list[Any], origin: Fraction
                 ) -> Iterator[ProgressEvent]:
        journal = self.journal
        assert journal is not None
        plan = self.plan
        last = journal.last
        next_chunk, done = (last.next_chunk, last.frames_done) if last else (0, 0)
        self.damaged = last.damaged if last else 0
        fast = self._passthrough()
        target = self._segment_target()
        first_number = len(journal.segments)
        if fast:
            units = plan_frame_units(plan.frame_count, target, frames_done=done,
                                     first_number=first_number)
        else:
            units = plan_chunk_units(chunks, plan.caps.overlap, target, next_chunk=next_chunk,
                                     frames_done=done, first_number=first_number)
        reused = self._reusable(units)
        self.reused = sorted(reused)
        self.units = [u for u in units if u.number not in reused]
        meter = ProgressMeter(plan.frame_count, done)
        # Segments finished ahead of the first unfinished one stay in the journal: counted as
        # done from the start, committed in order as the ones before them are.
        meter.advance(sum(u.frames for u in units if u.number in reused))
        token = uuid.uuid4().hex
        probe = journal.folder / PROBE_FILE
        probe.write_text(token, encoding="utf-8")
        try:
            ctx = self._context(reader, chunks, origin, fast, token)
            yield from self._promote_ready(reused, meter, len(chunks))
            if not self.units:
                return
            scheduler = Scheduler(self.session, ctx, self.units,
                                  needs_gpu=not fast and needs_gpu(plan, self.job),
                                  cancel=self.cancel)
            self.scheduler = scheduler
            workers = scheduler.open()
            self._speeds = {h.number: (h.label, 0.0, 0) for h in workers}
            again = f" ({len(reused)} finished ones kept)" if reused else ""
            yield self._event(meter.event(
                "restore", chunk=next_chunk, chunks=len(chunks),
                message=f"{len(self.units)} segment(s){again} on {len(workers)} "
                f"cluster worker(s)"))
            for item in scheduler.results(on_finished=lambda f: self._on_finished(ctx, f)):
                if item is None:
                    if self._due():
                        yield self._event(meter.event("restore", chunk=next_chunk,
                                                      chunks=len(chunks)))
                    continue
                self._commit_unit(ctx, item)
                meter.advance(item.unit.frames)
                next_chunk = item.unit.chunk_stop
                speed = _fps(item)
                yield self._event(meter.event(
                    "restore", chunk=next_chunk, chunks=len(chunks),
                    message=f"segment {item.unit.number} by {item.worker.label} at "
                    f"{speed:.1f} fps"))
                yield from self._promote_ready(reused, meter, len(chunks))
        finally:
            self.scheduler = None
            probe.unlink(missing_ok=True)

    def _reusable(self, units: list[WorkUnit]) -> set[int]:
        """Numbers of the planned units that a killed run finished out of order (the journal's
        `ahead` segments, where they hold exactly that unit); others there are dropped."""
        journal = self.journal
        assert journal is not None
        reused = set()
        by_number = {u.number: u for u in units}
        for number, record in list(journal.ahead.items()):
            unit = by_number.get(number)
            next_chunk = None if unit is None else \
                (unit.frame_stop if unit.passthrough else unit.chunk_stop)
            if unit is not None and (record.frames_start, record.frames_done, record.frames,
                                     record.next_chunk) == (unit.frame_start, unit.frame_stop,
                                                            unit.frames, next_chunk):
                reused.add(number)
            else:
                log.info("segment %d of the journal does not match the plan: restored again",
                         number)
                del journal.ahead[number]
        return reused

    def _promote_ready(self, reused: set[int], meter: ProgressMeter, chunks: int
                       ) -> Iterator[ProgressEvent]:
        """Commit the segments kept from a killed run that come next, in order."""
        journal = self.journal
        assert journal is not None
        while len(journal.segments) in reused and len(journal.segments) in journal.ahead:
            number = len(journal.segments)
            with writing(journal.folder.parent):
                record = journal.promote(self.damaged)
            self.damaged = record.damaged
            yield self._event(meter.event(
                "restore", chunk=record.next_chunk, chunks=chunks,
                message=f"segment {number} kept from the interrupted run"))

    def _event(self, event: ProgressEvent) -> ClusterProgressEvent:
        """`event` with what each worker is doing now (see cluster/progress.py)."""
        scheduler = self.scheduler
        current: dict[int, int] = {}
        if scheduler is not None:
            for unit, handle in scheduler.running.values():  # a worker runs its units in order
                current[handle.number] = min(current.get(handle.number, unit.number),
                                             unit.number)
        rows = tuple(WorkerProgress(label, current.get(number), fps, done)
                     for number, (label, fps, done) in sorted(self._speeds.items()))
        return ClusterProgressEvent(**{f.name: getattr(event, f.name) for f in fields(event)},
                                    workers=rows)

    def _on_finished(self, ctx: JobContext, item: Finished) -> None:
        """A unit finished (in any order): note its worker's speed, journal it if ahead."""
        _label, _fps_before, done = self._speeds.get(item.worker.number, ("", 0.0, 0))
        self._speeds[item.worker.number] = (item.worker.label, _fps(item), done + 1)
        self._record_ahead(ctx, item)

    def _record_ahead(self, ctx: JobContext, item: Finished) -> None:
        """Journal a unit that finished while an earlier one has not (so a killed driver does
        not lose it); `_commit_unit` moves it into the finished prefix when its turn comes."""
        journal = self.journal
        assert journal is not None
        unit, result = item.unit, item.result
        if unit.number <= len(journal.segments):
            return  # the next in line: committed right away
        name = ctx.segment_name(unit)
        next_chunk = unit.frame_stop if unit.passthrough else unit.chunk_stop
        with writing(journal.folder.parent):
            if result.data is not None:
                atomic_write_bytes(journal.folder / name, result.data)
                result.data = None  # on disk now: not held in memory until its turn
            journal.record_ahead(unit.number, SegmentRecord(name, result.frames, next_chunk,
                                                            unit.frame_stop, result.damaged),
                                 result.tail)
        result.tail = None

    def _stop(self, keep: bool) -> None:
        journal = self.journal
        if keep and journal is not None and journal.last is None and journal.ahead:
            # Only segments finished out of order: worth keeping for --resume all the same.
            if self.sink is not None:
                self.sink.abort()
            journal.close()
            return
        super()._stop(keep)

    def _context(self, reader: Any, chunks: list[Any], origin: Fraction, fast: bool,
                 token: str) -> JobContext:
        assert self.journal is not None
        st = os.stat(self.plan.input_path)
        return JobContext(
            key=token, job=replace(self.job, post_process=None), plan=self.plan,
            chunks=list(chunks), origin=origin, params=self.sink.params,
            source=self.source_info(reader), fast=fast,
            high_bit_depth=self.video.bit_depth > 8, work_folder=str(self.journal.folder),
            token=token, source_size=st.st_size, source_mtime_ns=st.st_mtime_ns,
            engine_options=dict(self.job.engine_options))

    def _commit_unit(self, ctx: JobContext, item: Finished) -> None:
        """Journal a finished unit exactly as a local run journals the same segment."""
        journal = self.journal
        assert journal is not None
        unit, result = item.unit, item.result
        if unit.number in journal.ahead:  # journaled when it finished (see _record_ahead)
            with writing(journal.folder.parent):
                self.damaged = journal.promote(self.damaged).damaged
            return
        name = ctx.segment_name(unit)
        # A pass-through run journals frames as its chunk counter (see _restore_passthrough).
        next_chunk = unit.frame_stop if unit.passthrough else unit.chunk_stop
        self.damaged += result.damaged
        with writing(journal.folder.parent):
            if result.data is not None:
                atomic_write_bytes(journal.folder / name, result.data)
            journal.commit(SegmentRecord(name, result.frames, next_chunk, unit.frame_stop,
                                         self.damaged), result.tail)
