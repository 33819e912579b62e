"""The streaming restore pipeline: reader -> planner -> engine -> blender -> writer.

`run_restore` is a generator of ProgressEvents that the CLI, the GUI worker and the project
renderer all drive. Memory is bounded by one chunk plus the blender's overlap tail, whatever the
video length. Output goes through journaled segments (see journal.py and media/writer.py): a
cancelled or crashed job can be resumed with `resume=True`, and because an uninterrupted job is
built from the same segments, the resumed result is identical to it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from seedvr_desktop.engine.base import Engine, ProgressEvent
from seedvr_desktop.engine.job import RestoreJob
from seedvr_desktop.engine.plan import plan_job
from seedvr_desktop.engine.still import restore_image
from seedvr_desktop.engine.video_run import VideoRun


def run_restore(job: RestoreJob, cancel: threading.Event | None = None, *,
                engine: Engine | None = None) -> Iterator[ProgressEvent]:
    """Restore one input to one output, yielding progress; see the module docstring.

    The last event has stage "done" (message: what was written, damaged frames, notices) or
    "cancelled". User mistakes raise UserError before anything is written. `engine`: an engine
    already built for `job.engine` (the GUI keeps its model loaded between jobs); the pipeline
    then uses it instead of creating one and leaves it open. Otherwise the pipeline creates the
    engine and closes it at the end.
    """
    cancel = cancel or threading.Event()
    plan = plan_job(job)  # user errors surface here, before any event
    yield ProgressEvent("probe", 0, plan.frame_count)
    for note in plan.notes:
        yield ProgressEvent("probe", 0, plan.frame_count, message=note)
    if plan.is_image:
        yield from restore_image(job, plan, cancel, engine)
        return
    yield from VideoRun(job, plan, cancel, engine).events()


__all__ = ["run_restore"]
