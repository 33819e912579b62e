"""Restore and encode one work unit: the worker's side of a segment, without Ray.

The frames, noise and blending are those of `VideoRun._restore_chunks` for the same chunks: the
same `restore_chunks` loop, the same blender, the same encoder settings. What differs is where
the blender starts: rebuilt from chunk k - 1 (see units.py) instead of carried over.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from seedvr_desktop.cluster.units import WorkUnit, held_after
from seedvr_desktop.engine.base import Engine, SourceInfo
from seedvr_desktop.engine.chunk_stream import restore_chunks
from seedvr_desktop.engine.chunking import ChunkPlan, OverlapBlender
from seedvr_desktop.engine.job import RestoreJob
from seedvr_desktop.engine.plan import JobPlan
from seedvr_desktop.media.encoder import SegmentEncoder, VideoParams

PROBE_FILE = "cluster-probe"  # written by the driver in the work folder: "is it shared?"


@dataclass(frozen=True)
class JobContext:
    """Everything a worker needs to restore any unit of one job (sent once per job)."""

    key: str  # unique per driver run of the job
    job: RestoreJob  # without post_process (the driver runs that)
    plan: JobPlan
    chunks: list[ChunkPlan]
    origin: Fraction  # source time that becomes output time 0
    params: VideoParams
    source: SourceInfo
    fast: bool  # pass-through units (engine none at the source size)
    high_bit_depth: bool
    work_folder: str
    token: str  # content of the work folder's PROBE_FILE
    source_size: int
    source_mtime_ns: int
    engine_options: dict[str, object] = field(default_factory=dict)

    @property
    def engine_key(self) -> tuple[str, str]:
        return self.plan.engine, repr(sorted(self.engine_options.items()))

    def segment_name(self, unit: WorkUnit) -> str:
        return f"seg_{unit.number:05d}.{self.params.spec.segment_format}"


@dataclass
class UnitOutput:
    """What restoring a unit gave, before it is sent back to the driver."""

    frames: int
    damaged: int  # damaged source frames first read by this unit (a local run's count)
    tail: dict[str, Any] | None  # the blender's state after the unit, as a local run saves it


def _reader(ctx: JobContext, source: Path) -> Any:
    if ctx.fast:
        from seedvr_desktop.engine.passthrough import PassthroughReader

        return PassthroughReader(source)
    from seedvr_desktop.media.reader import VideoReader

    return VideoReader(source, apply_rotation=True, apply_sar=True,
                       high_bit_depth=ctx.high_bit_depth)


def restore_unit(engine: Engine | None, ctx: JobContext, source: Path, unit: WorkUnit,
                 target: Path, cancel: threading.Event | None = None) -> UnitOutput:
    """Restore `unit` of the job and encode it as the segment file `target`."""
    encoder = SegmentEncoder(target, ctx.params)
    reader = _reader(ctx, source)
    try:
        if unit.passthrough:
            out = _copy_frames(ctx, reader, unit, encoder)
        else:
            assert engine is not None
            out = _restore_chunks(engine, ctx, reader, unit, encoder, cancel)
        encoder.close()
        return out
    except BaseException:
        encoder.abort()
        raise
    finally:
        reader.close()


def _copy_frames(ctx: JobContext, reader: Any, unit: WorkUnit,
                 encoder: SegmentEncoder) -> UnitOutput:
    first = ctx.plan.first_frame
    damaged = 0
    for vf in reader.frames(first + unit.frame_start, first + unit.frame_stop):
        damaged += vf.damaged
        encoder.write_frame(vf.image.frame, vf.time - ctx.origin)
    return UnitOutput(unit.frames, damaged, None)


def _restore_chunks(engine: Engine, ctx: JobContext, reader: Any, unit: WorkUnit,
                    encoder: SegmentEncoder, cancel: threading.Event | None) -> UnitOutput:
    plan, job, chunks = ctx.plan, ctx.job, ctx.chunks
    overlap = plan.caps.overlap
    first = plan.first_frame
    scale = 1.0 / (65535.0 if reader.dtype == np.uint16 else 255.0)
    k0 = unit.chunk_start
    prev = chunks[k0 - 1] if k0 > 0 else None
    keep = held_after(prev, overlap) if prev is not None else 0
    fresh_from = prev.stop if prev is not None else 0  # frames a local run reads first here
    read_from = prev.start if prev is not None and keep else chunks[k0].start
    times: dict[int, Fraction] = {}
    damaged = 0

    def on_read(vf: Any) -> None:
        nonlocal damaged
        rel = vf.index - first
        if rel >= fresh_from:
            damaged += vf.damaged
        times[rel] = vf.time - ctx.origin

    frames = reader.frames(first + read_from, plan.stop_frame)
    if keep:
        assert prev is not None
        blender, frames = _rebuild_blender(engine, ctx, prev, keep, frames, scale, on_read,
                                           chunks[k0].start, cancel)
    else:
        blender = OverlapBlender(overlap, prev.stop if prev is not None else 0)
    # on_read sees the re-used overlap frames twice: harmless, their times are the same and
    # damage is counted only for frames past `fresh_from`.
    stream = restore_chunks(engine, frames, chunks[k0:unit.chunk_stop], blender, first=first,
                            seed=job.seed, scale=scale, cancel=cancel, on_read=on_read)
    written = 0
    tail: list[np.ndarray] = []
    for _cp, finished in stream:
        for rel, image in finished:
            if rel >= unit.frame_stop:
                tail.append(image)  # the unit's last chunk was flushed: these stay held
                continue
            out_time = times[rel]
            if job.frame_filter is not None:
                image = job.frame_filter(rel, out_time, image)
            encoder.write_image(image, out_time)
            written += 1
    if written != unit.frames:
        raise RuntimeError(f"segment {unit.number}: restored {written} frames, "
                           f"planned {unit.frames}")
    last = unit.chunk_stop == len(chunks)
    state = None if last else {"version": 1, "overlap": overlap, "next_index": unit.frame_stop,
                               "tail": np.stack(tail) if tail else None}
    return UnitOutput(written, damaged, state)


def _rebuild_blender(engine: Engine, ctx: JobContext, prev: ChunkPlan, keep: int,
                     frames: Iterator[Any], scale: float, on_read: Any, next_start: int,
                     cancel: threading.Event | None) -> tuple[OverlapBlender, Iterator[Any]]:
    """Restore chunk `prev` alone and hold its last `keep` frames, as the blender of a long run
    does after it; returns the blender and the frames iterator positioned for the next chunk
    (the overlap frames it shares with `prev` first)."""
    first = ctx.plan.first_frame
    kept: list[Any] = []

    def remember(vf: Any) -> None:
        on_read(vf)
        if vf.index - first >= next_start:
            kept.append(vf)

    alone = replace(prev, overlap_before=0)  # same frames, index and noise; nothing to blend
    scratch = OverlapBlender(ctx.plan.caps.overlap, prev.start)
    restored: list[np.ndarray] = []
    for _cp, finished in restore_chunks(engine, frames, [alone], scratch,
                                        first=first, seed=ctx.job.seed, scale=scale,
                                        cancel=cancel, on_read=remember):
        restored.extend(image for _rel, image in finished)
    tail = np.stack(restored[len(restored) - keep:])
    blender = OverlapBlender.from_state({"version": 1, "overlap": ctx.plan.caps.overlap,
                                         "next_index": prev.stop - keep, "tail": tail})
    return blender, itertools.chain(kept, frames)

