"""Frame numbers and timecodes as editors read them (no Qt)."""

from __future__ import annotations

import math


def timecode(frame: int, fps: float) -> str:
    """Non-drop-frame SMPTE-style HH:MM:SS:FF for frame `frame` at `fps` frames per second.

    NTSC rates (29.97) count 30 frame labels per second, as non-drop timecode does, so the label
    drifts from wall-clock time by 0.1 %; the seconds display (`clock`) is exact instead.
    """
    if fps <= 0 or not math.isfinite(fps):
        return "--:--:--:--"
    base = max(1, round(fps))
    frame = max(0, int(frame))
    ff = frame % base
    total_seconds = frame // base
    hh, mm, ss = total_seconds // 3600, total_seconds // 60 % 60, total_seconds % 60
    return f"{hh:02d}:{mm:02d}:{ss:02d}:{ff:02d}"


def clock(seconds: float) -> str:
    """M:SS.s (or H:MM:SS.s) wall-clock time, for durations in the media bin and the ruler."""
    seconds = max(0.0, float(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours >= 1:
        return f"{int(hours)}:{int(minutes):02d}:{secs:04.1f}"
    return f"{int(minutes)}:{secs:04.1f}"
