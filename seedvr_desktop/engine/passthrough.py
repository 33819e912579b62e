"""Decoded pictures without the RGB round trip, for the `none` engine at the source size.

When nothing changes the pixels (engine "none", output size = stored size, no rotation, no
aspect correction, no caption filter), converting every picture YUV -> RGB -> float -> RGB -> YUV
costs more CPU than the encoder's headroom on a small machine and changes nothing useful. This
reader keeps the timeline logic of `VideoReader` (ordering, timestamps, damaged-frame repeats)
but yields the decoded PyAV pictures themselves; the writer encodes them directly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from seedvr_desktop.media.reader import VideoReader


class Picture:
    """A decoded PyAV picture standing in for the RGB array of a `VideoFrame`.

    Repeats of a damaged frame reuse the same picture (`copy` returns self): encoders take their
    own reference when a frame is sent, so sharing is safe.
    """

    __slots__ = ("frame",)

    def __init__(self, frame: Any) -> None:
        self.frame = frame

    def copy(self) -> Picture:
        return self

    def to_rgb(self) -> np.ndarray:
        """(H, W, 3) uint8, for previews."""
        return self.frame.to_ndarray(format="rgb24")


class PassthroughReader(VideoReader):
    """`VideoReader` whose `VideoFrame.image` is a `Picture` (decoded, not converted)."""

    def __init__(self, path: Any, *, threads: int = 0) -> None:
        super().__init__(path, apply_rotation=False, apply_sar=False, high_bit_depth=False,
                         threads=threads)

    def _convert(self, frame: Any) -> Any:  # the single conversion point of VideoReader
        if isinstance(frame, Picture):
            return frame
        return Picture(frame)


def passthrough_pix_fmt(source_pix_fmt: str, encoder: str, bit_depth: int) -> str | None:
    """The source pixel format if the encoder takes it at the requested depth, else None."""
    import av

    try:
        fmt = av.VideoFormat(source_pix_fmt)
        supported = {f.name for f in (av.Codec(encoder, "w").video_formats or [])}
    except (ValueError, av.FFmpegError):
        return None
    depth = max((c.bits for c in fmt.components), default=8)
    if source_pix_fmt not in supported or (depth > 8) != (bit_depth > 8):
        return None
    if source_pix_fmt.startswith("yuvj"):
        return None  # full-range JPEG formats are deprecated in encoders; convert instead
    return source_pix_fmt
