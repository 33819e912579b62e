"""Real codec damage: encode a clip at a low bitrate with PyAV in memory and decode it back.

Block artefacts, mosquito noise and smeared motion of a real encoder (H.264, MPEG-2 as on DVDs,
MPEG-4 Part 2 as in early cameras) look unlike JPEG's, so the model sees both. Nothing touches
the disk; the encoder is flushed so the last frames come back too.
"""

from __future__ import annotations

import io
from fractions import Fraction

import av
import numpy as np

# Container per codec: MPEG-TS carries all three and needs no seekable output.
_FORMAT = "mpegts"


def compress_clip(frames: np.ndarray, codec: str, kbps: int) -> np.ndarray:
    """(T, H, W, 3) float32 [0, 1] -> the same after an in-memory encode/decode round trip.

    H and W must be even (4:2:0). Frames that do not come back (never expected after a flush)
    are replaced by the last decoded one so the shape is kept.
    """
    t, h, w, _ = frames.shape
    if h % 2 or w % 2:
        raise ValueError(f"codec damage needs even frame sizes, got {w}x{h}")
    buf = io.BytesIO()
    rgb = (np.clip(frames, 0, 1) * 255 + 0.5).astype(np.uint8)
    with av.open(buf, "w", format=_FORMAT) as out:
        stream = out.add_stream(codec, rate=25)
        stream.width, stream.height = w, h
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = kbps * 1000
        stream.time_base = Fraction(1, 25)
        if codec == "h264":
            stream.options = {"preset": "veryfast", "tune": "zerolatency"}
        for i, img in enumerate(rgb):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):  # flush: the encoder holds frames back
            out.mux(packet)
    buf.seek(0)
    decoded: list[np.ndarray] = []
    with av.open(buf, "r", format=_FORMAT) as src:
        for frame in src.decode(video=0):
            decoded.append(frame.to_ndarray(format="rgb24"))
    if not decoded:
        return frames.copy()
    while len(decoded) < t:
        decoded.append(decoded[-1])
    return np.stack(decoded[:t]).astype(np.float32) / 255.0
