"""Progress of a running job: frames per second over a sliding window and the time left, and
heartbeats while one long chunk is being restored (nothing finished, time still passing)."""

from __future__ import annotations

import time as _time

import numpy as np

from seedvr_desktop.engine.base import ProgressEvent


class ProgressMeter:
    """Frames per second over a sliding window, and the time left at that pace."""

    def __init__(self, total: int, done: int = 0, window: float = 10.0) -> None:
        self.total = total
        self.done = done
        self._window = window
        self._marks: list[tuple[float, int]] = [(_time.monotonic(), done)]

    def advance(self, frames: int) -> None:
        self.done += frames
        now = _time.monotonic()
        self._marks.append((now, self.done))
        while len(self._marks) > 2 and now - self._marks[1][0] > self._window:
            self._marks.pop(0)

    @property
    def fps(self) -> float:
        (t0, n0), (t1, n1) = self._marks[0], self._marks[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0

    @property
    def eta(self) -> float | None:
        fps = self.fps
        return (self.total - self.done) / fps if fps > 0 else None

    def event(self, stage: str, *, chunk: int = 0, chunks: int = 0, message: str = "",
              preview: np.ndarray | None = None) -> ProgressEvent:
        return ProgressEvent(stage, self.done, self.total, self.fps, self.eta, chunk, chunks,
                             message, preview)

    def pulse(self, stage: str, *, elapsed: float, chunk_frames: int, reported: float | None,
              chunk: int = 0, chunks: int = 0, message: str = "") -> ProgressEvent:
        """A heartbeat `elapsed` seconds into a chunk that will finish `chunk_frames` frames.

        How far into the chunk: what the engine reported (0..1), else the pace of the chunks
        before (never quite all of it: the chunk is not done until it is), else unknown. The
        time left counts down from that, so neither the bar nor the ETA stands still while a
        single chunk takes minutes; a chunk slower than the pace before makes the ETA grow.
        """
        fps = self.fps
        partial = 0.0
        if reported is not None and reported > 0:
            partial = reported * chunk_frames
        elif fps > 0:
            partial = min(elapsed * fps, 0.95 * chunk_frames)
        partial = min(partial, 0.99 * chunk_frames, max(self.total - self.done, 0))
        remaining = max(self.total - self.done - partial, 0.0)
        rate = 0.0
        if reported is not None and reported > 0 and elapsed > 0:
            rate = partial / elapsed  # this chunk's own pace
        elif fps > 0:
            # On pace: the time left counts down; past the chunk's expected time, the pace
            # this chunk shows at least (all its frames in the time so far) takes over.
            rate = fps if elapsed * fps <= chunk_frames else chunk_frames / elapsed
        eta = remaining / rate if rate > 0 else None
        return ProgressEvent(stage, self.done, self.total, fps, eta, chunk, chunks, message,
                             None, partial)
