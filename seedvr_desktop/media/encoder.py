"""Encoding frames into self-contained, video-only segment files with exact timing and colour.

Timestamps are explicit: frame i is stamped with the presentation time the caller gives (the
source frame's own time), in a time base fine enough to hold it exactly, so variable frame rate
and dropped-frame gaps survive.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace
from fractions import Fraction
from math import lcm
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from seedvr_desktop.media.codecs import CodecSpec, EncodeSettings, codec_spec
from seedvr_desktop.media.colors import ColorTags

if TYPE_CHECKING:
    import av

log = logging.getLogger(__name__)

# swscale knows only these YUV matrices; anything else is converted with BT.709 and tagged so.
_SWS_MATRIX = {
    "bt709": "ITU709", "smpte170m": "ITU601", "bt470bg": "ITU601", "fcc": "FCC",
    "smpte240m": "SMPTE240M", "bt2020nc": "BT2020", "bt2020c": "BT2020",
}
_SD_TAGS = ColorTags("smpte170m", "smpte170m", "smpte170m", "tv")
_HD_TAGS = ColorTags("bt709", "bt709", "bt709", "tv")


def complete_tags(tags: ColorTags | None, source_height: int) -> ColorTags:
    """Fill missing colour tags with what players assume for the source's size.

    The restored pixels keep the source's colours, so an untagged SD source must be tagged as
    SD explicitly, or a player would assume BT.709 for the upscaled HD output and shift colours.
    """
    guess = _HD_TAGS if source_height >= 720 else _SD_TAGS
    tags = (tags or ColorTags()).merged(guess)
    if tags.matrix not in _SWS_MATRIX:  # e.g. "gbr" from an RGB source
        tags = replace(tags, matrix=guess.matrix)
    return tags


def time_base_for(frame_rate: Fraction, source_time_base: Fraction | None = None) -> Fraction:
    """A time base that holds every source timestamp exactly.

    Source times are multiples of the source time base num/den, hence of 1/den; without one, a
    multiple of 1/90000 (MPEG's clock) that also divides the nominal frame duration.
    """
    if source_time_base is not None and source_time_base > 0 and \
            source_time_base.denominator <= 1_000_000:  # MOV timescales are 32-bit
        den = source_time_base.denominator
        # Keep at least millisecond resolution so resampled or trimmed times still fit well.
        return Fraction(1, den * -(-1000 // den)) if den < 1000 else Fraction(1, den)
    return Fraction(1, lcm(90000, max(frame_rate.numerator, 1)))


@dataclass(frozen=True)
class VideoParams:
    """Everything that decides the bytes of the encoded video stream."""

    spec: CodecSpec
    width: int
    height: int
    frame_rate: Fraction
    time_base: Fraction
    color: ColorTags  # complete tags (see complete_tags)
    bit_depth: int = 8
    crf: int | None = None
    preset: str | None = None
    pix_fmt: str | None = None  # override, e.g. the source's for the pass-through path
    rotation: int = 0  # display rotation (degrees clockwise) written to the final container
    extra_options: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: EncodeSettings, *, width: int, height: int,
                      frame_rate: Fraction, time_base: Fraction, color: ColorTags | None,
                      source_height: int | None = None) -> VideoParams:
        spec = codec_spec(settings.codec)
        return cls(spec, width, height, frame_rate, time_base,
                   complete_tags(color, source_height or height), settings.bit_depth,
                   settings.crf, settings.preset)

    @property
    def output_pix_fmt(self) -> str:
        if self.pix_fmt:
            return self.pix_fmt
        return self.spec.pix_fmt_8 if self.bit_depth <= 8 else self.spec.pix_fmt_10

    def encoder_options(self) -> dict[str, str]:
        opts = dict(self.spec.options)
        crf = self.crf if self.crf is not None else self.spec.default_crf
        if crf is not None and self.spec.default_crf is not None:
            opts["crf"] = str(crf)
        preset = self.preset or self.spec.default_preset
        if preset is not None and self.spec.default_preset is not None:
            opts["preset"] = preset
        opts.update(self.extra_options)
        return opts


def image_to_array(image: np.ndarray, bit_depth: int) -> np.ndarray:
    """Float [0, 1], uint8 or uint16 (H, W, 3) -> contiguous uint8 or uint16 for PyAV."""
    if image.dtype == np.uint8 and bit_depth <= 8:
        return np.ascontiguousarray(image)
    if image.dtype == np.uint16 and bit_depth > 8:
        return np.ascontiguousarray(image)
    if image.dtype == np.uint8:
        return image.astype(np.uint16) * 257
    if image.dtype == np.uint16:
        return ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    scale = 255.0 if bit_depth <= 8 else 65535.0
    out = np.clip(image, 0.0, 1.0) * scale + 0.5
    return out.astype(np.uint8 if bit_depth <= 8 else np.uint16)


class SegmentEncoder:
    """Encodes frames into one self-contained, video-only segment file.

    The file is written under a `.part` name and renamed by `close()`, so a segment file that
    exists under its final name is always complete.
    """

    def __init__(self, path: Path, params: VideoParams, *, threads: int = 0) -> None:
        import av

        if params.spec.sequence:
            raise ValueError("PNG sequences are written by the sequence writer, not segments")
        self.path = Path(path)
        self.params = params
        self._part = self.path.with_name(self.path.name + ".part")
        self._pix_fmt = params.output_pix_fmt
        if self._pix_fmt in ("yuv420p", "yuv420p10le") and (params.width % 2 or params.height % 2):
            raise ValueError(f"4:2:0 output needs an even size, got {params.width}x{params.height}")
        self._container = av.open(os.fspath(self._part), "w", format=params.spec.segment_format)
        try:
            self._stream = self._add_stream(av, threads)
        except Exception:
            self.abort()
            raise
        self._last_pts: int | None = None
        self.frames = 0
        self._sws_matrix = _SWS_MATRIX[params.color.matrix or "bt709"]

    def _add_stream(self, av: Any, threads: int) -> av.video.stream.VideoStream:
        p = self.params
        stream = self._container.add_stream(p.spec.encoder, rate=p.frame_rate)
        stream.width, stream.height = p.width, p.height
        stream.pix_fmt = self._pix_fmt
        stream.time_base = p.time_base
        cc = stream.codec_context
        cc.time_base = p.time_base
        cc.framerate = p.frame_rate
        cc.thread_count = threads
        cc.thread_type = p.spec.thread_type
        # Final containers (MP4, MOV, MKV) all want headers out of band; segment containers are
        # chosen so the encoder produces the same bitstream for every segment.
        cc.flags |= av.codec.context.Flags.global_header
        p.color.apply_to(cc)
        cc.options = p.encoder_options()
        return stream

    def write_image(self, image: np.ndarray, time: Fraction) -> None:
        """Encode one RGB picture (H, W, 3) float32 [0,1] / uint8 / uint16 at `time` seconds."""
        import av

        p = self.params
        if image.shape[:2] != (p.height, p.width):
            raise ValueError(f"frame is {image.shape[1]}x{image.shape[0]}, "
                             f"writer expects {p.width}x{p.height}")
        data = image_to_array(image, p.bit_depth)
        src = "rgb24" if data.dtype == np.uint8 else "rgb48le"
        frame = av.VideoFrame.from_ndarray(data, format=src)
        if self._pix_fmt != src:
            frame = frame.reformat(format=self._pix_fmt, dst_colorspace=self._sws_matrix,
                                   dst_color_range="MPEG" if self._pix_fmt.startswith("yuv")
                                   else None)
        self._encode(frame, time)

    def write_frame(self, frame: av.VideoFrame, time: Fraction) -> None:
        """Encode an already decoded picture (the pass-through path: no RGB round trip)."""
        if frame.format.name != self._pix_fmt or frame.width != self.params.width \
                or frame.height != self.params.height:
            frame = frame.reformat(width=self.params.width, height=self.params.height,
                                   format=self._pix_fmt)
        self._encode(frame, time)

    def _encode(self, frame: av.VideoFrame, time: Fraction) -> None:
        pts = round(Fraction(time) / self.params.time_base)
        if self._last_pts is not None and pts <= self._last_pts:
            # Repeated or backward source timestamps (packed B-frames in old AVIs): nudge by one
            # tick so the encoder and muxer accept the frame; the error is below a millisecond.
            log.debug("timestamp %s not after %s; nudged", pts, self._last_pts)
            pts = self._last_pts + 1
        self._last_pts = pts
        frame.pts = pts
        frame.time_base = self.params.time_base
        frame.pict_type = 0  # let the encoder decide; decoded frames carry the source's type
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> int:
        """Flush the encoder, close the file and give it its final name; returns frames."""
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        os.replace(self._part, self.path)
        return self.frames

    def abort(self) -> None:
        """Drop the unfinished segment."""
        try:
            self._container.close()
        except Exception:  # the container may be half-open after an encoder error
            log.debug("closing aborted segment failed", exc_info=True)
        self._part.unlink(missing_ok=True)
