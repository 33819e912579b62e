"""Chunk planner, cross-fade weights, overlap blender and chunk assembler."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seedvr_desktop.engine.chunking import (
    ChunkPlan,
    OverlapBlender,
    chunk_frame_indices,
    crossfade_weights,
    pad_chunk,
    plan_chunks,
    valid_length,
)


@st.composite
def plan_args(draw: st.DrawFn) -> tuple[int, int, int, int, list[int]]:
    """frame_count, chunk_length, overlap, temporal_multiple, cuts."""
    multiple = draw(st.sampled_from([1, 2, 4]))
    length = draw(st.integers(1, 12)) * multiple + 1
    overlap = draw(st.integers(0, (length - 1) // 2))
    count = draw(st.integers(0, 160))
    cuts = draw(st.lists(st.integers(-3, count + 3), max_size=8))
    return count, length, overlap, multiple, cuts


def test_valid_length() -> None:
    assert [valid_length(n, 4) for n in (0, 1, 2, 5, 6, 9, 10)] == [1, 1, 5, 5, 9, 9, 13]
    assert [valid_length(n, 1) for n in (1, 2, 7)] == [1, 2, 7]
    with pytest.raises(ValueError):
        valid_length(3, 0)


def test_plan_example_with_cut_and_padding() -> None:
    # 4n+1 chunks of 9 with overlap 2; a cut at 12; 30 frames.
    plans = plan_chunks(30, 9, 2, temporal_multiple=4, cuts=[12])
    got = [(p.start, p.stop, p.pad, p.overlap_before) for p in plans]
    assert got == [
        (0, 9, 0, 0),
        (7, 12, 0, 2),  # 5 frames: already 4*1+1, ends at the cut
        (12, 21, 0, 0),  # the cut starts a fresh chunk without overlap
        (19, 28, 0, 2),
        (26, 30, 1, 2),  # 4 real frames padded to 5 with one repeat of frame 29
    ]
    assert plans[-1].frame_indices() == [26, 27, 28, 29, 29]
    assert [p.index for p in plans] == list(range(len(plans)))


def test_short_scene_gets_its_own_padded_chunk() -> None:
    plans = plan_chunks(20, 9, 2, temporal_multiple=4, cuts=[8, 10])
    short = [p for p in plans if p.start == 8]
    assert len(short) == 1
    assert (short[0].stop, short[0].pad, short[0].overlap_before) == (10, 3, 0)
    assert chunk_frame_indices(short[0]) == [8, 9, 9, 9, 9]


def test_plan_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        plan_chunks(10, 5, 3)  # 2 * overlap >= length
    with pytest.raises(ValueError):
        plan_chunks(-1, 5, 1)
    with pytest.raises(ValueError):
        plan_chunks(10, 0, 0)
    assert plan_chunks(0, 5, 1) == []
    # an invalid chunk length is lowered to the largest valid one
    assert plan_chunks(20, 8, 1, temporal_multiple=4)[0].stop == 5


def test_min_length_pads_short_chunks() -> None:
    plans = plan_chunks(3, 9, 2, temporal_multiple=4, min_length=9)
    assert [(p.start, p.stop, p.pad) for p in plans] == [(0, 3, 6)]


@settings(max_examples=300, deadline=None)
@given(plan_args())
def test_plan_properties(args: tuple[int, int, int, int, list[int]]) -> None:
    count, length, overlap, multiple, cuts = args
    plans = plan_chunks(count, length, overlap, temporal_multiple=multiple, cuts=cuts)
    scene_starts = {0} | {c for c in cuts if 0 < c < count}
    if count == 0:
        assert plans == []
        return
    assert plans[0].start == 0 and plans[-1].stop == count
    for p in plans:
        assert 1 <= p.real_length <= length
        assert (p.length - 1) % multiple == 0  # every chunk is a valid length ...
        assert p.length == valid_length(p.real_length, multiple)  # ... with minimal padding
        assert not any(p.start < c < p.stop for c in scene_starts)  # no chunk spans a cut
        # a scene's first chunk has no overlap; every later one has exactly `overlap`
        assert p.overlap_before == (0 if p.start in scene_starts else overlap)
    for prev, cur in itertools.pairwise(plans):
        assert cur.start == prev.stop - cur.overlap_before  # contiguous, overlap as declared
        assert cur.first_new == prev.stop


def test_crossfade_weights() -> None:
    assert crossfade_weights(0).shape == (0,)
    for n in (1, 2, 3, 8, 33, 5000):
        w = crossfade_weights(n)
        assert w.dtype == np.float32 and w.shape == (n,)
        assert np.all(w > 0.0) and np.all(w < 1.0)
        assert np.all(np.diff(w) > 0) if n < 1000 else np.all(np.diff(w) >= 0)
        np.testing.assert_allclose(w + w[::-1], 1.0, atol=1e-6)
    np.testing.assert_allclose(crossfade_weights(1), [0.5])
    # smooth: the steps grow towards the middle and shrink again (raised cosine, not linear)
    steps = np.diff(crossfade_weights(9))
    assert steps[0] < steps[3] and steps[-1] < steps[4]


def _restore(plan: ChunkPlan, tag: float) -> np.ndarray:
    """A fake engine: frame value = source index + tag, on a (length, 2, 3, 3) chunk."""
    idx = np.array(chunk_frame_indices(plan), np.float32)
    return np.broadcast_to(idx[:, None, None, None] + tag, (plan.length, 2, 3, 3)).copy()


def _run_blender(plans: list[ChunkPlan], overlap: int, tag_of=lambda p: 0.0):
    blender = OverlapBlender(overlap)
    out = []
    for p in plans:
        out.extend(blender.push(p, _restore(p, tag_of(p))))
    out.extend(blender.flush())
    return out


@settings(max_examples=150, deadline=None)
@given(plan_args())
def test_blender_emits_every_frame_once_in_order(args) -> None:
    count, length, overlap, multiple, cuts = args
    plans = plan_chunks(count, length, overlap, temporal_multiple=multiple, cuts=cuts)
    out = _run_blender(plans, overlap)
    assert [i for i, _ in out] == list(range(count))
    # chunks that agree on a frame blend to that same value (weights sum to one)
    for i, frame in out:
        np.testing.assert_allclose(frame, i, atol=1e-4)


def test_blender_crossfades_and_never_blends_across_cuts() -> None:
    plans = plan_chunks(24, 9, 3, cuts=[14])
    # chunk k adds 100*k, so a blended frame shows how much each chunk contributed
    out = dict(_run_blender(plans, 3, tag_of=lambda p: 100.0 * p.index))
    w = crossfade_weights(3)
    for p in plans[1:]:
        prev_tag = 100.0 * (p.index - 1)
        for j in range(p.overlap_before):
            i = p.start + j
            expect = i + (1 - w[j]) * prev_tag + w[j] * 100.0 * p.index
            assert out[i][0, 0, 0] == pytest.approx(expect, abs=1e-3)
    cut_chunk = next(p for p in plans if p.start == 14)
    assert cut_chunk.overlap_before == 0
    assert out[13][0, 0, 0] == pytest.approx(13 + 100.0 * (cut_chunk.index - 1))
    assert out[14][0, 0, 0] == pytest.approx(14 + 100.0 * cut_chunk.index)


def test_blender_holds_only_the_overlap_tail() -> None:
    plans = plan_chunks(40, 10, 2)
    blender = OverlapBlender(2)
    for p in plans[:-1]:
        blender.push(p, _restore(p, 0.0))
        tail = blender.state()["tail"]
        assert tail is not None and len(tail) == 2
        assert blender.next_index == p.stop - 2


def test_blender_rejects_out_of_order_chunks() -> None:
    plans = plan_chunks(30, 9, 2)
    blender = OverlapBlender(2)
    blender.push(plans[0], _restore(plans[0], 0.0))
    with pytest.raises(ValueError):
        blender.push(plans[2], _restore(plans[2], 0.0))
    with pytest.raises(ValueError):
        blender.push(plans[1], np.zeros((3, 2, 3, 3), np.float32))  # wrong frame count


@pytest.mark.parametrize("split", [1, 2, 3, 5])
def test_blender_state_round_trip_equals_uninterrupted(split: int) -> None:
    plans = plan_chunks(50, 9, 2, temporal_multiple=4, cuts=[20])
    tag = lambda p: 10.0 * p.index  # noqa: E731
    whole = _run_blender(plans, 2, tag)
    first = OverlapBlender(2)
    out = []
    for p in plans[:split]:
        out.extend(first.push(p, _restore(p, tag(p))))
    state = first.state()
    resumed = OverlapBlender.from_state(state)
    for p in plans[split:]:
        out.extend(resumed.push(p, _restore(p, tag(p))))
    out.extend(resumed.flush())
    assert [i for i, _ in out] == [i for i, _ in whole]
    for (_, a), (_, b) in zip(out, whole):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError):
        OverlapBlender.from_state({**state, "version": 99})


def test_pad_chunk() -> None:
    plan = ChunkPlan(0, 4, 7, 2, 0)
    frames = np.arange(3, dtype=np.float32).reshape(3, 1, 1, 1)
    assert pad_chunk(plan, frames)[:, 0, 0, 0].tolist() == [0, 1, 2, 2, 2]
    with pytest.raises(ValueError):
        pad_chunk(plan, frames[:2])
