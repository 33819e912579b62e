"""What is in a media file, measured rather than read from headers.

Home-movie files lie in their headers: AVI captures declare frames that were never stored (null
frames), old DivX files pack two pictures into one packet, some files claim quintillions of frames
or odd time bases. So the frame count and frame timing come from a demux pass over the video
packets (cheap: no decoding), and the picture facts (rotation, colour, interlacing) from decoding
the first picture. The packet timestamps found by the scan are kept in a small cache so the reader
does not scan the file a second time.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, fields, is_dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from seedvr_desktop.errors import MediaError
from seedvr_desktop.media.colors import ColorTags
from seedvr_desktop.media.images import IMAGE_EXTENSIONS

log = logging.getLogger(__name__)

_FIELD_ORDERS = {0: "unknown", 1: "progressive", 2: "tt", 3: "bb", 4: "tb", 5: "bt"}
_IMAGE_DEMUXERS = frozenset({"image2", "png_pipe", "jpeg_pipe", "tiff_pipe", "webp_pipe",
                             "bmp_pipe", "jpegls_pipe", "jpegxl_pipe", "qoi_pipe"})
# Demuxers that turn plain text into "video" (FFmpeg renders ANSI art from any .txt file).
_TEXT_DEMUXERS = frozenset({"tty", "bin", "idf", "adf", "xbin"})
_MAX_SANE_RATE = Fraction(1000)
# First-picture decoding gives up after this many packets (a stream that decodes nothing in the
# first 256 packets is broken where it matters).
_FIRST_PICTURE_PACKETS = 256


@dataclass(frozen=True)
class VideoInfo:
    """The video stream the app works on (the first one that is not cover art)."""

    index: int
    codec: str
    width: int  # coded size of the stored pictures
    height: int
    frame_rate: Fraction  # nominal/average rate, exact
    variable_frame_rate: bool
    frame_count: int  # pictures that present (counted from packets, never from headers)
    time_base: Fraction
    duration: float | None  # seconds
    sample_aspect_ratio: Fraction  # 1 when unknown
    rotation: int  # degrees clockwise to apply for display: 0/90/180/270
    display_width: int  # after sample aspect ratio and rotation
    display_height: int
    interlaced: bool
    field_order: str  # "progressive", "tt", "bb", "tb", "bt", "unknown"
    pix_fmt: str
    bit_depth: int
    color_primaries: str | None
    color_transfer: str | None
    color_matrix: str | None
    color_range: str | None

    @property
    def color(self) -> ColorTags:
        """The colour tags as one value (what the writer takes)."""
        return ColorTags(self.color_primaries, self.color_transfer, self.color_matrix,
                         self.color_range)


@dataclass(frozen=True)
class AudioInfo:
    index: int
    codec: str
    sample_rate: int
    channels: int
    layout: str
    duration: float | None
    language: str | None
    bit_rate: int | None


@dataclass(frozen=True)
class SubtitleInfo:
    index: int
    codec: str
    language: str | None


@dataclass(frozen=True)
class MediaInfo:
    path: Path
    container: str
    duration: float | None
    is_image: bool
    video: VideoInfo | None
    audio: list[AudioInfo]
    subtitles: list[SubtitleInfo]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form: paths as strings, Fractions as "num/den" strings."""
        return _jsonable(self)


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Fraction):
        return f"{value.numerator}/{value.denominator}"
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


@dataclass(frozen=True)
class ScanResult:
    """Probe plus the sorted presentation timestamps of the video stream (in time_base ticks)."""

    info: MediaInfo
    pts: tuple[int, ...]  # sorted; one per presented picture
    keyframe_pts: tuple[int, ...]  # sorted pts of packets flagged as keyframes


# --------------------------------------------------------------------------- cache

_CACHE: OrderedDict[tuple[str, int, int], ScanResult] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 8


def _cache_key(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns)


def scan(path: str | os.PathLike) -> ScanResult:
    """Probe and frame timestamps, cached by (path, size, mtime) so re-opening a file is free."""
    p = _check_path(path)
    key = _cache_key(p)
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            _CACHE.move_to_end(key)
            return hit
    result = _scan_uncached(p)
    with _CACHE_LOCK:
        _CACHE[key] = result
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return result


def probe(path: str | os.PathLike) -> MediaInfo:
    """Everything the app needs to know about a media file; MediaError for anything unreadable."""
    return scan(path).info


# --------------------------------------------------------------------------- scanning


def _check_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise MediaError(f"file not found: {p}")
    if p.is_dir():
        raise MediaError(f"{p} is a folder, not a media file")
    if not p.is_file():
        raise MediaError(f"{p} is not a regular file")
    if p.stat().st_size == 0:
        raise MediaError(f"{p} is empty (0 bytes)")
    return p


def _open(p: Path) -> av.container.InputContainer:
    try:
        return av.open(os.fspath(p), metadata_errors="replace")
    except PermissionError as exc:
        raise MediaError(f"cannot read {p}: permission denied") from exc
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        if _mp4_without_index(p):
            raise MediaError(f"{p.name} is incomplete (an interrupted recording or download): "
                             "its index (moov) is missing, so nothing in it can be "
                             "located") from exc
        reason = str(getattr(exc, "strerror", None) or exc).strip().rstrip(".")
        raise MediaError(f"{p.name} is not a video, audio or image file PyAV can read "
                         f"({reason})") from exc


def _mp4_without_index(p: Path) -> bool:
    """Whether `p` is an MP4/MOV whose top-level boxes end before any `moov` box.

    Cameras and downloads write the index last; when they are cut off, FFmpeg only says
    "invalid data", which sends users looking for the wrong problem. Walks box headers only.
    """
    try:
        with p.open("rb") as fh:
            size = p.stat().st_size
            head = fh.read(12)
            if len(head) < 8 or head[4:8] not in (b"ftyp", b"wide", b"mdat", b"free"):
                return False
            pos = 0
            while pos + 8 <= size:
                fh.seek(pos)
                header = fh.read(16)
                length, kind = int.from_bytes(header[:4], "big"), header[4:8]
                if kind == b"moov":
                    return False
                if length == 1 and len(header) == 16:
                    length = int.from_bytes(header[8:16], "big")  # 64-bit size (large mdat)
                elif length == 0:
                    break  # the box runs to the end of the file
                if length < 8:
                    return False  # not box structure after all: leave it to FFmpeg's message
                pos += length
            return True
    except OSError:
        return False


def _container_name(container: av.container.InputContainer, p: Path) -> str:
    names = container.format.name.split(",")
    ext = p.suffix.lower().lstrip(".")
    if ext in names:
        return ext
    if ext == "mkv" and "matroska" in names:
        return "matroska"
    return names[0]


def _language(stream: Any) -> str | None:
    lang = stream.metadata.get("language")
    return None if lang in (None, "", "und") else lang


def _codec_name(stream: Any) -> str:
    codec = stream.codec_context.codec
    return getattr(codec, "canonical_name", None) or codec.name


def _pick_video(container: av.container.InputContainer) -> Any | None:
    """First video stream that is real video: cover art and thumbnails are skipped."""
    skip = av.stream.Disposition.attached_pic | av.stream.Disposition.timed_thumbnails
    for stream in container.streams.video:
        if not (stream.disposition & skip):
            return stream
    return None


def _valid_rate(rate: Any) -> Fraction | None:
    if rate is None:
        return None
    try:
        fr = Fraction(rate)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return fr if 0 < fr <= _MAX_SANE_RATE else None


def _frame_rate(stream: Any, pts: list[int], tb: Fraction) -> tuple[Fraction, bool]:
    """Nominal rate and the variable-frame-rate flag, judged from the real timestamps."""
    avg = _valid_rate(stream.average_rate)
    base = _valid_rate(stream.base_rate) or _valid_rate(stream.guessed_rate)
    mean = None
    if len(pts) >= 2 and pts[-1] > pts[0]:
        mean = Fraction(len(pts) - 1) / ((pts[-1] - pts[0]) * tb)
    rate = avg or base or (mean.limit_denominator(1001) if mean else None) or Fraction(25)
    if mean is not None and abs(rate - mean) > mean / 100 and base is not None \
            and abs(base - mean) <= mean / 100:
        rate = base  # header average polluted (e.g. by a bogus duration); the stream agrees
    if len(pts) < 3:
        return rate, False
    nominal_ticks = 1 / (rate * tb)
    tolerance = max(Fraction(1), nominal_ticks / 500)  # rounding to the time base is not VFR
    vfr = any(abs((b - a) - nominal_ticks) > tolerance for a, b in itertools.pairwise(pts))
    return rate, vfr


def _bit_depth(pix_fmt: str | None) -> int:
    if not pix_fmt:
        return 8
    try:
        fmt = av.VideoFormat(pix_fmt)
    except (ValueError, av.FFmpegError):
        return 8
    return max((c.bits for c in fmt.components), default=8)


def _rotation_cw(ccw: Any) -> int:
    """FFmpeg reports counter-clockwise degrees; we store the clockwise turn to display."""
    try:
        deg = float(ccw or 0)
    except (TypeError, ValueError):
        return 0
    return round(-deg / 90.0) * 90 % 360


def _scan_uncached(p: Path) -> ScanResult:
    container = _open(p)
    try:
        return _scan_container(container, p)
    finally:
        container.close()


def _scan_container(container: av.container.InputContainer, p: Path) -> ScanResult:
    name = _container_name(container, p)
    if container.format.name in _TEXT_DEMUXERS:
        raise MediaError(f"{p.name} is a text file, not a video, audio or image file")
    is_image = container.format.name in _IMAGE_DEMUXERS or (
        p.suffix.lower() in IMAGE_EXTENSIONS and name in ("image2", "mjpeg")
    )
    vstream = _pick_video(container)
    astreams = list(container.streams.audio)
    sstreams = list(container.streams.subtitles)
    if vstream is None and not astreams:
        raise MediaError(f"{p.name} has no video or audio stream")

    raw_pts: list[int | None] = []
    key_pts: list[int] = []
    audio_span: dict[int, list[int]] = {s.index: [] for s in astreams}  # [first, end] ticks
    last_duration = 0
    first = None  # first decoded picture: rotation, colour, interlacing, real pixel format
    tried = 0
    wanted = ([vstream] if vstream is not None else []) + astreams
    try:
        for packet in container.demux(wanted):
            if packet.size == 0 or packet.is_discard:
                continue
            ts = packet.pts if packet.pts is not None else packet.dts
            if vstream is not None and packet.stream_index == vstream.index:
                raw_pts.append(ts)
                if packet.is_keyframe and ts is not None:
                    key_pts.append(ts)
                last_duration = packet.duration or 0
                if first is None and tried < _FIRST_PICTURE_PACKETS:
                    tried += 1
                    first = _decode_one(packet)
                if is_image and first is not None:
                    break
            elif ts is not None:
                span = audio_span[packet.stream_index]
                end = ts + (packet.duration or 0)
                if not span:
                    span.extend([ts, end])
                else:
                    span[0], span[1] = min(span[0], ts), max(span[1], end)
    except av.FFmpegError as exc:  # truncated or broken file: keep what was demuxed
        log.warning("%s: demuxing stopped early: %s", p.name, exc)

    video = None
    video_pts: list[int] = []
    if vstream is not None:
        if first is None and vstream is not None and raw_pts:
            first = _flush_one(vstream)
        if first is None:
            raise MediaError(f"{p.name}: no picture could be decoded")
        if is_image:
            raw_pts, key_pts = [0], [0]
        video_pts = _fill_missing_pts(raw_pts, vstream)
        video_pts.sort()
        key_pts.sort()
        video = _video_info(vstream, first, video_pts, last_duration, is_image)

    audio = [_audio_info(s, audio_span.get(s.index)) for s in astreams]
    subtitles = [SubtitleInfo(s.index, _codec_name(s), _language(s)) for s in sstreams]
    duration = container.duration / av.time_base if container.duration else None
    if duration is None and video is not None:
        duration = video.duration
    info = MediaInfo(
        path=p, container=name, duration=None if is_image else duration, is_image=is_image,
        video=video, audio=audio, subtitles=subtitles,
    )
    return ScanResult(info, tuple(video_pts), tuple(key_pts) if video else ())


def _decode_one(packet: Any) -> Any | None:
    try:
        for frame in packet.decode():
            return frame
    except av.FFmpegError:
        pass
    return None


def _flush_one(stream: Any) -> Any | None:
    """Drain the decoder: codecs with delay hold the first picture until the end of input."""
    try:
        for frame in stream.codec_context.decode(None):
            return frame
    except av.FFmpegError:
        pass
    return None


def _fill_missing_pts(raw: list[int | None], stream: Any) -> list[int]:
    """Timestamps for streams that lack them (raw elementary streams): one nominal step each."""
    if all(t is not None for t in raw):
        return list(raw)  # type: ignore[arg-type]
    tb = Fraction(stream.time_base) if stream.time_base else Fraction(1, 90000)
    rate = _valid_rate(stream.average_rate) or _valid_rate(stream.base_rate) or Fraction(25)
    step = max(1, round(1 / (rate * tb)))
    log.info("stream %d has packets without timestamps; assuming %s fps", stream.index, rate)
    return [i * step for i in range(len(raw))]


def _video_info(stream: Any, first: Any | None, pts: list[int], last_duration: int,
                is_image: bool) -> VideoInfo:
    cc = stream.codec_context
    tb = Fraction(stream.time_base) if stream.time_base else Fraction(1, 90000)
    rate, vfr = _frame_rate(stream, pts, tb)
    if is_image:
        vfr = False
    width = (first.width if first is not None else 0) or cc.width or 0
    height = (first.height if first is not None else 0) or cc.height or 0
    sar = stream.sample_aspect_ratio or cc.sample_aspect_ratio
    sar = Fraction(sar) if sar else Fraction(1)
    if sar <= 0:
        sar = Fraction(1)
    rotation = _rotation_cw(first.rotation) if first is not None else 0
    disp_w, disp_h = display_size(width, height, sar, rotation)
    pix_fmt = (first.format.name if first is not None else None) or cc.pix_fmt or "unknown"
    field_order = _FIELD_ORDERS.get(int(cc.field_order or 0), "unknown")
    frame_interlaced = bool(first is not None and first.interlaced_frame)
    interlaced = field_order in ("tt", "bb", "tb", "bt") or frame_interlaced
    if not interlaced:
        field_order = "progressive"
    elif field_order == "unknown" and cc.name == "dvvideo" and height <= 576:
        # DV in AVI stores no field order, but SD DV (NTSC and PAL) is bottom field first by
        # the standard; without this the deinterlacer guesses per chunk, often wrongly.
        field_order = "bb"
    color = ColorTags.from_av(first) if first is not None else ColorTags()
    color = color.merged(ColorTags.from_av(cc))
    duration = None
    if pts and not is_image:
        step = last_duration or (1 / (rate * tb))
        duration = float((pts[-1] - pts[0] + step) * tb)
    elif stream.duration:
        duration = float(stream.duration * tb)
    return VideoInfo(
        index=stream.index, codec=_codec_name(stream), width=width, height=height,
        frame_rate=rate, variable_frame_rate=vfr, frame_count=len(pts), time_base=tb,
        duration=duration, sample_aspect_ratio=sar, rotation=rotation,
        display_width=disp_w, display_height=disp_h, interlaced=interlaced,
        field_order=field_order, pix_fmt=pix_fmt, bit_depth=_bit_depth(pix_fmt),
        color_primaries=color.primaries, color_transfer=color.transfer,
        color_matrix=color.matrix, color_range=color.range,
    )


def display_size(width: int, height: int, sar: Fraction, rotation: int) -> tuple[int, int]:
    """Size a player shows: width stretched by the sample aspect ratio, then the rotation."""
    w = max(1, round(width * sar)) if sar != 1 else width
    h = height
    return (h, w) if rotation in (90, 270) else (w, h)


def _audio_info(stream: Any, span: list[int] | None) -> AudioInfo:
    cc = stream.codec_context
    tb = Fraction(stream.time_base) if stream.time_base else None
    duration = None
    if span and tb:
        duration = float((span[1] - span[0]) * tb)
    elif stream.duration and tb:
        duration = float(stream.duration * tb)
    layout = cc.layout.name if cc.layout is not None else ""
    bit_rate = cc.bit_rate or getattr(stream, "bit_rate", None) or None
    return AudioInfo(
        index=stream.index, codec=_codec_name(stream), sample_rate=cc.sample_rate or 0,
        channels=cc.channels or 0, layout=layout, duration=duration,
        language=_language(stream), bit_rate=bit_rate,
    )


__all__ = ["AudioInfo", "MediaInfo", "ScanResult", "SubtitleInfo", "VideoInfo", "display_size",
           "probe", "scan"]
