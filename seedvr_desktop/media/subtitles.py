"""Adding a text subtitle track to a finished video file by remuxing it with PyAV.

Runs after the export's atomic rename (a `RestoreJob.post_process`): every existing stream is
copied packet for packet (no re-encode), a new subtitle stream is encoded from the cues, and the
result replaces the file atomically, so a failure leaves the exported video as it was.

Codecs: MP4/MOV can only carry `mov_text` (3GPP timed text); Matroska takes SubRip or ASS. PyAV
encodes text subtitles from ASS "Dialogue" event lines, so every cue goes through that form.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from av.subtitles.subtitle import SubtitleSet

from seedvr_desktop.errors import MediaError
from seedvr_desktop.fsutil import atomic_path

log = logging.getLogger(__name__)

TIME_BASE = Fraction(1, 1000)  # subtitle timestamps in milliseconds
_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
# Matroska would otherwise shift every stream to start at 0 when audio priming starts below it,
# moving the video and the new captions off the times the exporter wrote.
_MUX_OPTIONS = {"matroska": {"avoid_negative_ts": "disabled"}}
_ALIGN = {"bottom": 2, "middle": 5, "top": 8}
_PLAIN_HEADER = (
    "[Script Info]\nScriptType: v4.00+\n\n[Events]\n"
    "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
)


@dataclass(frozen=True)
class SubtitleCue:
    """One subtitle: seconds on the video's timeline, plain text with '\\n' line breaks."""

    start: float
    end: float
    text: str
    position: str = "bottom"  # bottom | middle | top


def subtitle_codec_for(path: str | os.PathLike[str], preferred: str = "auto") -> str:
    """The text subtitle codec to use in this container: mov_text, subrip or ass."""
    suffix = Path(path).suffix.lower()
    if suffix not in _FORMATS:
        raise MediaError(f"cannot add subtitles to a {suffix or 'extension-less'} file")
    if _FORMATS[suffix] in ("mp4", "mov"):
        return "mov_text"
    return "subrip" if preferred == "srt" else "ass"


def default_ass_header(width: int, height: int) -> str:
    """A minimal ASS script header; encoders need one and MKV stores it as the track's header."""
    size = max(8, round(height * 0.06))
    return (
        "[Script Info]\nScriptType: v4.00+\n"
        f"PlayResX: {width}\nPlayResY: {height}\nScaledBorderAndShadow: yes\n\n"
        "[V4+ Styles]\n"
        "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, "
        "BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, "
        "BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\n"
        f"Style: Default,DejaVu Sans,{size},&H00FFFFFF,&H00FFFFFF,&H00000000,&H80000000,"
        "-1,0,0,0,100,100,0,0,1,1,0,2,10,10,10,1\n\n"
        "[Events]\n"
        "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
    )


def _event_text(cue: SubtitleCue) -> str:
    lines = [ln.strip() for ln in cue.text.replace("\r\n", "\n").split("\n") if ln.strip()]
    body = "\\N".join(lines).replace("{", "(").replace("}", ")")
    if cue.position != "bottom":
        body = f"{{\\an{_ALIGN.get(cue.position, 2)}}}" + body
    return body


def plain_header() -> str:
    """A style-less ASS header: what the SubRip and mov_text encoders need to open, and all
    they need for plain text."""
    return _PLAIN_HEADER


def add_text_stream(out: av.container.OutputContainer, codec: str, header: str | bytes,
                    language: str | None = None, title: str | None = None) -> Any:
    """A new text subtitle stream (mov_text, subrip or ass) counting in milliseconds.

    The encoders take ASS events, so every text stream carries an ASS script header; Matroska
    stores it as the ASS track's private data.
    """
    sub = out.add_stream(codec)
    sub.time_base = TIME_BASE
    sub.codec_context.time_base = TIME_BASE
    sub.codec_context.subtitle_header = header.encode("utf-8") if isinstance(header, str) \
        else header
    if language:
        sub.metadata["language"] = language
    if title:
        sub.metadata["title"] = title
    return sub


def encode_event(stream: Any, event: bytes, start_ms: int, duration_ms: int) -> Any:
    """One encoded packet for `stream` showing the ASS dialogue `event`
    (b"ReadOrder,Layer,Style,Name,MarginL,MarginR,MarginV,Effect,Text") from `start_ms` for
    `duration_ms` milliseconds of the output timeline."""
    duration_ms = max(1, duration_ms)
    packet = stream.codec_context.encode_subtitle(
        SubtitleSet.create(event, 0, duration_ms, pts=start_ms))
    packet.stream = stream
    packet.time_base = TIME_BASE
    packet.pts = packet.dts = start_ms
    packet.duration = duration_ms
    return packet


def mux_subtitles(
    video_path: str | os.PathLike[str],
    cues: Sequence[SubtitleCue],
    *,
    codec: str = "auto",
    language: str = "und",
    title: str | None = None,
    ass_header: str | None = None,
) -> None:
    """Add one text subtitle track holding `cues` to the video file, replacing it atomically.

    codec: "auto" (mov_text for MP4/MOV, ASS for MKV), "srt" or "ass" (MKV only; ignored for MP4).
    """
    path = Path(video_path)
    if not cues:
        log.info("no captions to mux into %s", path.name)
        return
    sub_codec = subtitle_codec_for(path, "srt" if codec in ("srt", "subrip") else codec)
    try:
        with atomic_path(path, tag="subs.tmp") as tmp:  # keeps the export's permissions
            _remux(path, tmp, cues, sub_codec, language, title, ass_header)
    except av.FFmpegError as exc:
        raise MediaError(f"could not add subtitles to {path.name}: {exc}") from None


def _remux(
    source: Path,
    target: Path,
    cues: Sequence[SubtitleCue],
    codec: str,
    language: str,
    title: str | None,
    ass_header: str | None,
) -> None:
    fmt = _FORMATS[source.suffix.lower()]
    with av.open(str(source)) as inp, av.open(
        str(target), "w", format=fmt, options=_MUX_OPTIONS.get(fmt, {})
    ) as out:
        out.metadata.update(inp.metadata)
        mapping = {}
        width = height = 0
        for stream in inp.streams:
            if stream.type not in ("video", "audio", "subtitle"):
                continue
            copy = out.add_stream_from_template(stream)
            copy.metadata.update(stream.metadata)
            mapping[stream.index] = copy
            if stream.type == "video" and not width:
                width, height = stream.codec_context.width, stream.codec_context.height
        if codec == "subrip":
            # The SubRip encoder turns every style attribute into inline tags ({\fn..}{\b1});
            # a header without styles keeps the SRT text plain.
            header = _PLAIN_HEADER
        else:
            header = ass_header or default_ass_header(width or 640, height or 480)
        sub = add_text_stream(out, codec, header, language, title)
        pending = sorted(cues, key=lambda c: c.start)
        order = 0

        def mux_cues_until(seconds: float | None) -> None:
            nonlocal order
            while pending and (seconds is None or pending[0].start <= seconds):
                cue = pending.pop(0)
                start = round(cue.start * 1000)
                duration = max(1, round(cue.end * 1000) - start)
                event = f"{order},0,Default,,0,0,0,,{_event_text(cue)}".encode()
                out.mux(encode_event(sub, event, start, duration))
                order += 1

        streams = [s for s in inp.streams if s.index in mapping]
        for packet in inp.demux(streams):
            if packet.size == 0:
                continue  # demuxer flush packets carry nothing (Matroska B-frames lack dts: keep)
            if packet.pts is not None and packet.time_base is not None:
                mux_cues_until(float(packet.pts * packet.time_base))
            packet.stream = mapping[packet.stream.index]
            out.mux(packet)
        mux_cues_until(None)
