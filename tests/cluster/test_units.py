"""Work units are the segments a local run journals, planned without restoring anything."""

from __future__ import annotations

import itertools

import numpy as np

from seedvr_desktop.cluster.units import plan_chunk_units, plan_frame_units
from seedvr_desktop.engine.chunking import OverlapBlender, plan_chunks


def _local_segments(chunks: list, overlap: int, target: int) -> list[tuple[int, int]]:
    """(next_chunk, frames_done) at each segment boundary, as VideoRun's loop finds them."""
    blender = OverlapBlender(overlap)
    bounds, in_segment, done = [], 0, 0
    for cp in chunks:
        out = blender.push(cp, np.zeros((cp.length, 1, 1, 1), np.float32))
        if cp.index == len(chunks) - 1:
            out += blender.flush()
        in_segment += len(out)
        done += len(out)
        if in_segment >= target or cp.index == len(chunks) - 1:
            bounds.append((cp.index + 1, done))
            in_segment = 0
    return bounds


def test_units_match_the_segments_of_a_local_run() -> None:
    for frames, length, overlap, cuts, target in [(68, 16, 2, [23, 42], 16),
                                                  (61, 9, 4, [], 10), (40, 9, 4, [3, 20], 5),
                                                  (17, 5, 2, [16], 1), (7, 16, 2, [], 100)]:
        chunks = plan_chunks(frames, length, overlap, temporal_multiple=4 if length == 9 else 1,
                             cuts=cuts)
        units = plan_chunk_units(chunks, overlap, target)
        assert [(u.chunk_stop, u.frame_stop) for u in units] == \
            _local_segments(chunks, overlap, target)
        assert units[0].frame_start == 0 and units[-1].frame_stop == frames
        assert all(a.frame_stop == b.frame_start and a.chunk_stop == b.chunk_start
                   for a, b in itertools.pairwise(units))
        assert [u.number for u in units] == list(range(len(units)))


def test_units_after_a_resume_continue_the_same_boundaries() -> None:
    chunks = plan_chunks(68, 16, 2, cuts=[23, 42])
    whole = plan_chunk_units(chunks, 2, 16)
    first = whole[0]
    rest = plan_chunk_units(chunks, 2, 16, next_chunk=first.chunk_stop,
                            frames_done=first.frame_stop, first_number=1)
    assert rest == whole[1:]


def test_pass_through_units_cut_frames_evenly() -> None:
    units = plan_frame_units(25, 10, frames_done=5, first_number=2)
    assert [(u.number, u.frame_start, u.frame_stop, u.passthrough) for u in units] == \
        [(2, 5, 15, True), (3, 15, 25, True)]
