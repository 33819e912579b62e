"""Synthetic media factories for the whole test suite (PyAV and OpenCV only, no ffmpeg binary).

Every video frame carries its own number as a row of black/white cells across the top quarter of
the picture (start cell, 12 data bits, parity, stop cell), so a test can tell which source frame it
is looking at after lossy coding, scaling or reordering: `frame_id(image)`. Below the code strip
the picture moves (scrolling gradient plus a sliding box), so neighbouring frames differ.

Clips are tiny (96x64, 24 frames by default) so a whole suite of them encodes in well under a
second. The container follows the file extension.
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from av.subtitles.subtitle import SubtitleSet

from seedvr_desktop.media.colors import SWSCALE_MATRIX, ColorTags, matrix_for_rgb

CODE_BITS = 12  # frame numbers 0..4095
_CELLS = CODE_BITS + 3  # start (white) + data bits + parity + stop (black)
_FIELD_ORDER_CODES = {"progressive": 1, "tt": 2, "bb": 3, "tb": 4, "bt": 5}
_DEFAULT_VIDEO_CODEC = {
    ".mp4": "libx264",
    ".mov": "libx264",
    ".mkv": "libx264",
    ".avi": "mpeg4",
    ".webm": "libvpx-vp9",
}
_SUBTITLE_CODEC = {".mkv": "subrip", ".mp4": "mov_text", ".mov": "mov_text"}
_AUDIO_FRAME_SIZE = {"aac": 1024, "ac3": 1536, "mp3": 1152, "libmp3lame": 1152, "mp2": 1152}
_LANGUAGES = ("eng", "fra", "deu", "spa", "ita", "jpn")
# A minimal ASS header: the text subtitle encoders (mov_text, subrip) refuse to open without one.
_ASS_HEADER = (
    b"[Script Info]\nScriptType: v4.00+\nPlayResX: 384\nPlayResY: 288\n\n[V4+ Styles]\n"
    b"Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, "
    b"Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, "
    b"Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\n"
    b"Style: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,0\n\n"
    b"[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
)


@dataclass(frozen=True)
class Clip:
    """What a factory wrote: usable as a path (os.PathLike) plus the facts tests check against."""

    path: Path
    times: tuple[Fraction, ...]  # intended presentation time (s) of each picture, in order
    size: tuple[int, int]  # (width, height) as stored (coded), before rotation
    fps: Fraction  # nominal rate given to the factory
    ids: tuple[int, ...] = ()  # frame number drawn into each picture (see frame_id)
    extra: dict = field(default_factory=dict)  # factory-specific facts (damaged times, ...)

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    @property
    def frames(self) -> int:
        return len(self.times)


# --------------------------------------------------------------------------- picture content


def frame_pattern(index: int, size: tuple[int, int], *, bit_depth: int = 8,
                  content: str = "moving") -> np.ndarray:
    """The (H, W, 3) RGB picture of frame `index`: code strip on top, moving pattern below."""
    w, h = size
    top = 255.0
    xs = np.arange(w, dtype=np.float64)[None, :]
    ys = np.arange(h, dtype=np.float64)[:, None]
    shift = 0 if content == "static" else index
    img = np.empty((h, w, 3), np.float64)
    # Fine horizontal gradient (adjacent pixels differ by < 1/256 of full scale on wide frames, so
    # 10-bit sources keep values that 8-bit cannot express) scrolling sideways per frame.
    img[..., 0] = ((xs + 3 * shift) % w) / max(w - 1, 1) * top
    img[..., 1] = ys / max(h - 1, 1) * top * 0.8 + 20
    img[..., 2] = 40
    side = max(4, h // 5)
    bx = (4 * shift) % max(w - side, 1)
    by = h // 2
    img[by:by + side, bx:bx + side, 2] = 235
    img[by:by + side, bx:bx + side, 0] = 30
    _draw_code(img, index, top)
    if bit_depth > 8:
        return np.clip(img * 257.0, 0, 65535).astype(np.uint16)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _code_cells(index: int) -> list[int]:
    if not 0 <= index < (1 << CODE_BITS):
        raise ValueError(f"frame number {index} does not fit in {CODE_BITS} bits")
    bits = [(index >> (CODE_BITS - 1 - k)) & 1 for k in range(CODE_BITS)]
    return [1, *bits, sum(bits) % 2, 0]


def _draw_code(img: np.ndarray, index: int, white: float) -> None:
    h, w = img.shape[:2]
    strip = max(2, h // 4)
    for k, bit in enumerate(_code_cells(index)):
        x0, x1 = round(k * w / _CELLS), round((k + 1) * w / _CELLS)
        img[:strip, x0:x1, :] = white * (0.92 if bit else 0.06)


def _read_code(img: np.ndarray) -> int | None:
    h, w = img.shape[:2]
    scale = 65535.0 if img.dtype == np.uint16 else 255.0
    luma = img[..., :3].astype(np.float32).mean(axis=2) / scale
    y0, y1 = int(h * 0.06), max(int(h * 0.19), int(h * 0.06) + 1)
    cells = []
    for k in range(_CELLS):
        cw = w / _CELLS
        x0 = int((k + 0.3) * cw)
        x1 = max(int(np.ceil((k + 0.7) * cw)), x0 + 1)
        v = float(luma[y0:y1, x0:x1].mean())
        if 0.3 < v < 0.7:
            return None
        cells.append(1 if v >= 0.7 else 0)
    bits = cells[1:-2]
    if cells[0] != 1 or cells[-1] != 0 or sum(bits) % 2 != cells[-2]:
        return None
    return int("".join(map(str, bits)), 2)


def frame_id(image: np.ndarray, *, any_orientation: bool = False) -> int:
    """The frame number drawn by `frame_pattern` into an upright RGB picture (uint8 or uint16).

    Robust to lossy coding and scaling. With any_orientation, also finds it in pictures rotated
    by 90/180/270 degrees. Raises ValueError when no valid code is found.
    """
    turns = range(4) if any_orientation else range(1)
    for k in turns:
        found = _read_code(np.rot90(image, k))
        if found is not None:
            return found
    raise ValueError("no frame code found in the picture")


def reference_decode(path: str | os.PathLike, fmt: str = "rgb24") -> list[tuple[int, np.ndarray]]:
    """(pts, picture) of every picture a plain PyAV decode yields, sorted by pts; undecodable
    packets are skipped. The independent yardstick for seedvr_desktop.media's reader."""
    out = []
    with av.open(os.fspath(path)) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            try:
                for frame in packet.decode():
                    out.append((frame.pts, frame.to_ndarray(format=fmt)))
            except av.FFmpegError:
                pass
    if all(pts is not None for pts, _ in out):
        out.sort(key=lambda item: item[0])
    return out


# --------------------------------------------------------------------------- video


def _pick_pix_fmt(codec: str, size: tuple[int, int], bit_depth: int) -> str:
    formats = [f.name for f in (av.Codec(codec, "w").video_formats or [])]
    odd = size[0] % 2 or size[1] % 2
    if codec == "mjpeg" and not odd and bit_depth <= 8:
        return "yuvj420p"  # the MJPEG encoder wants full-range YUV
    wanted = {
        (False, 8): ["yuv420p", "yuvj420p", "rgb24", "bgr0", "bgr24", "pal8"],
        (True, 8): ["yuv444p", "rgb24", "bgr0", "bgr24", "yuvj444p", "gbrp"],
        (False, 10): ["yuv420p10le", "yuv422p10le", "yuv444p10le", "gbrp10le"],
        (True, 10): ["yuv444p10le", "gbrp10le", "rgb48le"],
    }[(bool(odd), 10 if bit_depth > 8 else 8)]
    for name in wanted:
        if name in formats:
            return name
    if formats and not odd:
        return formats[0]  # e.g. ProRes: 10-bit 4:2:2 only
    raise ValueError(f"{codec} has no pixel format for size {size} at {bit_depth} bits")


def _timeline(frames: int, fps: Fraction, time_base: Fraction | None, pts_list: Sequence[int]
              | None, vfr_jitter: bool, seed: int) -> tuple[Fraction, list[int]]:
    if pts_list is not None:
        tb = time_base or Fraction(1, 1000)
        return tb, list(pts_list)
    if vfr_jitter:
        # Phone-style timing: nominal steps plus a few milliseconds of jitter, on a 1 ms grid so
        # every container (Matroska stores milliseconds) keeps the exact values.
        rng = random.Random(seed)
        tb = Fraction(1, 1000)
        pts, last = [], -1
        for i in range(frames):
            t = round(i * 1000 / fps) + (rng.randint(-4, 4) if i else 0)
            t = max(t, last + 1)
            pts.append(t)
            last = t
        return tb, pts
    tb = time_base or 1 / fps
    step = 1 / fps / tb
    if step.denominator != 1:
        raise ValueError(f"time base {tb} cannot express frame rate {fps}")
    return tb, [i * int(step) for i in range(frames)]


def _add_audio(container: av.container.OutputContainer, codec: str, track: int):
    rate = 44100 if codec in ("mp3", "libmp3lame") else 48000
    stream = container.add_stream(codec, rate=rate)
    stream.codec_context.layout = "stereo"
    stream.codec_context.bit_rate = 128000
    formats = [f.name for f in (av.Codec(codec, "w").audio_formats or [])]
    for name in ("fltp", "flt", "s16p", "s16", "s32p", "s32"):
        if name in formats:
            stream.codec_context.format = name
            break
    stream.metadata["language"] = _LANGUAGES[track % len(_LANGUAGES)]
    return stream


def _encode_audio(container, stream, duration: Fraction, track: int) -> None:
    cc = stream.codec_context
    rate = cc.sample_rate
    fmt = cc.format.name if cc.format is not None else "s16"
    n_total = int(duration * rate) + 1
    hop = _AUDIO_FRAME_SIZE.get(cc.codec.name, 1024)
    freq = 440.0 * (track + 1)
    for start in range(0, n_total, hop):
        n = min(hop, n_total - start) if cc.codec.name.startswith("pcm") else hop
        t = (np.arange(start, start + n) / rate).astype(np.float64)
        mono = 0.3 * np.sin(2 * np.pi * freq * t)
        stereo = np.stack([mono, mono * 0.5])  # (2, n)
        planar = fmt.endswith("p")
        if fmt.startswith("flt"):
            arr = stereo.astype(np.float32)
        elif fmt.startswith("s32"):
            arr = (stereo * 2147483647).astype(np.int32)
        else:
            arr = (stereo * 32767).astype(np.int16)
        if not planar:
            arr = np.ascontiguousarray(arr.T).reshape(1, -1)  # interleaved L R L R ...
        frame = av.AudioFrame.from_ndarray(arr, format=fmt, layout="stereo")
        frame.sample_rate = rate
        frame.pts = start
        frame.time_base = Fraction(1, rate)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def _add_subtitles(container, ext: str, cues: Sequence[tuple[float, float, str]]) -> None:
    codec = _SUBTITLE_CODEC.get(ext)
    if codec is None:
        raise ValueError(f"no text subtitle codec for {ext} files")
    stream = container.add_stream(codec)
    stream.codec_context.subtitle_header = _ASS_HEADER
    stream.time_base = Fraction(1, 1000)
    stream.metadata["language"] = "eng"
    return stream


def _mux_subtitles(container, stream, cues: Sequence[tuple[float, float, str]]) -> None:
    for start, end, text in cues:
        start_ms, end_ms = round(start * 1000), round(end * 1000)
        sub = SubtitleSet.create(
            b"0,0,Default,,0,0,0,," + text.encode(), 0, end_ms - start_ms, pts=start_ms
        )
        packet = stream.codec_context.encode_subtitle(sub)
        packet.stream = stream
        packet.time_base = Fraction(1, 1000)
        container.mux(packet)


def make_video(
    path: str | os.PathLike,
    *,
    frames: int = 24,
    size: tuple[int, int] = (96, 64),
    fps: Fraction | int = Fraction(25),
    codec: str | None = None,
    pix_fmt: str | None = None,
    audio: str | None = None,
    audio_tracks: int = 1,
    subtitles: Sequence[tuple[float, float, str]] | None = None,
    vfr_jitter: bool = False,
    pts_list: Sequence[int] | None = None,
    time_base: Fraction | None = None,
    rotation: int = 0,
    sar: Fraction | None = None,
    interlaced: str | None = None,
    gop: int | None = None,
    bframes: int | None = None,
    bit_depth: int = 8,
    content: str = "moving",
    color: ColorTags | None = None,
    options: dict[str, str] | None = None,
    first_id: int = 0,
    seed: int = 0,
) -> Clip:
    """A video whose frame i shows frame number first_id+i (see module doc); returns a Clip.

    size is the stored (coded) size; with rotation (degrees clockwise a player applies, 0/90/180/
    270, written as a display matrix) the picture is drawn upright at the display size and stored
    turned, like a phone clip. pts_list gives explicit timestamps in time_base units (default
    1/1000 s); vfr_jitter gives nominal steps with +-4 ms jitter. interlaced is "tt" or "bb".
    audio is an encoder name ("aac", "ac3", "mp3", "pcm_s16le") for each of audio_tracks tracks;
    subtitles are (start_s, end_s, text) cues (mkv: SubRip, mp4/mov: mov_text).
    """
    path = Path(path)
    ext = path.suffix.lower()
    fps = Fraction(fps)
    codec = codec or _DEFAULT_VIDEO_CODEC.get(ext, "libx264")
    if rotation % 90:
        raise ValueError("rotation must be a multiple of 90")
    rotation %= 360
    turned = rotation in (90, 270)
    display = (size[1], size[0]) if turned else size
    pix_fmt = pix_fmt or _pick_pix_fmt(codec, size, bit_depth)
    tb, pts = _timeline(frames, fps, time_base, pts_list, vfr_jitter, seed)
    if len(pts) != frames:
        frames = len(pts)

    container = av.open(os.fspath(path), "w")
    try:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = pix_fmt
        stream.time_base = tb
        cc = stream.codec_context
        cc.time_base = tb
        opts: dict[str, str] = {}
        x264_params: list[str] = []
        if codec.startswith("libx264"):
            opts["preset"] = "veryfast"
        if gop is not None:
            cc.gop_size = gop
            if codec.startswith("libx26"):
                x264_params += [f"keyint={gop}", f"min-keyint={min(gop, 25)}", "scenecut=0"]
        if bframes is not None:
            cc.max_b_frames = bframes
        if sar is not None:
            cc.sample_aspect_ratio = Fraction(sar)
        if interlaced is not None:
            cc.field_order = _FIELD_ORDER_CODES[interlaced]
            if codec.startswith("libx264"):
                x264_params += ["interlaced=1", "tff=1" if interlaced in ("tt", "tb") else "bff=1"]
            else:
                cc.flags |= av.codec.context.Flags.interlaced_dct
        if color is not None:
            color.apply_to(cc)
        if rotation:
            # PyAV takes counter-clockwise degrees (as FFmpeg's display matrix reads back).
            stream.set_display_rotation(-rotation)
        if x264_params and codec.startswith("libx26"):
            key = "x264-params" if codec.startswith("libx264") else "x265-params"
            opts[key] = ":".join(x264_params)
        opts.update(options or {})
        cc.options = opts

        audio_streams = [_add_audio(container, audio, k) for k in range(audio_tracks)] if audio \
            else []
        sub_stream = _add_subtitles(container, ext, subtitles) if subtitles else None

        src_fmt = "rgb48le" if bit_depth > 8 else "rgb24"
        # RGB->YUV matrix as cameras do it: the tagged one, else BT.709 for HD, BT.601 for SD.
        tags = color or ColorTags()
        matrix = None if av.VideoFormat(pix_fmt).is_rgb else SWSCALE_MATRIX.get(
            matrix_for_rgb(tags, size[1]))
        ids = []
        for i, p in enumerate(pts):
            picture = frame_pattern(first_id + i, display, bit_depth=bit_depth, content=content)
            if rotation:
                picture = np.ascontiguousarray(np.rot90(picture, rotation // 90))
            frame = av.VideoFrame.from_ndarray(picture, format=src_fmt)
            if color is not None:
                color.apply_to(frame)
            frame = frame.reformat(format=pix_fmt, dst_colorspace=matrix)
            frame.pts = p
            frame.time_base = tb
            ids.append(first_id + i)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        duration = (pts[-1] + (1 / fps) / tb) * tb if pts else Fraction(0)
        for k, a in enumerate(audio_streams):
            _encode_audio(container, a, duration, k)
        if sub_stream is not None:
            _mux_subtitles(container, sub_stream, subtitles or [])
    finally:
        container.close()
    times = tuple(Fraction(p) * tb for p in pts)
    return Clip(path, times, size, fps, tuple(ids), {"pix_fmt": pix_fmt, "codec": codec})


def make_null_frame_avi(
    path: str | os.PathLike,
    *,
    slots: Sequence[int] = (0, 1, 2, 7, 8, 15, 16, 17, 28, 29),
    fps: Fraction | int = 15,
    size: tuple[int, int] = (96, 64),
    codec: str = "mjpeg",
) -> Clip:
    """An AVI of capture-style dropped frames: pictures sit at frame slots `slots`, the gaps are
    empty "null" chunks (written by FFmpeg's AVI muxer), so the header declares slots[-1]+1
    frames while only len(slots) pictures decode. Picture k shows frame number slots[k]."""
    path = Path(path)
    fps = Fraction(fps)
    container = av.open(os.fspath(path), "w")
    try:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = _pick_pix_fmt(codec, size, 8)
        stream.time_base = 1 / fps
        for slot in slots:
            frame = av.VideoFrame.from_ndarray(frame_pattern(slot, size), format="rgb24")
            frame = frame.reformat(format=stream.pix_fmt)
            frame.pts = slot
            frame.time_base = 1 / fps
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    finally:
        container.close()
    times = tuple(Fraction(s) / fps for s in slots)
    return Clip(path, times, size, fps, tuple(slots), {"declared_frames": slots[-1] + 1})


# --------------------------------------------------------------------------- damage


def make_truncated(path_in: str | os.PathLike, path_out: str | os.PathLike,
                   fraction: float) -> Path:
    """A copy of the first `fraction` of the bytes of path_in (an interrupted download)."""
    data = Path(path_in).read_bytes()
    out = Path(path_out)
    out.write_bytes(data[: int(len(data) * fraction)])
    return out


def make_corrupt(
    path_in: str | os.PathLike,
    path_out: str | os.PathLike,
    *,
    frames: Sequence[int] | None = None,
    count: int = 2,
    mode: str = "garbage",
    seed: int = 1,
) -> Clip:
    """A copy of path_in whose video packets number `frames` (in file order; default `count`
    packets from the middle) have their payload overwritten ("garbage": random bytes, "zero":
    zeros), leaving the container intact. Clip.times lists the intact pictures' times and
    Clip.extra["damaged_times"] those of the damaged packets."""
    path_in, out = Path(path_in), Path(path_out)
    spans = []  # (pos, size, pts_seconds) of every video packet in file order
    with av.open(os.fspath(path_in)) as container:
        stream = container.streams.video[0]
        fps = Fraction(stream.average_rate or 25)
        for packet in container.demux(stream):
            if packet.size == 0 or packet.pos is None or packet.pos < 0:
                continue
            t = packet.pts if packet.pts is not None else packet.dts
            spans.append((packet.pos, packet.size, Fraction(t) * stream.time_base))
        size = (stream.width, stream.height)
    if frames is None:
        mid = len(spans) // 2
        frames = list(range(mid, mid + count))
    shutil.copyfile(path_in, out)
    rng = np.random.default_rng(seed)
    damaged = []
    with out.open("r+b") as fh:
        for k in frames:
            pos, n, t = spans[k]
            fh.seek(pos)
            payload = rng.integers(0, 256, n, dtype=np.uint8) if mode == "garbage" \
                else np.zeros(n, np.uint8)
            fh.write(payload.tobytes())
            damaged.append(t)
    all_times = sorted(t for _, _, t in spans)
    good = tuple(t for t in all_times if t not in set(damaged))
    return Clip(out, good, size, fps, (), {"damaged_times": sorted(damaged),
                                           "all_times": all_times})


# --------------------------------------------------------------------------- images and others


def make_image(
    path: str | os.PathLike,
    size: tuple[int, int] = (96, 64),
    *,
    index: int = 0,
    bit_depth: int = 8,
    gray: bool = False,
    alpha: bool = False,
    exif_orientation: int | None = None,
) -> Path:
    """A still image (format from the extension: jpg/png/tif/webp/bmp) showing frame `index`;
    bit_depth=16 for PNG/TIFF writes 16 bits per channel. exif_orientation (JPEG only; 3, 6 or
    8) stores the picture turned and tags it so a viewer turns it upright again (size is the
    upright size)."""
    path = Path(path)
    rgb = frame_pattern(index, size, bit_depth=16 if bit_depth > 8 else 8)
    if exif_orientation is not None:
        turns = {1: 0, 3: 2, 6: 1, 8: -1}[exif_orientation]  # counter-clockwise quarter turns
        rgb = np.ascontiguousarray(np.rot90(rgb, turns))
    img = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if gray:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    elif alpha:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2BGRA)
    params: list[int] = []
    if path.suffix.lower() in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, 95]
    elif path.suffix.lower() == ".webp":
        params = [cv2.IMWRITE_WEBP_QUALITY, 95]
    if not cv2.imwrite(os.fspath(path), img, params):
        raise OSError(f"OpenCV could not write {path}")
    if exif_orientation is not None:
        _insert_exif_orientation(path, exif_orientation)
    return path


def _insert_exif_orientation(path: Path, orientation: int) -> None:
    """Add an APP1 Exif segment holding only the Orientation tag after the JFIF header."""
    tiff = (b"MM\x00*" + (8).to_bytes(4, "big") + (1).to_bytes(2, "big")
            + (0x0112).to_bytes(2, "big") + (3).to_bytes(2, "big") + (1).to_bytes(4, "big")
            + orientation.to_bytes(2, "big") + b"\x00\x00" + (0).to_bytes(4, "big"))
    payload = b"Exif\x00\x00" + tiff
    segment = b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload
    data = path.read_bytes()
    if data[:2] != b"\xff\xd8":
        raise ValueError("EXIF orientation needs a JPEG file")
    cut = 2
    if data[2:4] == b"\xff\xe0":  # keep JFIF APP0 first
        cut = 4 + int.from_bytes(data[4:6], "big")
    path.write_bytes(data[:cut] + segment + data[cut:])


def make_text_file(path: str | os.PathLike, text: str = "not a video\n") -> Path:
    """A plain text file (for 'not media' errors), possibly with a video extension."""
    path = Path(path)
    path.write_text(text)
    return path
