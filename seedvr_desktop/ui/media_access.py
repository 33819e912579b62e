"""The GUI's seam onto the media package: readers, probing and keyframe maps.

Everything the decoder thread and the media bin need from `seedvr_desktop.media` goes through
these few functions, imported lazily so PyAV loads on first use, not at window start-up. Keeping
the seam narrow means a change in the media API touches one GUI file.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol

import numpy as np

log = logging.getLogger(__name__)


class FrameReader(Protocol):
    """What the decoder thread needs of a reader (media.reader.VideoReader satisfies it)."""

    frame_count: int
    width: int
    height: int

    def frames(self, start: int = 0, stop: int | None = None) -> Any: ...  # Iterator[VideoFrame]
    def read(self, index: int) -> Any: ...  # VideoFrame with .index and .image
    def close(self) -> None: ...


class _StillReader:
    """A one-frame 'video' for still images so the viewer treats every media item alike."""

    def __init__(self, path: str) -> None:
        from seedvr_desktop.media.images import read_image

        self._image: np.ndarray = read_image(path)
        self.frame_count = 1
        self.height, self.width = self._image.shape[:2]

    def frames(self, start: int = 0, stop: int | None = None):
        from types import SimpleNamespace

        if start == 0 and (stop is None or stop > 0):
            yield SimpleNamespace(index=0, image=self._image, damaged=False)

    def read(self, index: int):
        from types import SimpleNamespace

        return SimpleNamespace(index=0, image=self._image, damaged=False)

    def close(self) -> None:
        pass


def is_image(path: str | Path) -> bool:
    from seedvr_desktop.media.images import is_image_path

    return is_image_path(path)


def open_reader(path: str | Path) -> FrameReader:
    """A reader for a video or a still image (frames RGB, rotation applied)."""
    if is_image(path):
        return _StillReader(str(path))
    from seedvr_desktop.media.reader import VideoReader

    return VideoReader(path)


def probe(path: str | Path):  # -> media.probe.MediaInfo
    from seedvr_desktop.media.probe import probe as _probe

    return _probe(path)


def keyframe_indices(path: str | Path) -> list[int]:
    """Presentation-order indices of the keyframes, from the probe's demux pass (no decoding).

    Used only as a hint (which frame is cheap to show while dragging), so a wrong entry in a broken
    file costs time, never correctness: exact frames are always read through the media reader.
    """
    if is_image(path):
        return [0]
    import bisect

    from seedvr_desktop.media.probe import scan

    result = scan(path)
    pts = result.pts
    keys = sorted({bisect.bisect_left(pts, k) for k in result.keyframe_pts})
    return [k for k in keys if k < len(pts)] or [0]
