"""Still images: restored as a one-frame chunk and written in the output's image format."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from fractions import Fraction

import numpy as np

from seedvr_desktop.engine.base import ChunkContext, Engine, ProgressEvent, SourceInfo
from seedvr_desktop.engine.job import RestoreJob
from seedvr_desktop.engine.plan import JobPlan, engine_geometry, output_size_for
from seedvr_desktop.errors import Cancelled


def restore_image(job: RestoreJob, plan: JobPlan, cancel: threading.Event,
                  engine: Engine | None = None) -> Iterator[ProgressEvent]:
    """Read, restore and atomically write one image; yields restore/done (or cancelled).

    A given `engine` is used and left open (its owner reuses it); otherwise one is created
    for this image and closed afterwards."""
    from seedvr_desktop.engine import registry
    from seedvr_desktop.engine.chunking import valid_length
    from seedvr_desktop.media.images import read_image, write_image
    from seedvr_desktop.media.outputs import refuse_existing

    refuse_existing(plan.output_path, job.overwrite)
    image = read_image(plan.input_path)  # (H, W, 3) uint8 or uint16, EXIF orientation applied
    height, width = image.shape[:2]
    # The probe does not see EXIF orientation; size the output from the upright picture.
    out_w, out_h = output_size_for((width, height), job.size, plan.caps)
    yield ProgressEvent("restore", 0, 1, message=f"restoring with {plan.engine}")
    owned = engine is None
    if engine is None:
        engine = registry.create_engine(plan.engine, **job.engine_options)
    depth = 16 if image.dtype == np.uint16 else 8
    try:
        with engine_geometry(engine, plan.caps):
            engine.prepare(SourceInfo(width, height, Fraction(1), bit_depth=depth,
                                      is_image=True), (out_w, out_h))
            caps = plan.caps
            length = max(valid_length(1, caps.temporal_multiple), caps.min_chunk_length)
            scale = 1.0 / (65535.0 if depth == 16 else 255.0)
            frame = np.multiply(image, scale, dtype=np.float32)  # (H, W, 3)
            batch = np.repeat(frame[None], length, axis=0)  # (T, H, W, 3)
            if cancel.is_set():
                raise Cancelled()
            out = engine.restore_chunk(batch, ChunkContext(0, 0, job.seed), cancel)[0]
    except Cancelled:
        yield ProgressEvent("cancelled", 0, 1, message="cancelled")
        return
    finally:
        if owned:
            engine.close()
    result = np.clip(out, 0.0, 1.0)
    if depth == 8:
        result = (result * 255.0 + 0.5).astype(np.uint8)
    write_image(plan.output_path, result)  # atomic; 16-bit kept for PNG/TIFF only
    if job.post_process is not None:
        job.post_process(plan.output_path)
    yield ProgressEvent("done", 1, 1, preview=None,
                        message=f"wrote {plan.output_path} ({out_w}x{out_h}, engine "
                        f"{plan.engine})")
