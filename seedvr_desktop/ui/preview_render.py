"""Restore one engine chunk around the playhead for the live before/after preview (no Qt).

A preview bypasses the encoder entirely: it decodes one chunk, hands it to the worker's already
loaded engine and returns the restored frames in memory, so trying a setting costs one chunk of
compute rather than a full export.
"""

from __future__ import annotations

import threading
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from seedvr_desktop.engine.base import ChunkContext, Engine, SourceInfo
from seedvr_desktop.errors import Cancelled, MediaError

if TYPE_CHECKING:
    from seedvr_desktop.ui.worker import PreviewRequest

MAX_PREVIEW_FRAMES = 33  # caps memory for engines that prefer very long chunks
# Frame-by-frame engines (chunk length 1) still get about a second of preview so that scrubbing
# around the playhead shows a before/after range rather than a single frame.
MIN_PREVIEW_FRAMES = 25


def preview_window(center: int, length: int, first: int, stop: int) -> tuple[int, int]:
    """[start, end) of `length` frames around `center`, kept inside [first, stop)."""
    length = max(1, min(length, stop - first))
    start = min(max(first, center - length // 2), stop - length)
    return start, start + length


def _valid_length(n: int, multiple: int) -> int:
    try:
        from seedvr_desktop.engine.chunking import valid_length
    except ImportError:  # chunk planner not present: same rule, k * multiple + 1
        return n if multiple <= 1 else ((max(n, 1) - 1 + multiple - 1) // multiple) * multiple + 1
    return valid_length(n, multiple)


def _output_size(
    engine: Engine, width: int, height: int, request: PreviewRequest
) -> tuple[int, int]:
    from seedvr_desktop.engine.sizing import output_size

    caps = engine.caps
    return output_size(width, height, request.size, multiple=caps.size_multiple,
                       default_scale=caps.default_scale, default_area=caps.default_area)


def render_preview_chunk(
    engine: Engine, request: PreviewRequest, cancel: threading.Event | None = None
) -> tuple[int, np.ndarray]:
    """(first source frame, restored (T, H, W, 3) uint8) for the chunk around `request.center`."""
    from seedvr_desktop.engine.pipeline import effective_caps
    from seedvr_desktop.media.reader import VideoReader

    # The project's chunk length and overlap apply to previews too, so a preview shows what the
    # export will produce.
    caps = effective_caps(engine.caps, request.engine_options)
    with VideoReader(request.path) as reader:
        stop = min(request.stop or reader.frame_count, reader.frame_count)
        if stop <= request.first:
            raise MediaError(f"{request.path.name}: the clip has no frames to preview")
        wanted = min(max(caps.chunk_length, MIN_PREVIEW_FRAMES), MAX_PREVIEW_FRAMES)
        start, end = preview_window(request.center, wanted, request.first, stop)
        images = [frame.image for frame in reader.frames(start, end)]
        info = reader.info.video
    if not images:
        raise MediaError(f"{request.path.name}: no frames could be decoded for the preview")
    height, width = images[0].shape[:2]
    engine.prepare(
        SourceInfo(
            width=width,
            height=height,
            frame_rate=info.frame_rate if info is not None else Fraction(25),
            interlaced=bool(info.interlaced) if info is not None else False,
            field_order=info.field_order if info is not None else "progressive",
            bit_depth=info.bit_depth if info is not None else 8,
        ),
        _output_size(engine, width, height, request),
    )
    scale = 65535.0 if images[0].dtype == np.uint16 else 255.0
    step = max(1, min(caps.chunk_length, len(images)))
    restored: list[np.ndarray] = []
    for index, first in enumerate(range(0, len(images), step)):
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        part = images[first:first + step]
        real = len(part)
        # Pad by repeating the last frame up to a length the engine accepts (k * multiple + 1).
        padded = _valid_length(max(real, caps.min_chunk_length), caps.temporal_multiple)
        part = part + [part[-1]] * (padded - real)
        chunk = np.stack(part).astype(np.float32) / scale  # (T, H, W, 3) in [0, 1]
        out = engine.restore_chunk(chunk, ChunkContext(index, start + first, request.seed), cancel)
        restored.append((np.clip(out[:real], 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8))
    return start, np.concatenate(restored)  # (T, out_H, out_W, 3) uint8
