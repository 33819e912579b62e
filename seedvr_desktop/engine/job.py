"""A restoration job: everything the pipeline needs to turn one input into one output.

The CLI, the project renderer and the GUI queue all build a `RestoreJob` and drive the same
`run_restore` generator, so there is one code path for every export.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from seedvr_desktop.media.codecs import EncodeSettings

# Called on every restored frame just before encoding, e.g. to burn in captions.
# Arguments: output frame index, presentation time in seconds, frame (H, W, 3) float32 in [0, 1].
FrameFilter = Callable[[int, Fraction, np.ndarray], np.ndarray]

# Called with the finished output path after the atomic rename, e.g. to mux a subtitle track.
PostProcess = Callable[[Path], None]


@dataclass(frozen=True)
class SizeRule:
    """How the output size is chosen; at most one of the three fields is set."""

    scale: float | None = None
    short_side: int | None = None
    size: tuple[int, int] | None = None  # (width, height)


@dataclass
class RestoreJob:
    """One input file (or a frame range of it) restored to one output file."""

    input_path: Path
    output_path: Path
    engine: str = "auto"
    size: SizeRule = field(default_factory=SizeRule)
    start_time: float | None = None  # seconds
    end_time: float | None = None
    encode: EncodeSettings = field(default_factory=EncodeSettings)
    resume: bool = False
    overwrite: bool = False
    seed: int = 666
    engine_options: dict[str, object] = field(default_factory=dict)
    frame_filter: FrameFilter | None = None
    post_process: PostProcess | None = None
