"""Project -> timeline layout, and the identity of a clip's restoration settings (no Qt).

Times on the timeline are seconds from the start of the first clip; clips follow each other in
project order. Captions are stored relative to their clip's in-point, so on the timeline they sit
at clip start + caption start.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from seedvr_desktop.project.model import Clip, MediaRef, Project

STILL_SECONDS = 3.0  # how long a still image lasts on the timeline
DEFAULT_FPS = 25.0  # for media whose rate is unknown


@dataclass(frozen=True)
class ClipSpan:
    """Where a clip sits on the timeline, with what the GUI needs to map time <-> frame."""

    clip_id: str
    name: str
    path: str
    start: float
    duration: float
    fps: float
    in_frame: int
    out_frame: int  # exclusive

    @property
    def end(self) -> float:
        return self.start + self.duration

    def frame_at(self, t: float) -> int:
        """Source frame shown at timeline time `t` (clamped into the clip)."""
        offset = math.floor((t - self.start) * self.fps + 1e-6)
        return min(self.out_frame - 1, max(self.in_frame, self.in_frame + offset))

    def time_of(self, frame: int) -> float:
        """Timeline time at which source frame `frame` starts."""
        return self.start + (frame - self.in_frame) / self.fps


@dataclass(frozen=True)
class CaptionSpan:
    clip_id: str
    index: int
    start: float
    end: float
    text: str


def media_fps(media: MediaRef) -> float:
    if media.probe.is_image:
        return 1.0 / STILL_SECONDS
    return media.probe.fps() or DEFAULT_FPS


def clip_stop(project: Project, clip: Clip) -> int:
    """Exclusive out frame, falling back to the probed frame count (at least one frame)."""
    _, stop = project.clip_frame_range(clip)
    return max(clip.in_frame + 1, stop if stop is not None else clip.in_frame + 1)


def layout(project: Project) -> tuple[list[ClipSpan], list[CaptionSpan]]:
    clips: list[ClipSpan] = []
    captions: list[CaptionSpan] = []
    t = 0.0
    for clip in project.clips:
        media = project.media_by_id(clip.media_id)
        fps = media_fps(media)
        stop = clip_stop(project, clip)
        duration = (stop - clip.in_frame) / fps
        clips.append(ClipSpan(clip.id, clip.name or media.path.name, str(media.path), t, duration,
                              fps, clip.in_frame, stop))
        for index, caption in enumerate(clip.captions):
            captions.append(CaptionSpan(clip.id, index, t + caption.start,
                                        t + min(caption.end, max(duration, caption.start + 0.1)),
                                        caption.text))
        t += duration
    return clips, captions


def restore_key(project: Project, clip: Clip) -> str:
    """A string that changes whenever anything that affects the restored pixels changes."""
    settings = project.effective_restore(clip)
    return repr((dataclasses.astuple(settings), clip.prompt))
