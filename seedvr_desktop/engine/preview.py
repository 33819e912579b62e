"""The GUI's live before/after preview: a short range around the playhead, restored in memory.

It goes through the export's own steps (the plan's output size and chunk geometry, the same
reader settings, scene cuts, `chunk_stream.restore_chunks` and its overlap blending), so the
preview of a range is, frame for frame, what exporting that range writes; only the encoder is
skipped. Trying a setting costs one or two chunks of compute rather than a full export.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from seedvr_desktop.engine.base import Engine, SourceInfo
from seedvr_desktop.engine.chunk_stream import cuts_apply, restore_chunks, to_uint8
from seedvr_desktop.engine.chunking import OverlapBlender, plan_chunks
from seedvr_desktop.engine.job import SizeRule
from seedvr_desktop.engine.plan import effective_caps, output_size_for
from seedvr_desktop.engine.scenecut import detect_cuts
from seedvr_desktop.errors import MediaError
from seedvr_desktop.media.reader import VideoReader

MAX_PREVIEW_FRAMES = 33  # caps memory for engines that prefer very long chunks
# Frame-by-frame engines (chunk length 1) still get about a second of preview so that scrubbing
# around the playhead shows a before/after range rather than a single frame.
MIN_PREVIEW_FRAMES = 25


@dataclass(frozen=True)
class PreviewRequest:
    """Restore the frames of `path` around `center` (source frame indices)."""

    path: Path
    center: int
    first: int = 0  # the clip's in-point: the range stays inside [first, stop)
    stop: int | None = None
    engine: str = "auto"
    engine_options: dict[str, object] = field(default_factory=dict)
    size: SizeRule = field(default_factory=SizeRule)
    seed: int = 666


def preview_window(center: int, length: int, first: int, stop: int) -> tuple[int, int]:
    """[start, end) of `length` frames around `center`, kept inside [first, stop)."""
    length = max(1, min(length, stop - first))
    start = min(max(first, center - length // 2), stop - length)
    return start, start + length


def render_preview(engine: Engine, request: PreviewRequest,
                   cancel: threading.Event | None = None) -> tuple[int, np.ndarray]:
    """(first source frame, restored (T, H, W, 3) uint8) for the range around `request.center`.

    The engine is the caller's (the GUI keeps it loaded) and is left open.
    """
    # The project's chunk length and overlap apply to previews too.
    caps = effective_caps(engine.caps, request.engine_options)
    # The export's reader settings: display orientation and shape, and 16-bit pictures for a
    # deeper source (the reader keeps 8-bit sources 8-bit), without probing the file again.
    with VideoReader(request.path, apply_rotation=True, apply_sar=True,
                     high_bit_depth=True) as reader:
        stop = min(request.stop or reader.frame_count, reader.frame_count)
        if stop <= request.first:
            raise MediaError(f"{request.path.name}: the clip has no frames to preview")
        wanted = min(max(caps.chunk_length, MIN_PREVIEW_FRAMES), MAX_PREVIEW_FRAMES)
        start, end = preview_window(request.center, wanted, request.first, stop)
        source = list(reader.frames(start, end))
        info = reader.info.video
        width, height = reader.width, reader.height
    if not source:
        raise MediaError(f"{request.path.name}: no frames could be decoded for the preview")
    engine.prepare(
        SourceInfo(
            width=width,
            height=height,
            frame_rate=info.frame_rate if info is not None else Fraction(25),
            interlaced=bool(info.interlaced) if info is not None else False,
            field_order=info.field_order if info is not None else "progressive",
            bit_depth=info.bit_depth if info is not None else 8,
        ),
        output_size_for((width, height), request.size, caps),
    )
    cuts = [c for c in detect_cuts(vf.image for vf in source) if c > 0] \
        if cuts_apply(caps) else []
    chunks = plan_chunks(len(source), caps.chunk_length, caps.overlap,
                         temporal_multiple=caps.temporal_multiple, cuts=cuts)
    scale = 1.0 / (65535.0 if source[0].image.dtype == np.uint16 else 255.0)
    blender = OverlapBlender(caps.overlap, 0)
    restored: dict[int, np.ndarray] = {}
    for _, finished in restore_chunks(engine, iter(source), chunks, blender, first=start,
                                      seed=request.seed, scale=scale, cancel=cancel):
        restored.update((rel, to_uint8(image)) for rel, image in finished)
    return start, np.stack([restored[i] for i in range(len(source))])  # (T, H', W', 3)
