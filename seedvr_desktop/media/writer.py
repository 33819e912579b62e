"""Encode restored frames into video files with exact timing and colour tags.

Every output is built in two steps, for the pipeline and for `VideoWriter` alike:
1. frames are encoded into one or more *segment* files (video only, one encoder per segment,
   each starting with a key frame) in a hidden work folder next to the output;
2. `remux.mux_output` concatenates the segments by packet copy and adds the source's audio and
   subtitle packets into a temporary file that is renamed over the output only when complete.
Resuming an interrupted job just encodes the missing segments, so a resumed output is made of the
same bytes as an uninterrupted one. The concatenation costs one packet copy of the compressed
video, which is small next to encoding.

Timestamps are explicit: frame i is stamped with the presentation time the caller gives (the
source frame's own time), in a time base fine enough to hold it exactly, so variable frame rate
and dropped-frame gaps survive.
"""

from __future__ import annotations

import logging
import os
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np

from seedvr_desktop.errors import UserError
from seedvr_desktop.media.codecs import EncodeSettings, check_output
from seedvr_desktop.media.colors import ColorTags
from seedvr_desktop.media.encoder import SegmentEncoder, VideoParams, time_base_for
from seedvr_desktop.media.mux_request import MuxRequest
from seedvr_desktop.media.outputs import (
    make_output_folder,
    refuse_existing,
    remove_empty_folders,
    remove_tree,
    unwritable_folder,
)
from seedvr_desktop.media.remux import mux_output

log = logging.getLogger(__name__)


class VideoWriter:
    """Write one video file frame by frame (float32 [0,1], uint8 or uint16 RGB frames).

    A context manager: leaving it normally closes (flushes, muxes, renames atomically); leaving
    it with an exception aborts, removing every temporary file and leaving any existing file at
    `path` untouched. `audio_source` copies that file's audio (and subtitles) within
    [audio_start, audio_end) seconds of its timeline, with audio_start mapped to output time 0.
    """

    def __init__(self, path: str | os.PathLike, *, width: int, height: int,
                 frame_rate: Fraction, settings: EncodeSettings, color: ColorTags | None = None,
                 overwrite: bool = False, time_base: Fraction | None = None,
                 audio_source: str | os.PathLike | None = None, audio_start: float | None = None,
                 audio_end: float | None = None) -> None:
        self.path = Path(path)
        spec = check_output(self.path, settings)
        if spec.sequence:
            raise UserError("VideoWriter writes video files; use the pipeline for PNG frames")
        refuse_existing(self.path, overwrite)
        self.settings = settings
        self.overwrite = overwrite
        self.notices: list[str] = []
        self._audio = (Path(audio_source) if audio_source else None, audio_start, audio_end)
        params = VideoParams.from_settings(
            settings, width=width, height=height, frame_rate=Fraction(frame_rate),
            time_base=time_base or time_base_for(Fraction(frame_rate)), color=color)
        created = make_output_folder(self.path.parent)
        try:
            self._work = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".work",
                                               dir=self.path.parent))
        except OSError as exc:
            remove_empty_folders(created)
            raise unwritable_folder(self.path.parent, exc) from exc
        try:
            self._segment = SegmentEncoder(self._work / f"video.{spec.segment_format}", params)
        except BaseException:
            remove_tree(self._work)
            remove_empty_folders(created)
            raise
        self._done = False

    def write(self, image: np.ndarray, time: Fraction) -> None:
        self._segment.write_image(image, time)

    def close(self) -> None:
        """Flush the encoder, add audio/subtitles and rename the result onto `path`."""
        if self._done:
            return

        try:
            self._segment.close()
            source, start, end = self._audio
            req = MuxRequest(
                segments=[self._segment.path], target=self.path, params=self._segment.params,
                source=source, origin=Fraction(start or 0), start=start, end=end,
                audio=self.settings.audio if source else "none",
                subtitles=self.settings.subtitles and source is not None,
                overwrite=self.overwrite)
            self.notices.extend(mux_output(req))
        except BaseException:
            self.abort()
            raise
        self._done = True
        remove_tree(self._work)

    def abort(self) -> None:
        """Remove every temporary file; an existing file at `path` is never touched."""
        self._done = True
        self._segment.abort()
        remove_tree(self._work)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

