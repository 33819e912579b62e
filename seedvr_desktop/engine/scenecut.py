"""Scene cut detection on tiny thumbnails, one frame at a time.

A cut matters to the chunk planner: blending or temporally filtering across it ghosts two shots
into each other. The detector follows the idea of content-aware detectors such as PySceneDetect's:
every frame is shrunk to a 64x36 thumbnail, converted to HSV, and scored by how much hue,
saturation and brightness changed since the previous frame. A fixed threshold on that score flags
fast pans and is blind to cuts between similar shots, so the threshold adapts: a frame is a cut
when its score is well above the typical (median) score of the frames just before it, and when the
colour histogram changed too, which a moving camera rarely does. Gradual changes (fades,
dissolves, slow motion) spread over many frames and never stand out; noise is averaged away by the
thumbnail and is part of the baseline anyway.

The detector is causal (no look-ahead), so `feed` answers at once and the pipeline can run it on
the fly or in a cheap pre-pass.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable

import cv2
import numpy as np

log = logging.getLogger(__name__)

THUMB_SIZE = (64, 36)  # (width, height): enough for content changes, cheap, noise averaged out
_BINS = 16


def _thumbnail(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB of any supported dtype -> (36, 64, 3) uint8 HSV (H in 0..179)."""
    small = cv2.resize(image, THUMB_SIZE, interpolation=cv2.INTER_AREA)
    if small.dtype == np.uint8:
        rgb8 = small
    elif small.dtype == np.uint16:
        rgb8 = (small.astype(np.uint16) >> 8).astype(np.uint8)
    else:  # float in [0, 1]
        rgb8 = np.clip(np.rint(small.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)
    return cv2.cvtColor(rgb8, cv2.COLOR_RGB2HSV)


def _histogram(hsv: np.ndarray) -> np.ndarray:
    """(3, _BINS) normalised per-channel histograms of an HSV thumbnail."""
    ranges = (180, 256, 256)
    hists = [
        np.bincount((hsv[..., c].astype(np.int32) * _BINS // ranges[c]).ravel(), minlength=_BINS)
        for c in range(3)
    ]
    h = np.stack(hists).astype(np.float32)
    return h / h.sum(axis=1, keepdims=True)


def content_score(prev: np.ndarray, cur: np.ndarray) -> float:
    """Mean change between two HSV thumbnails on a 0..255 scale.

    Hue is circular and meaningless for grey pixels, so its difference wraps around and is
    weighted by how saturated the pixels are; saturation in turn is meaningless for near-black
    pixels and is weighted by brightness. Otherwise noise in grey or dark areas (and the last
    frames of a fade to black) would look like a large colour change.
    """
    p, c = prev.astype(np.float32), cur.astype(np.float32)
    dh = np.abs(p[..., 0] - c[..., 0])
    dh = np.minimum(dh, 180.0 - dh) * (255.0 / 90.0)  # 0..90 degrees of hue -> 0..255
    sat = np.minimum(p[..., 1], c[..., 1]) / 255.0
    val = np.maximum(p[..., 2], c[..., 2]) / 255.0
    d_hue = float(np.mean(dh * sat))
    d_sat = float(np.mean(np.abs(p[..., 1] - c[..., 1]) * val))  # saturation of black is noise
    d_val = float(np.mean(np.abs(p[..., 2] - c[..., 2])))
    return (d_hue + d_sat + d_val) / 3.0


class CutDetector:
    """Streaming cut detector: `feed` frames in order, it says whether each one starts a scene."""

    def __init__(
        self,
        *,
        min_score: float = 10.0,
        ratio: float = 2.0,
        min_histogram_change: float = 0.08,
        window: int = 8,
        min_scene_length: int = 8,
    ) -> None:
        """min_score: how far (0..255) a cut's content score must rise above the median of the
        previous `window` scores. ratio: how many times that median it must be at least, so busy
        shots need a bigger jump. min_histogram_change: the least
        change of the colour histograms (total variation, 0..1). min_scene_length: frames after a
        cut in which no further cut is reported (flashes, flicker)."""
        self.min_score = min_score
        self.ratio = ratio
        self.min_histogram_change = min_histogram_change
        self.min_scene_length = max(1, min_scene_length)
        self._scores: deque[float] = deque(maxlen=max(1, window))
        self._prev: np.ndarray | None = None
        self._prev_hist: np.ndarray | None = None
        self._prev_index: int | None = None
        self._last_cut: int | None = None
        self.cuts: list[int] = []

    def feed(self, index: int, image: np.ndarray) -> bool:
        """Look at frame `index` (RGB, uint8/uint16/float); True when it is the first of a scene.

        Frame indices must increase; the first frame fed is never a cut.
        """
        if self._prev_index is not None and index <= self._prev_index:
            raise ValueError(f"frames must be fed in order: {index} after {self._prev_index}")
        hsv = _thumbnail(image)
        hist = _histogram(hsv)
        prev, prev_hist = self._prev, self._prev_hist
        self._prev, self._prev_hist, self._prev_index = hsv, hist, index
        if prev is None or prev_hist is None:
            return False
        score = content_score(prev, hsv)
        hist_change = 0.5 * float(np.abs(hist - prev_hist).sum(axis=1).mean())
        if len(self._scores) >= 2:
            baseline = float(np.median(self._scores))
            stands_out = score >= self.min_score + baseline and score >= self.ratio * baseline
        else:  # no history yet (start of the clip or of a scene): only a very large change
            baseline = float("nan")
            stands_out = score >= 3.0 * self.min_score
        is_cut = (
            stands_out
            and hist_change >= self.min_histogram_change
            and (self._last_cut is None or index - self._last_cut >= self.min_scene_length)
        )
        if is_cut:
            log.debug(
                "cut at frame %d: score %.1f, baseline %.1f, histogram change %.2f",
                index,
                score,
                baseline,
                hist_change,
            )
            self._last_cut = index
            self.cuts.append(index)
            self._scores.clear()  # the new scene builds its own baseline
        else:
            self._scores.append(score)
        return is_cut


def detect_cuts(images: Iterable[np.ndarray], **options: float) -> list[int]:
    """Indices of the frames that start a new scene (never 0), for frames in order."""
    detector = CutDetector(**options)  # type: ignore[arg-type]
    for index, image in enumerate(images):
        detector.feed(index, image)
    return detector.cuts
