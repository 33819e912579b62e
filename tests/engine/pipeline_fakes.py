"""A fast chunked test engine for the pipeline tests (registered as "test-chunky").

It behaves like SeedVR from the pipeline's point of view (4n+1 chunks, overlapping neighbours)
but costs nothing: each chunk is resized and brightened by an amount that depends on the chunk
index, so a wrongly blended or wrongly resumed chunk shows up as different pixels.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import cv2
import numpy as np

from seedvr_desktop.engine.base import ChunkContext, Engine, EngineCaps
from seedvr_desktop.engine.registry import register_engine

CHUNKY_CAPS = EngineCaps(name="test-chunky", chunk_length=9, overlap=2, temporal_multiple=4,
                         size_multiple=2, description="test engine")

# Every restore_chunk call, as (chunk index, first source frame, frames without the padding);
# the padding repeats the last real frame, the synthetic clips never do. Tests clear it.
CALLS: list[tuple[int, int, int]] = []
# Called with the chunk context after each chunk (tests use it to cancel or interrupt).
HOOK: list[Callable[[ChunkContext], None]] = []


class ChunkyEngine(Engine):
    caps = CHUNKY_CAPS

    def restore_chunk(self, frames: np.ndarray, context: ChunkContext,
                      cancel: threading.Event | None = None) -> np.ndarray:
        out_w, out_h = self.output_size
        t = frames.shape[0]
        out = np.empty((t, out_h, out_w, 3), np.float32)
        for i in range(t):
            out[i] = cv2.resize(frames[i], (out_w, out_h), interpolation=cv2.INTER_LINEAR)
        # Chunk-dependent change: +0..0.06 brightness, seeded like a generative engine's noise.
        out += 0.02 * ((context.index + context.seed) % 4)
        np.clip(out, 0.0, 1.0, out=out)
        repeats = 1
        while repeats < t and np.array_equal(frames[t - 1 - repeats], frames[-1]):
            repeats += 1
        CALLS.append((context.index, context.first_frame, t - repeats + 1))
        for hook in HOOK:
            hook(context)
        return out


register_engine("test-chunky", lambda **options: ChunkyEngine(), CHUNKY_CAPS, lambda: True,
                priority=-10)


# ----------------------------------------------------------------------------- checks


def decode_video(path: object) -> tuple[list, list[np.ndarray]]:
    """(presentation times as Fractions, RGB frames) of a file's first video stream."""
    import av

    times, images = [], []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            times.append(frame.pts * frame.time_base)
            images.append(frame.to_ndarray(format="rgb24"))
    return times, images


def packet_payloads(path: object, kind: str = "audio") -> list[list[bytes]]:
    """Per stream of `kind` (in order), the payload bytes of every non-empty packet."""
    import av

    with av.open(str(path)) as container:
        count = sum(1 for s in container.streams if s.type == kind)
    out: list[list[bytes]] = []
    for k in range(count):
        with av.open(str(path)) as container:
            stream = [s for s in container.streams if s.type == kind][k]
            out.append([bytes(p) for p in container.demux(stream) if p.size])
    return out
