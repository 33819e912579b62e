"""The video codecs we write, their containers, and the user's encode settings, validated.

A leaf of `media`: the writer, the encoder, the engine's jobs and the GUI's export dialog all
read codec facts from here, so a codec is added in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from seedvr_desktop.errors import UserError


@dataclass(frozen=True)
class EncodeSettings:
    """Video encoder and muxing choices for the output file."""

    codec: str = "h264"  # h264 | h265 | prores | ffv1 | png
    crf: int | None = None  # None: the codec's sensible default
    bitrate_kbps: int | None = None  # a target bitrate instead of CRF (None: quality mode)
    pixel_format: str | None = None  # explicit FFmpeg pix_fmt; None derives it from bit_depth
    preset: str | None = None
    bit_depth: int = 8  # 8 or 10 (16 for png)
    audio: str = "copy"  # copy | transcode | none
    subtitles: bool = True  # copy the source's subtitle streams where the container allows


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
