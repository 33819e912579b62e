"""Restore a run of source frames chunk by chunk and blend the overlaps: the one loop that both
the export (`video_run`) and the GUI preview (`preview`) drive, so a preview shows exactly the
pictures an export of the same range writes.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from seedvr_desktop.engine.base import ChunkContext, Engine, EngineCaps
from seedvr_desktop.engine.chunking import ChunkPlan, OverlapBlender, pad_chunk
from seedvr_desktop.errors import Cancelled

Finished = list[tuple[int, np.ndarray]]  # (frame index relative to the run's first, (H, W, 3))


def stack_frames(plan: ChunkPlan, images: Sequence[Any], scale: float) -> np.ndarray:
    """A chunk's source pictures as float32 [0, 1], padded to the plan's valid length."""
    batch = pad_chunk(plan, np.stack(images))  # (T, H, W, 3) uint8 or uint16
    return np.multiply(batch, scale, dtype=np.float32)


def restore_chunks(engine: Engine, frames: Iterator[Any], chunks: Sequence[ChunkPlan],
                   blender: OverlapBlender, *, first: int, seed: int, scale: float,
                   cancel: threading.Event | None = None,
                   on_read: Callable[[Any], None] | None = None,
                   on_progress: Callable[[float], None] | None = None,
                   ) -> Iterator[tuple[ChunkPlan, Finished]]:
    """For each chunk: restore it and yield the frames the blender has finished.

    `frames` yields the source's VideoFrames (`.index` absolute, `.image`) from the first frame
    the first chunk needs; `first` is the absolute index of relative frame 0 (noise and seeds
    are keyed to absolute positions, so any range restores the same pictures as the whole).
    Overlap frames are kept in a small buffer instead of being decoded twice. `on_read` sees
    every frame read, once. The last chunk's yield includes the blender's held-back tail.
    `on_progress` gets what the engine reports of how far into the current chunk it is
    (`ChunkContext.report`).
    """
    buffer: deque[Any] = deque()  # VideoFrames of the current chunk (and its overlap)
    last_index = chunks[-1].index if chunks else -1
    for cp in chunks:
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        while not buffer or buffer[-1].index - first < cp.stop - 1:
            vf = next(frames)
            if on_read is not None:
                on_read(vf)
            buffer.append(vf)
        while buffer[0].index - first < cp.start:
            buffer.popleft()
        batch = stack_frames(cp, [vf.image for vf in buffer], scale)
        context = ChunkContext(index=cp.index, first_frame=first + cp.start, seed=seed,
                               progress=on_progress)
        restored = engine.restore_chunk(batch, context, cancel)[: cp.stop - cp.start]
        finished = blender.push(cp, restored)
        if cp.index == last_index:
            finished += blender.flush()
        yield cp, finished


def to_uint8(image: np.ndarray) -> np.ndarray:
    """A restored float [0, 1] picture as the 8-bit RGB an 8-bit output stores."""
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def cuts_apply(caps: EngineCaps) -> bool:
    """Whether scene cuts change the chunk plan: not for single-frame chunks without overlap,
    where no chunk can cross a cut."""
    return caps.overlap > 0 or caps.chunk_length > 1
