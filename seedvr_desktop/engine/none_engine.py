"""The `none` engine: no restoration, only resizing to the output size.

It exists so trimming, captioning and re-encoding go through the same pipeline as real
restoration, and as the zero-cost baseline of the overhead benchmark. With one frame per chunk
and no overlap the pipeline skips scene-cut detection for it; when no resize is needed the
pipeline does not call it at all and hands decoded pictures straight to the encoder.
"""

from __future__ import annotations

import threading

import numpy as np

from seedvr_desktop.engine.base import ChunkContext, Engine, EngineCaps

NONE_CAPS = EngineCaps(
    name="none",
    chunk_length=1,
    overlap=0,
    temporal_multiple=1,
    size_multiple=2,
    description="No restoration: trim, caption and re-encode only (resizes if asked).",
)


class NoneEngine(Engine):
    """Resizes each frame with OpenCV: area averaging to shrink, bicubic to enlarge."""

    caps = NONE_CAPS

    def restore_chunk(
        self,
        frames: np.ndarray,  # (T, H, W, 3) float32 in [0, 1]
        context: ChunkContext,
        cancel: threading.Event | None = None,
    ) -> np.ndarray:  # (T, out_H, out_W, 3) float32 in [0, 1]
        import cv2

        out_w, out_h = self.output_size
        t, h, w, _ = frames.shape
        if (w, h) == (out_w, out_h):
            return frames
        shrinking = out_w * out_h < w * h
        interp = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
        out = np.empty((t, out_h, out_w, 3), np.float32)
        for i in range(t):
            out[i] = cv2.resize(frames[i], (out_w, out_h), interpolation=interp)
        if not shrinking:
            np.clip(out, 0.0, 1.0, out=out)  # bicubic overshoots at edges
        return out
