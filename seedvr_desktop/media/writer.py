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

import errno
import logging
import os
import tempfile
from dataclasses import dataclass, field, replace
from fractions import Fraction
from math import lcm
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from seedvr_desktop.errors import UserError
from seedvr_desktop.media.colors import ColorTags

if TYPE_CHECKING:
    import av

    from seedvr_desktop.engine.job import EncodeSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CodecSpec:
    """How one user-facing codec name maps onto an FFmpeg encoder and containers."""

    key: str  # what the user types: h264, h265, prores, ffv1, png
    encoder: str  # FFmpeg encoder name
    pix_fmt_8: str
    pix_fmt_10: str
    extensions: tuple[str, ...]  # output containers that carry this codec
    default_crf: int | None = None
    default_preset: str | None = None
    # FRAME threading matches what the ffmpeg command line does for x264/x265 (PyAV's default is
    # SLICE, which compresses worse); ProRes and FFV1 only thread over slices.
    thread_type: str = "SLICE"
    options: tuple[tuple[str, str], ...] = ()
    # Segment container: MOV keeps negative DTS of B-frame codecs exactly; FFV1 is not allowed
    # in MOV, and has no B-frames, so NUT is fine for it.
    segment_format: str = "mov"
    sequence: bool = False  # an image sequence rather than a video stream


CODECS: dict[str, CodecSpec] = {
    # cpu-independent: x264's AVX-512 code paths give run-to-run different bitstreams for the
    # same input (measured with PyAV's x264 build); resume must reproduce an uninterrupted run
    # exactly, and this costs only a few percent of speed.
    "h264": CodecSpec(
        "h264", "libx264", "yuv420p", "yuv420p10le", (".mp4", ".m4v", ".mov", ".mkv"),
        default_crf=18, default_preset="medium", thread_type="FRAME",
        options=(("x264-params", "cpu-independent=1"),),
    ),
    "h265": CodecSpec(
        "h265", "libx265", "yuv420p", "yuv420p10le", (".mp4", ".m4v", ".mov", ".mkv"),
        default_crf=20, default_preset="medium", thread_type="FRAME",
        options=(("x265-params", "log-level=error"),),
    ),
    # Profile 3 = ProRes 422 HQ; ProRes is 10-bit whatever the source depth. Known limit: FFmpeg's
    # ProRes encoders are not bit-reproducible for every width, so a resumed ProRes job matches
    # an uninterrupted one frame for frame but not always bit for bit.
    "prores": CodecSpec(
        "prores", "prores_ks", "yuv422p10le", "yuv422p10le", (".mov", ".mkv"),
        options=(("profile", "3"), ("vendor", "apl0")),
    ),
    # FFV1 version 3 with slice CRCs and intra-only coding: the usual archive settings, so a
    # damaged byte costs one slice of one frame.
    "ffv1": CodecSpec(
        "ffv1", "ffv1", "yuv444p", "yuv444p10le", (".mkv",),
        options=(("level", "3"), ("slicecrc", "1"), ("g", "1")),
        segment_format="nut",
    ),
    "png": CodecSpec("png", "png", "rgb24", "rgb48be", (".png",), sequence=True),
}

X26X_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                "slower", "veryslow", "placebo")

CONTAINER_FORMATS: dict[str, str] = {
    ".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska",
}

# swscale knows only these YUV matrices; anything else is converted with BT.709 and tagged so.
_SWS_MATRIX = {
    "bt709": "ITU709", "smpte170m": "ITU601", "bt470bg": "ITU601", "fcc": "FCC",
    "smpte240m": "SMPTE240M", "bt2020nc": "BT2020", "bt2020c": "BT2020",
}
_SD_TAGS = ColorTags("smpte170m", "smpte170m", "smpte170m", "tv")
_HD_TAGS = ColorTags("bt709", "bt709", "bt709", "tv")


def codec_spec(name: str) -> CodecSpec:
    """The spec for a user codec name; unknown names are a user error."""
    try:
        return CODECS[name.lower()]
    except KeyError:
        raise UserError(
            f"unknown codec {name!r}; choose one of {', '.join(CODECS)}"
        ) from None


def is_sequence_output(path: Path, codec: str | None = None) -> bool:
    """True when `path` names a PNG sequence: a .png pattern, a folder, or codec png."""
    if codec and codec.lower() == "png":
        return True
    return path.suffix.lower() == ".png" or path.is_dir() or path.suffix == ""


def check_output(path: Path, settings: EncodeSettings) -> CodecSpec:
    """Validate output path, codec and bit depth together; returns the codec spec.

    Raised as UserError so the CLI prints one line before any decoding starts.
    """
    spec = codec_spec(settings.codec)
    if settings.bit_depth not in (8, 10, 16):
        raise UserError(f"bit depth must be 8 or 10, not {settings.bit_depth}")
    if settings.bit_depth == 16 and not spec.sequence:
        raise UserError("16-bit output is only available for PNG sequences")
    if settings.preset is not None and spec.default_preset is not None \
            and settings.preset not in X26X_PRESETS:
        raise UserError(f"unknown preset {settings.preset!r}; choose one of "
                        f"{', '.join(X26X_PRESETS)}")
    if settings.crf is not None and spec.default_crf is not None and \
            not 0 <= settings.crf <= 51:
        raise UserError(f"--crf must be from 0 (best) to 51, not {settings.crf}")
    if spec.sequence:
        return spec
    ext = path.suffix.lower()
    if ext not in CONTAINER_FORMATS:
        raise UserError(
            f"cannot write {ext or 'a file without extension'}: use one of "
            f"{', '.join(sorted(CONTAINER_FORMATS))} (or a folder / .png pattern for PNG frames)"
        )
    if ext not in spec.extensions:
        raise UserError(
            f"{spec.key} cannot be stored in {ext} files; use {' or '.join(spec.extensions)}"
        )
    return spec


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


def make_output_folder(folder: Path) -> list[Path]:
    """Create `folder` and any missing parents; returns the folders made, outermost first.

    Where the output goes is the user's choice, so failing here (a read-only card or disc, a
    file where a folder should be, no permission) is a UserError naming the folder rather than
    an internal error, and folders made before the failure are removed again. Callers that
    fail later pass the returned list to `remove_empty_folders` to leave nothing behind.
    """
    missing: list[Path] = []
    probe = Path(folder)
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    created: list[Path] = []
    try:
        for path in reversed(missing):
            path.mkdir()
            created.append(path)
    except OSError as exc:
        remove_empty_folders(created)
        raise unwritable_folder(Path(folder), exc) from exc
    return created


def remove_empty_folders(folders: list[Path]) -> None:
    """Remove folders a job created (given outermost first), innermost first, while empty."""
    for path in reversed(folders):
        try:
            path.rmdir()
        except OSError:
            return


def unwritable_folder(folder: Path, exc: OSError) -> UserError:
    """The one-line error for an output folder that cannot be created or written to."""
    return UserError(f"cannot write to {folder}: {exc.strerror or exc}")


# errno values that say the output's disk refused the data (full, quota, read-only, failing),
# as opposed to an encoder or muxer rejecting what it was given.
_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO,
                          errno.EACCES, errno.EPERM})


def is_write_failure(exc: BaseException) -> bool:
    """Whether `exc`, raised while writing an output, means the disk refused the data.

    FFmpeg's errors are OSErrors too (PyAV maps AVERROR codes onto errno), so only those with a
    disk errno count; a plain OSError from our own file writes always does."""
    import av

    if not isinstance(exc, OSError):
        return False
    if isinstance(exc, av.FFmpegError):
        return exc.errno in _DISK_ERRNOS
    return True


def refuse_existing(path: Path, overwrite: bool) -> None:
    """Existing outputs are only replaced on request (and then only once the new one is done)."""
    if path.exists() and not overwrite:
        raise UserError(f"{path} already exists; use --overwrite to replace it")


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
            _remove_tree(self._work)
            remove_empty_folders(created)
            raise
        self._done = False

    def write(self, image: np.ndarray, time: Fraction) -> None:
        self._segment.write_image(image, time)

    def close(self) -> None:
        """Flush the encoder, add audio/subtitles and rename the result onto `path`."""
        if self._done:
            return
        from seedvr_desktop.media.remux import MuxRequest, mux_output

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
        _remove_tree(self._work)

    def abort(self) -> None:
        """Remove every temporary file; an existing file at `path` is never touched."""
        self._done = True
        self._segment.abort()
        _remove_tree(self._work)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _remove_tree(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
