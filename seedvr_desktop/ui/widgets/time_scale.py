"""Timeline seconds <-> pixels, shared by every track of one timeline."""

from __future__ import annotations


class TimeScale:
    """Pixels per second and scroll offset shared by every track of one timeline."""

    def __init__(self) -> None:
        self.pps = 40.0
        self.offset = 0.0  # timeline seconds at x = 0

    def x(self, t: float) -> float:
        return (t - self.offset) * self.pps

    def t(self, x: float) -> float:
        return x / self.pps + self.offset
