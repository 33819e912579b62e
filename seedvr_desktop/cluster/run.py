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
from dataclasses import replace
from fractions import Fraction
from typing import Any

from seedvr_desktop.cluster.connect import ClusterSession
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


class ClusterVideoRun(VideoRun):
    """A VideoRun that hands its segments to cluster workers instead of restoring them."""

    def __init__(self, job: RestoreJob, plan: JobPlan, cancel: threading.Event,
                 session: ClusterSession) -> None:
        super().__init__(job, plan, cancel)
        self.session = session
        self.scheduler: Scheduler | None = None  # while restoring (tests kill its workers)
        self.units: list[WorkUnit] = []

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
            self.units = plan_frame_units(plan.frame_count, target, frames_done=done,
                                          first_number=first_number)
        else:
            self.units = plan_chunk_units(chunks, plan.caps.overlap, target,
                                          next_chunk=next_chunk, frames_done=done,
                                          first_number=first_number)
        token = uuid.uuid4().hex
        probe = journal.folder / PROBE_FILE
        probe.write_text(token, encoding="utf-8")
        try:
            ctx = self._context(reader, chunks, origin, fast, token)
            scheduler = Scheduler(self.session, ctx, self.units,
                                  needs_gpu=not fast and needs_gpu(plan, self.job),
                                  cancel=self.cancel)
            self.scheduler = scheduler
            workers = scheduler.open()
            meter = ProgressMeter(plan.frame_count, done)
            yield meter.event("restore", chunk=next_chunk, chunks=len(chunks),
                              message=f"{len(self.units)} segment(s) on {len(workers)} "
                              f"cluster worker(s)")
            for item in scheduler.results():
                if item is None:
                    if self._due():
                        yield meter.event("restore", chunk=next_chunk, chunks=len(chunks))
                    continue
                self._commit_unit(ctx, item)
                meter.advance(item.unit.frames)
                next_chunk = item.unit.chunk_stop
                speed = item.result.frames / item.result.seconds if item.result.seconds else 0
                yield meter.event("restore", chunk=next_chunk, chunks=len(chunks),
                                  message=f"segment {item.unit.number} by {item.worker.label}"
                                  f" at {speed:.1f} fps")
        finally:
            self.scheduler = None
            probe.unlink(missing_ok=True)

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
        name = ctx.segment_name(unit)
        # A pass-through run journals frames as its chunk counter (see _restore_passthrough).
        next_chunk = unit.frame_stop if unit.passthrough else unit.chunk_stop
        self.damaged += result.damaged
        with writing(journal.folder.parent):
            if result.data is not None:
                atomic_write_bytes(journal.folder / name, result.data)
            journal.commit(SegmentRecord(name, result.frames, next_chunk, unit.frame_stop,
                                         self.damaged), result.tail)
