"""Chunk planning and overlap blending: how a frame range is cut into engine-sized pieces.

Engines restore a fixed number of frames at a time (SeedVR: 4n+1). Cutting a video into
back-to-back chunks would show a seam wherever two chunks meet, so neighbouring chunks share
`overlap` frames that are cross-faded with smooth weights. Two rules keep the result clean:

* A chunk never spans a scene cut. Blending across a cut would ghost two unrelated shots into each
  other, and a temporal model gains nothing from frames of another shot. A cut therefore starts a
  new chunk with no overlap, and a scene shorter than a chunk gets a chunk of its own.
* The last chunk of a scene is usually short. It is padded to a length the engine accepts by
  repeating its last frame, and the padded frames are dropped again after restoration.

Everything here is pure and cheap; the pipeline calls it, the blender holds only the pending
overlap tail (bounded memory), and the blender's state round-trips through a resume journal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "ChunkPlan",
    "OverlapBlender",
    "chunk_frame_indices",
    "crossfade_weights",
    "pad_chunk",
    "plan_chunks",
    "valid_length",
]


@dataclass(frozen=True)
class ChunkPlan:
    """One engine call: real source frames [start, stop) plus `pad` repeats of frame stop-1."""

    index: int
    start: int
    stop: int
    pad: int  # copies of frame stop-1 appended to reach a valid length
    overlap_before: int  # frames at the start shared with (and blended into) the previous chunk

    @property
    def real_length(self) -> int:
        """Source frames in the chunk, without padding."""
        return self.stop - self.start

    @property
    def length(self) -> int:
        """Frames the engine receives, padding included."""
        return self.stop - self.start + self.pad

    @property
    def first_new(self) -> int:
        """The first frame that no earlier chunk covered."""
        return self.start + self.overlap_before

    def frame_indices(self) -> list[int]:
        """Source frame indices the engine receives, in order, padding included."""
        return chunk_frame_indices(self)


def valid_length(n: int, temporal_multiple: int) -> int:
    """The smallest length k*temporal_multiple + 1 that holds `n` frames (at least 1)."""
    if temporal_multiple < 1:
        raise ValueError(f"temporal_multiple must be >= 1, got {temporal_multiple}")
    if n <= 1:
        return 1
    k = -(-(n - 1) // temporal_multiple)  # ceil((n - 1) / m)
    return k * temporal_multiple + 1


def _largest_valid(n: int, temporal_multiple: int) -> int:
    """The largest valid length not above `n`."""
    return ((n - 1) // temporal_multiple) * temporal_multiple + 1


def plan_chunks(
    frame_count: int,
    chunk_length: int,
    overlap: int,
    *,
    temporal_multiple: int = 1,
    cuts: Sequence[int] = (),
    min_length: int = 1,
) -> list[ChunkPlan]:
    """Split frames [0, frame_count) into overlapping chunks that never cross a scene cut.

    `cuts` holds the index of the first frame of each new scene (0 and out-of-range values are
    ignored). `chunk_length` is lowered to the largest valid length if needed. `overlap` must
    leave every full chunk at least one frame that no neighbour shares
    (2 * overlap < chunk_length), so no frame is ever blended from three chunks. Chunks shorter
    than `min_length` (the engine's minimum) are padded up to it as well.
    """
    if frame_count < 0:
        raise ValueError(f"frame_count must be >= 0, got {frame_count}")
    if chunk_length < 1:
        raise ValueError(f"chunk_length must be >= 1, got {chunk_length}")
    length = _largest_valid(chunk_length, temporal_multiple)
    if overlap < 0 or 2 * overlap >= length:
        raise ValueError(f"overlap {overlap} does not fit chunks of {length} frames")
    floor = valid_length(max(1, min_length), temporal_multiple)
    if floor > length:
        raise ValueError(f"min_length {min_length} exceeds the chunk length {length}")

    if frame_count == 0:
        return []
    bounds = sorted({c for c in cuts if 0 < c < frame_count})
    scenes = zip([0, *bounds], [*bounds, frame_count])
    plans: list[ChunkPlan] = []
    for scene_start, scene_stop in scenes:
        start, overlap_before = scene_start, 0
        while True:
            stop = min(start + length, scene_stop)
            padded = max(valid_length(stop - start, temporal_multiple), floor)
            plans.append(
                ChunkPlan(len(plans), start, stop, padded - (stop - start), overlap_before)
            )
            if stop == scene_stop:
                break
            start, overlap_before = stop - overlap, overlap
    return plans


def chunk_frame_indices(plan: ChunkPlan) -> list[int]:
    """Source frames the engine receives for `plan`, the last one repeated `pad` times."""
    return [*range(plan.start, plan.stop), *([plan.stop - 1] * plan.pad)]


def pad_chunk(plan: ChunkPlan, frames: np.ndarray) -> np.ndarray:
    """Append the padding to the chunk's real frames: (real, H, W, C) -> (length, H, W, C)."""
    if len(frames) != plan.real_length:
        raise ValueError(f"chunk {plan.index} needs {plan.real_length} frames, got {len(frames)}")
    if plan.pad == 0:
        return frames
    tail = np.repeat(frames[-1:], plan.pad, axis=0)
    return np.concatenate([frames, tail], axis=0)


def crossfade_weights(n: int) -> np.ndarray:
    """(n,) float32 weights of the NEW chunk across an overlap of n frames.

    A raised cosine sampled strictly inside (0, 1): it rises smoothly, is symmetric
    (w[i] + w[n-1-i] == 1, so the two chunks' weights always sum to one) and never gives either
    chunk a weight of exactly 0 or 1, so both chunks contribute to every shared frame.
    """
    if n < 0:
        raise ValueError(f"overlap must be >= 0, got {n}")
    t = np.arange(1, n + 1, dtype=np.float64) / (n + 1)
    w = (0.5 - 0.5 * np.cos(np.pi * t)).astype(np.float32)
    lo = np.nextafter(np.float32(0), np.float32(1))
    hi = np.nextafter(np.float32(1), np.float32(0))
    return np.clip(w, lo, hi)


class OverlapBlender:
    """Streams restored chunks out as final frames, cross-fading the shared frames.

    Holds back the last `overlap` restored frames of each chunk (the only state) until the next
    chunk shows whether they are shared. Every frame index is emitted exactly once, in order.
    """

    def __init__(self, overlap: int, first_index: int = 0) -> None:
        if overlap < 0:
            raise ValueError(f"overlap must be >= 0, got {overlap}")
        self.overlap = overlap
        self._next = first_index  # the next frame index to emit
        self._tail: np.ndarray | None = None  # (k, H, W, C) restored frames _next.._next+k-1

    @property
    def next_index(self) -> int:
        """The next frame index this blender will emit."""
        return self._next

    def push(self, plan: ChunkPlan, frames: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """Take a restored chunk (padded or not); return the frames that are now final."""
        if len(frames) not in (plan.length, plan.real_length):
            raise ValueError(
                f"chunk {plan.index}: expected {plan.length} frames, got {len(frames)}"
            )
        frames = frames[: plan.real_length]  # drop the padding
        out: list[tuple[int, np.ndarray]] = []
        held = 0 if self._tail is None else len(self._tail)
        shared = plan.overlap_before
        if shared == 0 and self._tail is not None:
            out.extend(self._emit(self._tail))  # a scene cut: the tail is final as it is
            self._tail, held = None, 0
        if plan.start != self._next + held - shared or shared > held:
            raise ValueError(
                f"chunk {plan.index} [{plan.start}, {plan.stop}) with overlap {shared} does not "
                f"follow frame {self._next + held - 1}"
            )
        if shared:
            assert self._tail is not None
            out.extend(self._emit(self._tail[: held - shared]))
            w = crossfade_weights(shared).reshape(-1, *([1] * (frames.ndim - 1)))
            old = self._tail[held - shared :]
            blended = old + w * (frames[:shared] - old)  # == (1 - w) * old + w * new
            out.extend(self._emit(blended.astype(frames.dtype, copy=False)))
            self._tail = None
        keep = min(self.overlap, plan.real_length - shared)
        out.extend(self._emit(frames[shared : plan.real_length - keep]))
        self._tail = frames[plan.real_length - keep :].copy() if keep else None
        return out

    def flush(self) -> list[tuple[int, np.ndarray]]:
        """Emit the held tail: call after the last chunk."""
        if self._tail is None:
            return []
        out = self._emit(self._tail)
        self._tail = None
        return out

    def _emit(self, frames: Iterable[np.ndarray]) -> list[tuple[int, np.ndarray]]:
        out = []
        for frame in frames:
            out.append((self._next, frame))
            self._next += 1
        return out

    def state(self) -> dict[str, object]:
        """Everything needed to continue after a restart (the tail as an array, or None)."""
        return {
            "version": 1,
            "overlap": self.overlap,
            "next_index": self._next,
            "tail": None if self._tail is None else self._tail.copy(),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, object]) -> OverlapBlender:
        """Rebuild a blender saved with `state()`."""
        if state.get("version") != 1:
            raise ValueError(f"unknown blender state version {state.get('version')!r}")
        overlap, next_index = state["overlap"], state["next_index"]
        if not isinstance(overlap, int) or not isinstance(next_index, int):
            raise ValueError("blender state needs integer overlap and next_index")
        blender = cls(overlap, next_index)
        tail = state.get("tail")
        if tail is not None:
            tail = np.asarray(tail)
            if tail.ndim < 1 or len(tail) > overlap:
                raise ValueError("blender state tail does not fit its overlap")
            blender._tail = tail.copy() if len(tail) else None
        return blender
