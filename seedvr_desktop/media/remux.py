"""Assemble the final output: encoded video segments + the source's audio and subtitles.

Audio and subtitle packets are copied untouched (bit-exact payloads) whenever the output
container can carry the codec; damaged audio packets are copied too, which keeps the sound the
decoder can still play. Only when the container cannot carry a codec, or the user asks for it,
is audio transcoded (see `audio.py`), with a notice.

Timeline: `origin` is the source time (seconds, the source container's clock) that becomes
output time 0. Untrimmed jobs use origin 0, so every stream keeps its exact source timing
(including AAC priming packets that start before 0). A trimmed job sets origin to the first
output frame's time and copies the packets that overlap [start, end).
"""

from __future__ import annotations

import contextlib
import heapq
import io
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from seedvr_desktop.errors import MediaError
from seedvr_desktop.fsutil import atomic_path
from seedvr_desktop.media.audio import AudioTranscoder, ordered_layout
from seedvr_desktop.media.codecs import CONTAINER_FORMATS
from seedvr_desktop.media.encoder import VideoParams
from seedvr_desktop.media.mux_request import MuxRequest
from seedvr_desktop.media.outputs import is_write_failure, refuse_existing

log = logging.getLogger(__name__)

# Container metadata that describes the old file's muxer rather than the content.
_SKIP_METADATA = {"major_brand", "minor_version", "compatible_brands", "encoder", "duration"}


# Matroska would otherwise shift *every* stream when one audio packet starts before 0 (AC-3 and
# MP3 from MP4 sources do), moving the video off its source timing; negative block times are
# legal there and read back exactly.
_MUX_OPTIONS = {"matroska": {"avoid_negative_ts": "disabled"}}

Timed = tuple[float, Any]  # (decode time in seconds, packet)


def mux_output(req: MuxRequest) -> list[str]:
    """Write the output to a temporary file and rename it onto `req.target`; returns notices.

    If FFmpeg refuses the copied audio while writing (some containers check a codec only when
    they write their index), the mux is redone with transcoded audio, then without audio; it
    costs one more packet copy of the video, never a re-encode. Raises UserError if the target
    appeared meanwhile and overwrite is off. On any failure the temporary file is removed and an
    existing target is left as it was.
    """
    import av

    fallbacks = {"copy": "transcode", "transcode": "none"}
    try:
        return _mux_once(req)
    except av.FFmpegError as exc:
        if req.source is None or req.audio not in fallbacks or is_write_failure(exc):
            raise  # a full disk is no reason to try other audio: the next try fails the same
        nxt = fallbacks[req.audio]
        log.warning("muxing with audio=%s failed (%s); retrying with audio=%s", req.audio, exc,
                    nxt)
        # The user sees FFmpeg's reason, not our hidden temporary file name (that is logged).
        reason = getattr(exc, "strerror", None) or str(exc)
        note = (f"audio could not be {'copied' if req.audio == 'copy' else 'transcoded'} "
                f"into {req.target.suffix} ({reason}); "
                + ("transcoded instead" if nxt == "transcode" else "left out"))
        retry = replace(req, audio=nxt, subtitles=req.subtitles and nxt != "none")
        return [note, *mux_output(retry)]


def _mux_once(req: MuxRequest) -> list[str]:
    import av

    if not req.segments:
        raise ValueError("no video segments to mux")
    fmt = CONTAINER_FORMATS[req.target.suffix.lower()]
    notices: list[str] = []
    with atomic_path(req.target) as tmp:
        with av.open(os.fspath(req.segments[0])) as first, \
                av.open(os.fspath(tmp), "w", format=fmt, options=_MUX_OPTIONS.get(fmt, {})) as out:
            template = first.streams.video[0]
            extradata = template.codec_context.extradata
            vstream = _add_video_stream(out, template, req.params, fmt)
            src = _open_source(req.source) if req.source else None
            try:
                handlers = _source_handlers(src, out, req, fmt, notices) if src else []
                if src is not None:
                    _copy_metadata(src, out)
                streams: list[Iterator[Timed]] = [
                    _video_packets(req.segments, vstream, extradata)]
                if handlers:
                    streams.append(_source_packets(src, handlers, req))
                for _, packet in heapq.merge(*streams, key=lambda item: item[0]):
                    out.mux(packet)
                for handler in handlers:
                    notices.extend(handler.notices())
            finally:
                if src is not None:
                    src.close()
        refuse_existing(req.target, req.overwrite)
    return notices


def _open_source(path: Path) -> Any:
    """The source, opened again for its sound, subtitles and metadata. A source that cannot be
    opened now (moved, deleted or replaced by a non-media file while the job ran) is a
    one-line MediaError, not a reason to retry the mux with other audio settings."""
    import av

    try:
        return av.open(os.fspath(path), metadata_errors="replace")
    except (av.FFmpegError, OSError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise MediaError(f"cannot open {path.name} again for its sound and subtitles "
                         f"({reason}); was it moved or replaced while the job ran?") from None


def _add_video_stream(out: Any, template: Any, params: VideoParams, fmt: str) -> Any:
    stream = out.add_stream_from_template(template)
    if fmt != "matroska":  # Matroska always counts in milliseconds
        stream.time_base = template.time_base
    if params.spec.key == "h265" and fmt in ("mp4", "mov"):
        stream.codec_context.codec_tag = "hvc1"  # the tag Apple players require for HEVC
    if params.rotation:
        # PyAV takes counter-clockwise degrees; our rotation is clockwise for display.
        stream.set_display_rotation(-params.rotation)
    return stream


def _video_packets(paths: Sequence[Path], stream: Any, extradata: bytes | None
                   ) -> Iterator[Timed]:
    """Packets of all segments in order, with decode timestamps kept strictly increasing."""
    import av

    last_dts: int | None = None
    for path in paths:
        with av.open(os.fspath(path)) as seg:
            sstream = seg.streams.video[0]
            if sstream.codec_context.extradata != extradata:
                raise RuntimeError(f"segment {path.name} was encoded with different settings")
            for packet in seg.demux(sstream):
                if packet.size == 0:
                    continue  # end-of-stream marker
                if packet.dts is None:
                    packet.dts = packet.pts
                if last_dts is not None and packet.dts <= last_dts:
                    # Only possible when a segment's first key frame has a larger reorder delay
                    # than the previous segment's tail; one tick keeps the muxer happy.
                    log.debug("segment %s: dts %s nudged after %s", path.name, packet.dts,
                              last_dts)
                    packet.dts = last_dts + 1
                last_dts = packet.dts
                packet.stream = stream
                yield float(packet.dts * sstream.time_base), packet


@dataclass
class _Window:
    """The source window in a stream's own ticks; None means open-ended."""

    offset: int  # origin in ticks
    start: int | None
    end: int | None

    @classmethod
    def make(cls, time_base: Fraction, req: MuxRequest) -> _Window:
        def ticks(t: float | Fraction | None) -> int | None:
            return None if t is None else round(Fraction(t) / time_base)

        return cls(ticks(req.origin) or 0, ticks(req.start), ticks(req.end))

    def overlaps(self, ts: int, duration: int) -> bool:
        if self.start is not None and ts + max(duration, 1) <= self.start:
            return False
        return not (self.end is not None and ts >= self.end)

    def past_end(self, ts: int) -> bool:
        return self.end is not None and ts >= self.end


class _CopyHandler:
    """Copies one audio or subtitle stream's packets unchanged, shifted onto the output clock."""

    def __init__(self, in_stream: Any, out_stream: Any, req: MuxRequest) -> None:
        self.in_stream = in_stream
        self.out_stream = out_stream
        self.window = _Window.make(in_stream.time_base, req)
        self.time_base = in_stream.time_base
        self._last_ts: int | None = None
        self._last_duration = 0  # duration of the previous packet, in source ticks
        self.done = False

    def handle(self, packet: Any) -> list[Any]:
        if packet.size == 0:
            # The demuxer's end-of-stream marker, not data. It carries no timestamp, and any we
            # invented could collide with the last real packet once rescaled to the output clock
            # (one 90 kHz MPEG-PS tick rounds to the same 1/48000 tick), which the muxer rejects.
            return []
        ts = packet.pts if packet.pts is not None else packet.dts
        if ts is None:
            if self._last_ts is None:
                return []
            # A timestamp-less packet (some AVIs) follows the previous one; stepping by its
            # duration rather than one tick keeps it distinct after rescaling.
            ts = self._last_ts + max(self._last_duration, 1)
            packet.pts = packet.dts = ts
        if packet.dts is None:
            packet.dts = ts
        self._last_ts = ts
        self._last_duration = packet.duration or 0
        if self.window.past_end(ts):
            self.done = True
            return []
        if not self.window.overlaps(ts, packet.duration or 0):
            return []
        if self.in_stream.type == "subtitle" and ts < self.window.offset:
            return []  # a cue that began before the trim start: not shown in the output
        packet.pts = ts - self.window.offset
        packet.dts -= self.window.offset
        packet.stream = self.out_stream
        return [packet]

    def flush(self) -> list[Any]:
        return []

    def notices(self) -> list[str]:
        return []


# Text subtitle codecs (decoder names) whose cues can be re-encoded into another text format;
# bitmap subtitles (dvd_subtitle, hdmv_pgs_subtitle) are pictures and can only be copied.
_TEXT_SUBTITLES = frozenset({"subrip", "srt", "ass", "ssa", "mov_text", "webvtt", "text"})
# The text format each container stores: MP4/MOV only know 3GPP timed text; SubRip is the
# plainest Matroska text track every player reads.
_TEXT_TARGET = {"mp4": "mov_text", "mov": "mov_text", "matroska": "subrip"}
_UNKNOWN_CUE_MS = 3000  # shown this long when a cue's packet has no duration


class _TextConvertHandler(_CopyHandler):
    """Decodes a text subtitle stream's cues and re-encodes them in the output's text format.

    Cue times come from the packets (shifted onto the output clock like a copy), the text goes
    through the ASS event form that every FFmpeg text decoder gives and encoder takes, so line
    breaks and simple styling survive a change of container.
    """

    def __init__(self, in_stream: Any, out: Any, codec: str, req: MuxRequest) -> None:
        from seedvr_desktop.media.subtitles import (
            add_text_stream,
            default_ass_header,
            plain_header,
        )

        header: str | bytes = plain_header()
        if codec != "subrip":
            src_header = in_stream.codec_context.subtitle_header
            header = src_header or default_ass_header(req.params.width, req.params.height)
        out_stream = add_text_stream(out, codec, header)
        super().__init__(in_stream, out_stream, req)
        self.codec = codec
        self.converted = 0

    def handle(self, packet: Any) -> list[Any]:
        from seedvr_desktop.media.subtitles import encode_event

        if packet.size == 0:
            return []
        try:
            rects = self.in_stream.codec_context.decode(packet)
        except Exception as exc:  # one undecodable cue must not cost the whole file
            log.warning("subtitle cue at %s could not be decoded: %s", packet.pts, exc)
            return []
        duration = packet.duration or 0
        placed = super().handle(packet)
        events = [r.ass for r in rects if getattr(r, "ass", None)]
        if not placed or not events:
            return []  # outside the window, or an empty "clear the screen" sample (mov_text)
        start_ms = round(placed[0].pts * self.time_base * 1000)
        length_ms = (round(duration * self.time_base * 1000) if duration
                     else _UNKNOWN_CUE_MS)
        out: list[Any] = []
        for event in events:
            out.append(encode_event(self.out_stream, bytes(event), start_ms, length_ms))
            self.converted += 1
        return out


def _copy_stream(out: Any, template: Any) -> Any:
    """A stream-copy of `template` in `out`. An audio stream whose channel order is unknown
    (common in AVI: "2 channels") gets the default layout for its channel count, which MP4
    requires; the packets are unchanged."""
    stream = out.add_stream_from_template(template)
    if template.type == "audio":
        layout = template.codec_context.layout
        named = ordered_layout(layout)
        if named is not None and named != layout.name:
            stream.codec_context.layout = named
    return stream


def _can_carry(fmt: str, template: Any) -> bool:
    """Whether container `fmt` accepts a stream-copy of `template` (a header is dry-run)."""
    import av

    try:
        with av.open(io.BytesIO(), "w", format=fmt) as probe:
            _copy_stream(probe, template)
            probe.start_encoding()
        return True
    except Exception as exc:  # PyAV raises ValueError or FFmpeg errors here
        log.debug("%s cannot carry %s: %s", fmt, template.codec_context.name, exc)
        return False


def _source_handlers(src: Any, out: Any, req: MuxRequest, fmt: str,
                     notices: list[str]) -> list[Any]:
    handlers: list[Any] = []
    if req.audio != "none":
        for k, stream in enumerate(src.streams.audio):
            lang = stream.metadata.get("language")
            label = f"audio track {k + 1}" + (f" ({lang})" if lang else "")
            name = stream.codec_context.name
            if req.audio == "copy" and _can_carry(fmt, stream):
                out_stream = _copy_stream(out, stream)
                handlers.append(_CopyHandler(stream, out_stream, req))
            else:
                try:
                    handler = AudioTranscoder(stream, out, fmt, req)
                except Exception as exc:
                    notices.append(f"{label} ({name}) dropped: cannot be transcoded ({exc})")
                    continue
                handlers.append(handler)
                if req.audio == "copy":
                    notices.append(f"{label}: {fmt} cannot carry {name}; transcoded to "
                                   f"{handler.codec_name}")
            _copy_stream_metadata(stream, handlers[-1].out_stream)
    if req.subtitles:
        for k, stream in enumerate(src.streams.subtitles):
            name = stream.codec_context.name
            if _can_carry(fmt, stream):
                out_stream = _copy_stream(out, stream)
                _copy_stream_metadata(stream, out_stream)
                handlers.append(_CopyHandler(stream, out_stream, req))
            elif name in _TEXT_SUBTITLES and fmt in _TEXT_TARGET:
                converter = _TextConvertHandler(stream, out, _TEXT_TARGET[fmt], req)
                _copy_stream_metadata(stream, converter.out_stream)
                handlers.append(converter)
                notices.append(f"subtitle track {k + 1} ({name}) converted to {converter.codec}")
            else:
                hint = "" if fmt == "matroska" else " (use .mkv)"
                notices.append(f"subtitle track {k + 1} ({name}) not copied: {fmt} cannot "
                               f"carry it{hint}")
    return handlers


def _copy_stream_metadata(src_stream: Any, out_stream: Any) -> None:
    for key in ("language", "title", "handler_name"):
        value = src_stream.metadata.get(key)
        if value:
            out_stream.metadata[key] = value
    disposition = getattr(src_stream, "disposition", None)
    if disposition is not None:
        with contextlib.suppress(AttributeError, TypeError, ValueError):
            out_stream.disposition = disposition


def _copy_metadata(src: Any, out: Any) -> None:
    for key, value in src.metadata.items():
        if key.lower() not in _SKIP_METADATA:
            out.metadata[key] = value


def _source_packets(src: Any, handlers: list[Any], req: MuxRequest) -> Iterator[Timed]:
    """Demux the source once, passing each packet to its stream's handler."""
    by_index = {h.in_stream.index: h for h in handlers}
    if req.start is not None and float(req.start) > 2.0:
        # Jump near the window instead of demuxing everything before it; the handlers filter
        # packets precisely, so landing a bit early is harmless.
        src.seek(int((float(req.start) - 2.0) * 1_000_000), backward=True, any_frame=False)
    for packet in src.demux(*[h.in_stream for h in handlers]):
        handler = by_index.get(packet.stream.index)
        if handler is None:
            continue
        for out_packet in handler.handle(packet):
            yield _packet_time(out_packet), out_packet
        if all(h.done for h in handlers):
            break
    for handler in handlers:
        for out_packet in handler.flush():
            yield _packet_time(out_packet), out_packet


def _packet_time(packet: Any) -> float:
    ts = packet.dts if packet.dts is not None else packet.pts
    return float(ts * packet.time_base) if ts is not None else 0.0
