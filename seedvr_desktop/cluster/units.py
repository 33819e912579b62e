"""Work units: the journaled segments of a local run, planned ahead so workers can run them
in any order.

A local run closes a segment at the first chunk boundary after a target number of output
frames (see `VideoRun._restore_chunks`). How many frames each chunk lets out of the overlap
blender depends only on the chunk plan, so the same boundaries are found here without restoring
anything, and a cluster run writes the very segments (and encoder restarts) a local run writes.

A unit that starts at chunk k > 0 needs the blender as it stood after chunk k - 1: the last
`keep` restored frames of that chunk, raw (never blended: 2 * overlap < chunk length). The
worker restores chunk k - 1 once more to rebuild them; noise and seeds are keyed to absolute
frame positions, so that chunk restores to the same pictures as in one long run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from seedvr_desktop.engine.chunking import ChunkPlan

__all__ = ["WorkUnit", "held_after", "plan_chunk_units", "plan_frame_units"]


@dataclass(frozen=True)
class WorkUnit:
    """One segment to restore and encode.

    `chunk_start`/`chunk_stop`: the chunks whose output it holds (both 0 for pass-through
    units, which copy decoded pictures). `frame_start`/`frame_stop`: the output frames it holds,
    relative to the job's first frame. `number`: its segment number in the journal.
    """

    number: int
    chunk_start: int
    chunk_stop: int
    frame_start: int
    frame_stop: int

    @property
    def frames(self) -> int:
        return self.frame_stop - self.frame_start

    @property
    def passthrough(self) -> bool:
        return self.chunk_stop == self.chunk_start


def held_after(chunk: ChunkPlan, overlap: int) -> int:
    """Frames the blender holds back after pushing `chunk` (see `OverlapBlender.push`)."""
    return min(overlap, chunk.real_length - chunk.overlap_before)


def plan_chunk_units(chunks: Sequence[ChunkPlan], overlap: int, target: int, *,
                     next_chunk: int = 0, frames_done: int = 0, first_number: int = 0
                     ) -> list[WorkUnit]:
    """The segments a local run writes from chunk `next_chunk` on (a resumed journal's
    `next_chunk` and `frames_done`), closing one once it holds `target` frames or more."""
    units: list[WorkUnit] = []
    held = held_after(chunks[next_chunk - 1], overlap) if next_chunk > 0 else 0
    start_chunk, start_frame, in_segment = next_chunk, frames_done, 0
    done = frames_done
    for cp in chunks[next_chunk:]:
        keep = held_after(cp, overlap)
        # push() lets out the held tail (blended or, at a cut, as it is) and the chunk's own
        # frames but its last `keep`; the last chunk's flush lets those out too.
        emitted = held + cp.real_length - cp.overlap_before - keep
        held = keep
        last = cp.index == len(chunks) - 1
        if last:
            emitted += held
        in_segment += emitted
        done += emitted
        if in_segment >= target or last:
            units.append(WorkUnit(first_number + len(units), start_chunk, cp.index + 1,
                                  start_frame, done))
            start_chunk, start_frame, in_segment = cp.index + 1, done, 0
    return units


def plan_frame_units(total: int, target: int, *, frames_done: int = 0,
                     first_number: int = 0) -> list[WorkUnit]:
    """Pass-through segments (engine `none` at the source size): `target` frames each."""
    units: list[WorkUnit] = []
    start = frames_done
    while start < total:
        stop = min(start + target, total)
        units.append(WorkUnit(first_number + len(units), 0, 0, start, stop))
        start = stop
    return units
