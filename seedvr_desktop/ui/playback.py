"""Playhead, transport (play, J/K/L shuttle, frame steps, in/out marks) and what the viewer shows.

The controller turns a timeline time into (clip, source frame), asks the frame source for that
frame and shows whatever comes back if it still answers the newest request; results for older
requests are dropped so a fast drag never shows the picture "catching up" backwards.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from seedvr_desktop.ui.frame_source import FrameResult, FrameSource
from seedvr_desktop.ui.timeline_model import ClipSpan
from seedvr_desktop.ui.widgets.timeline import TimelineWidget
from seedvr_desktop.ui.widgets.viewer import ViewerWidget

log = logging.getLogger(__name__)

TICK_MS = 15
MAX_SHUTTLE = 8.0

# (clip id, media path, frame index) -> restored frame or None
RestoredLookup = Callable[[str, str, int], "np.ndarray | None"]


class PlaybackController(QObject):
    """Owns the playhead; drives the viewer from the frame source."""

    position_changed = Signal(float)
    frame_shown = Signal(object)  # FrameResult actually put on screen
    trim_requested = Signal(str, int, object)  # clip id, in frame, out frame (exclusive) or None
    clip_changed = Signal(str)  # clip id under the playhead

    def __init__(self, viewer: ViewerWidget, timeline: TimelineWidget, frames: FrameSource,
                 restored: RestoredLookup, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.viewer, self.timeline, self.frames = viewer, timeline, frames
        self._restored = restored
        self.clips: list[ClipSpan] = []
        self.position = 0.0
        self.speed = 0.0  # frames-per-second multiplier; 0 = paused
        self._anchor = (0.0, 0.0)  # (timeline seconds, wall clock) when play started
        self._target: tuple[str, int] | None = None
        self._clip_id = ""
        self.shown: FrameResult | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._on_timer_timeout)
        frames.frame_ready.connect(self._on_frames_frame_ready)
        frames.failed.connect(self._on_frames_failed)
        timeline.scrubbed.connect(self._on_timeline_scrubbed)

    # ---------------------------------------------------------------- layout
    def set_clips(self, clips: list[ClipSpan]) -> None:
        self.clips = list(clips)
        if not clips:
            self.pause()
            self._target, self.shown, self._clip_id = None, None, ""
            self.viewer.set_frames(None)
            return
        self.seek(min(self.position, self.duration() - 1e-6))

    def duration(self) -> float:
        return self.clips[-1].end if self.clips else 0.0

    def clip_at(self, t: float) -> ClipSpan | None:
        for clip in self.clips:
            if t < clip.end:
                return clip
        return self.clips[-1] if self.clips else None

    def current(self) -> tuple[ClipSpan | None, int]:
        clip = self.clip_at(self.position)
        return clip, (clip.frame_at(self.position) if clip else 0)

    # ---------------------------------------------------------------- seeking
    def seek(self, t: float, *, dragging: bool = False) -> None:
        if not self.clips:
            return
        self.position = min(max(0.0, t), max(0.0, self.duration() - 1e-6))
        clip, frame = self.current()
        assert clip is not None
        if clip.clip_id != self._clip_id:
            self._clip_id = clip.clip_id
            self.frames.build_proxy(clip.path)
            self.clip_changed.emit(clip.clip_id)
        target = (clip.path, frame)
        if target != self._target or not dragging:
            self._target = target
            self.frames.request(clip.path, frame, dragging=dragging)
        self.timeline.set_playhead(self.position)
        self.position_changed.emit(self.position)

    def seek_frame(self, clip_id: str, frame: int) -> None:
        for clip in self.clips:
            if clip.clip_id == clip_id:
                frame = min(max(frame, clip.in_frame), clip.out_frame - 1)
                self.seek(clip.time_of(frame) + 0.5 / clip.fps)
                return

    def step(self, frames: int) -> None:
        """Move by whole frames, crossing into the neighbouring clip at the ends."""
        self.pause()
        clip, frame = self.current()
        if clip is None:
            return
        target = frame + frames
        if target < clip.in_frame:
            index = self.clips.index(clip)
            if index > 0:
                prev = self.clips[index - 1]
                self.seek_frame(prev.clip_id, prev.out_frame - 1)
            return
        if target >= clip.out_frame:
            index = self.clips.index(clip)
            if index + 1 < len(self.clips):
                self.seek_frame(self.clips[index + 1].clip_id, self.clips[index + 1].in_frame)
            return
        self.seek_frame(clip.clip_id, target)

    def _on_timeline_scrubbed(self, t: float, dragging: bool) -> None:
        self.pause()
        self.seek(t, dragging=dragging)

    # ---------------------------------------------------------------- transport
    def is_playing(self) -> bool:
        return self.speed != 0.0

    def toggle_play(self) -> None:
        if self.is_playing():
            self.pause()
        else:
            if self.position >= self.duration() - 0.05:
                self.seek(0.0)
            self._play(1.0)

    def pause(self) -> None:
        if self.speed != 0.0:
            self.speed = 0.0
            self._timer.stop()
            self.seek(self.position)  # settle on the exact frame

    def shuttle(self, direction: int) -> None:
        """J (-1), K (0), L (+1): repeated J or L doubles the speed up to 8×."""
        if direction == 0:
            self.pause()
        elif direction > 0:
            self._play(1.0 if self.speed <= 0 else min(MAX_SHUTTLE, self.speed * 2))
        else:
            self._play(-1.0 if self.speed >= 0 else max(-MAX_SHUTTLE, self.speed * 2))

    def _play(self, speed: float) -> None:
        if not self.clips:
            return
        self.speed = speed
        self._anchor = (self.position, time.perf_counter())
        self._timer.start()

    def _on_timer_timeout(self) -> None:
        t0, wall = self._anchor
        t = t0 + (time.perf_counter() - wall) * self.speed
        if t >= self.duration() or t < 0:
            self.seek(t)
            self.pause()
            return
        self.seek(t, dragging=abs(self.speed) > 1.0 or self.speed < 0)

    # ---------------------------------------------------------------- in / out
    def mark_in(self) -> None:
        clip, frame = self.current()
        if clip is not None and frame < clip.out_frame:
            self.trim_requested.emit(clip.clip_id, frame, clip.out_frame)

    def mark_out(self) -> None:
        clip, frame = self.current()
        if clip is not None and frame + 1 > clip.in_frame:
            self.trim_requested.emit(clip.clip_id, clip.in_frame, frame + 1)

    # ---------------------------------------------------------------- showing frames
    def _on_frames_frame_ready(self, result: FrameResult) -> None:
        current = self.frames.is_current(result)
        if not current and not (result.exact and (result.path, result.index) == self._target):
            return  # an answer to a request the playhead has already left
        if (self.shown is not None and self.shown.token == result.token and self.shown.full_res
                and not result.full_res):
            return
        clip = self.clip_at(self.position)
        restored = self._restored(clip.clip_id, result.path, result.index) if clip else None
        self.viewer.set_frames(result.image, restored)
        self.viewer.set_frame_info(result.index, clip.fps if clip else 0.0,
                                   approximate=not result.exact)
        self.shown = result
        self.frame_shown.emit(result)

    def _on_frames_failed(self, path: str, message: str) -> None:
        """A file that cannot be decoded (moved, damaged): say so where the picture would be."""
        if self._target is not None and self._target[0] == path:
            self.shown = None
            self.viewer.set_frames(None)
            self.viewer.set_message(f"Cannot show {Path(path).name}: {message}")

    def refresh_restored(self) -> None:
        """Re-query the restored frame for the picture on screen (after a preview arrived)."""
        clip = self.clip_at(self.position)
        if self.shown is None or clip is None:
            return
        self.viewer.set_restored(self._restored(clip.clip_id, self.shown.path, self.shown.index))
