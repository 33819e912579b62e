"""Progress of a cluster job per worker, riding on the job's ordinary ProgressEvents.

`ClusterProgressEvent` is a ProgressEvent (the CLI's bar reads it as one) that also says what
each worker is doing: the segment it restores now and its speed on the last one it finished.
The GUI's queue shows a row per worker from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from seedvr_desktop.engine.base import ProgressEvent


@dataclass(frozen=True)
class WorkerProgress:
    """One worker of a running cluster job."""

    label: str  # "worker 2 on HOST (ADDRESS)"
    segment: int | None  # the segment it restores now (the journal's 0-based number); None: waits
    fps: float  # frames per second on the last segment it finished (0: none yet)
    segments_done: int  # segments of this job it has finished

    @property
    def text(self) -> str:
        """What it does, for people: segments count from 1 there."""
        return f"segment {self.segment + 1}" if self.segment is not None else "waiting"


@dataclass(frozen=True)
class ClusterProgressEvent(ProgressEvent):
    """A ProgressEvent of a cluster job, with every worker's state (see the module doc)."""

    workers: tuple[WorkerProgress, ...] = ()


def worker_rows(event: ProgressEvent) -> tuple[WorkerProgress, ...]:
    """The per-worker rows an event carries (none for a job on this computer)."""
    return event.workers if isinstance(event, ClusterProgressEvent) else ()
