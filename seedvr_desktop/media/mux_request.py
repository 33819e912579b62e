"""What building one output file from segments needs: a request both the muxer and the audio
transcoder read (its own module, so neither imports the other for it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from seedvr_desktop.media.encoder import VideoParams


@dataclass
class MuxRequest:
    """What `mux_output` needs to build one output file."""

    segments: Sequence[Path]  # video-only segment files, in order
    target: Path
    params: VideoParams
    source: Path | None = None  # where audio/subtitles/metadata come from
    origin: Fraction = Fraction(0)  # source time mapped to output time 0 (seconds)
    start: float | Fraction | None = None  # source window for audio/subtitles (seconds)
    end: float | Fraction | None = None
    audio: str = "copy"  # copy | transcode | none
    subtitles: bool = True
    overwrite: bool = False
