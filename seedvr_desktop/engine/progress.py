"""Progress of a running job: frames per second over a sliding window and the time left."""

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
