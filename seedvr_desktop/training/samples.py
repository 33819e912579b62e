"""Finding training material and cutting it into fixed-size HQ samples.

A sample is `frames` consecutive pictures of a clip (or one picture of an image), scaled so the
short side is `size` and centre-cropped to a `size`² square, as float32 RGB in [0, 1]. Several
samples are cut from a long clip, spread evenly over it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from seedvr_desktop.errors import MediaError, UserError
from seedvr_desktop.media.images import is_image_path, read_image

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = frozenset({
    ".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts",
    ".dv", ".3gp", ".wmv", ".flv", ".vob", ".ogv",
})


@dataclass(frozen=True)
class RawSample:
    """One HQ cut before degradation and encoding."""

    source: Path
    start: int  # first frame index in the source (0 for images)
    pixels: np.ndarray  # (T, size, size, 3) float32 [0, 1]

    @property
    def is_image(self) -> bool:
        return self.pixels.shape[0] == 1


def find_sources(paths: Sequence[Path]) -> list[Path]:
    """Every clip and image under the given files/folders, sorted; UserError when none."""
    found: set[Path] = set()
    for path in paths:
        p = Path(path).expanduser()
        if p.is_file():
            found.add(p.resolve())
        elif p.is_dir():
            try:
                for root, _dirs, files in os.walk(p):
                    for name in files:
                        f = Path(root) / name
                        if is_media_path(f):
                            found.add(f.resolve())
            except OSError as exc:
                raise UserError(f"cannot read {p}: {exc.strerror or exc}") from None
        else:
            raise UserError(f"training data not found: {p}")
    if not found:
        raise UserError(f"no clips or images found in {', '.join(str(p) for p in paths)}")
    return sorted(found)


def is_media_path(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTENSIONS or is_image_path(path)


def square(image: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) uint8/uint16 -> (size, size, 3) float32 [0, 1]: short side scaled, centre crop."""
    scale_max = 65535.0 if image.dtype == np.uint16 else 255.0
    h, w = image.shape[:2]
    k = size / min(h, w)
    nh, nw = max(size, round(h * k)), max(size, round(w * k))
    interp = cv2.INTER_AREA if k < 1 else cv2.INTER_CUBIC
    img = cv2.resize(image, (nw, nh), interpolation=interp)
    top, left = (nh - size) // 2, (nw - size) // 2
    crop = img[top:top + size, left:left + size].astype(np.float32) / scale_max
    return np.clip(crop, 0.0, 1.0)


def cut_samples(path: Path, size: int, frames: int, per_clip: int) -> Iterator[RawSample]:
    """HQ samples of one source. Images give one sample (only when frames == 1 is asked or the
    shape is an image shape); clips give up to `per_clip` windows of `frames` pictures.

    MediaError when the file cannot be read; a clip shorter than `frames` gives nothing.
    """
    if is_image_path(path):
        if frames == 1:
            yield RawSample(path, 0, square(read_image(path), size)[None])
        return
    from seedvr_desktop.media.reader import VideoReader

    with VideoReader(path) as reader:
        count = len(reader.frame_times())
        if count < frames:
            log.info("%s has %d frames, fewer than %d: skipped at this size", path.name, count,
                     frames)
            return
        n = max(1, min(per_clip, count // frames))
        starts = sorted({round(float(s)) for s in np.linspace(0, count - frames, n)})
        for start in starts:
            pics = [square(f.image, size) for f in reader.frames(start, start + frames)]
            if len(pics) != frames:
                raise MediaError(f"{path.name}: could not decode frames {start}..{start + frames}")
            yield RawSample(path, start, np.stack(pics))
