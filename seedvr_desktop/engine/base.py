"""The contract between the streaming pipeline and every restoration engine.

Engines see frames only as float32 arrays in [0, 1] shaped (T, H, W, 3), RGB, so that 8-bit and
16-bit sources share one code path and blending across chunk overlaps needs no rescaling. The
pipeline owns decoding, chunking, blending and encoding; an engine only maps a chunk of source
frames to a chunk of restored frames at the output size.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np


@dataclass(frozen=True)
class EngineCaps:
    """What an engine wants from the chunk planner and the output-size rule."""

    name: str
    chunk_length: int  # preferred frames per chunk; SeedVR wants 4n+1
    overlap: int  # frames shared by neighbouring chunks and cross-faded
    # Valid chunk lengths are k*temporal_multiple + 1 (SeedVR: 4 -> 4n+1; classic: 1 -> any).
    temporal_multiple: int = 1
    size_multiple: int = 2  # output width and height are rounded to a multiple of this
    min_chunk_length: int = 1
    needs_download: bool = False
    generative: bool = False
    description: str = ""
    # Output scale when the user gives no size rule (classic upscales x2; none keeps the size).
    default_scale: float = 1.0
    # Pixel area the output is scaled to when the user gives no size (SeedVR: the 1280x720
    # area its official inference resizes every input to); None keeps default_scale.
    default_area: int | None = None


@dataclass(frozen=True)
class SourceInfo:
    """The facts about the source that change how an engine treats its frames."""

    width: int  # after rotation and sample-aspect correction, as the engine receives frames
    height: int
    frame_rate: Fraction
    interlaced: bool = False
    field_order: str = "progressive"  # "tt", "bb", "tb", "bt" or "progressive" (FFmpeg names)
    bit_depth: int = 8
    is_image: bool = False


@dataclass(frozen=True)
class ChunkContext:
    """Where a chunk sits in the job; engines derive per-chunk noise from it (resume-stable)."""

    index: int  # chunk number within the job
    first_frame: int  # index in the source of the chunk's first frame
    seed: int = 0
    # Where an engine may say how far into this chunk it is (0..1, e.g. per tile or step);
    # see `report`. The pipeline turns it into progress events while the chunk runs.
    progress: Callable[[float], None] | None = field(default=None, compare=False, repr=False)

    def report(self, fraction: float) -> None:
        """Tell the pipeline that `fraction` (0..1) of this chunk's work is done. Optional:
        without it the pipeline still shows a timed heartbeat during a long chunk."""
        if self.progress is not None:
            self.progress(min(max(float(fraction), 0.0), 1.0))


class Engine(ABC):
    """A restoration engine: stateless across chunks except for loaded models and caches."""

    caps: EngineCaps

    def prepare(self, source: SourceInfo, output_size: tuple[int, int]) -> None:
        """Called once before the first chunk; output_size is (width, height)."""
        self.source = source
        self.output_size = output_size

    @abstractmethod
    def restore_chunk(
        self,
        frames: np.ndarray,  # (T, H, W, 3) float32 in [0, 1]
        context: ChunkContext,
        cancel: threading.Event | None = None,
    ) -> np.ndarray:  # (T, out_H, out_W, 3) float32 in [0, 1]
        """Restore one chunk. May raise `Cancelled` when `cancel` is set mid-chunk."""

    def close(self) -> None:  # noqa: B027 - optional hook, most engines hold nothing
        """Release models and caches; the engine is not used afterwards."""

    def run_state(self) -> dict[str, Any] | None:
        """What a resumed job must reuse to restore the same pictures (SeedVR: the memory plan
        and its out-of-memory retries), as JSON data; None when the engine has nothing."""
        return None

    def use_run_state(self, state: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """Adopt `state` recorded by `run_state` in an earlier run of this job (called after
        `prepare`); raise UserError saying why when it cannot."""


RUN_STATE_KEY = "engine_state"  # where the job journal keeps `Engine.run_state()`


def resume_run_state(engine: Engine, journal: Any) -> None:
    """After `prepare`: adopt the state the journal recorded (a resume), then record the
    engine's current one, so the first segment's plan is known before it is committed."""
    recorded = journal.extra.get(RUN_STATE_KEY)
    if recorded is not None:
        engine.use_run_state(recorded)
    record_run_state(engine, journal)


def record_run_state(engine: Engine, journal: Any) -> None:
    """Store the engine's state in the journal when it changed (e.g. after an OOM retry)."""
    state = engine.run_state()
    if state is not None and journal.extra.get(RUN_STATE_KEY) != state:
        journal.set_extra(**{RUN_STATE_KEY: state})


@dataclass(frozen=True)
class ProgressEvent:
    """One step of a running job, as the CLI progress bar and the GUI queue show it."""

    stage: str  # "probe", "restore", "finalize", "done", "cancelled"
    frames_done: int
    frames_total: int
    fps: float = 0.0
    eta_seconds: float | None = None
    chunk_index: int = 0
    chunk_count: int = 0
    message: str = ""
    preview: np.ndarray | None = field(default=None, repr=False)  # last restored frame, uint8
    # Estimated frames of the chunk being restored right now (heartbeat events during a long
    # chunk); not yet in frames_done, but in `fraction`, so a progress bar keeps moving.
    frames_partial: float = 0.0

    @property
    def fraction(self) -> float:
        if not self.frames_total:
            return 0.0
        return min(self.frames_done + self.frames_partial, self.frames_total) / self.frames_total
