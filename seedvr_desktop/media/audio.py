"""Audio transcoding for the rare case a stream cannot be copied (or the user asks for it).

Old captures contain audio packets the decoder rejects. Copying keeps them; transcoding must
skip them without pulling the rest of the track earlier, so every decoded frame is placed by
its own timestamp and any gap (a skipped packet, a capture dropout) is filled with silence.
The window [start, end) is cut sample-accurately, unlike packet copy.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from seedvr_desktop.media.mux_request import MuxRequest

log = logging.getLogger(__name__)

# Gaps shorter than this are timestamp rounding, not missing sound (seconds).
_GAP_TOLERANCE = 0.002

# FFmpeg's default channel layout for each channel count (what players assume).
_DEFAULT_LAYOUTS = {1: "mono", 2: "stereo", 3: "3.0", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1",
                    8: "7.1"}


def ordered_layout(layout: Any) -> str | None:
    """Name of the layout to use for `layout` (a PyAV AudioLayout or None) in an output file.

    AVI PCM, WMA and some MOV tracks only say how many channels there are ("2 channels"), not
    which speaker each one feeds. Encoders (AAC) and the MP4 muxer reject such an "unordered"
    layout, so it becomes the default layout for that channel count, which is what players
    assume anyway. None when there is nothing usable (no layout, no channels).
    """
    if layout is None or not layout.nb_channels:
        return None
    if layout.name.endswith("channels"):
        return _DEFAULT_LAYOUTS.get(layout.nb_channels, layout.name)
    return layout.name


def transcode_codec(fmt: str) -> tuple[str, str, int]:
    """(encoder, sample format, frame size) used when audio must be re-encoded for `fmt`.

    Matroska takes lossless FLAC; MP4/MOV get AAC, which every player decodes.
    """
    if fmt == "matroska":
        return "flac", "s16", 4608
    return "aac", "fltp", 1024


class AudioTranscoder:
    """Decode one source audio stream and re-encode it into an output container stream."""

    def __init__(self, in_stream: Any, out: Any, fmt: str, req: MuxRequest) -> None:
        import av

        self.in_stream = in_stream
        dec = in_stream.codec_context
        self.rate = int(dec.sample_rate or 48000)
        layout = ordered_layout(dec.layout) or "stereo"
        self.codec_name, sample_fmt, frame_size = transcode_codec(fmt)
        if self.codec_name == "flac" and dec.format is not None and dec.format.bytes > 2:
            sample_fmt = "s32"  # keep 24/32-bit sources at full depth
        self.out_stream = out.add_stream(self.codec_name, rate=self.rate)
        self.out_stream.codec_context.layout = layout
        self.out_stream.codec_context.format = sample_fmt
        self.out_stream.time_base = Fraction(1, self.rate)
        self.out_stream.codec_context.time_base = Fraction(1, self.rate)
        self._resampler = av.AudioResampler(format=sample_fmt, layout=layout, rate=self.rate,
                                            frame_size=frame_size)
        self._layout = layout
        self._channels = av.AudioLayout(layout).nb_channels
        # Window in output samples (output time 0 = req.origin).
        origin = Fraction(req.origin)
        self._start = None if req.start is None else round((Fraction(req.start) - origin)
                                                           * self.rate)
        self._end = None if req.end is None else round((Fraction(req.end) - origin) * self.rate)
        self._origin = origin
        self._next: int | None = None  # output sample index of the next sample to feed
        self._out_pts: int | None = None  # pts of the next frame leaving the resampler
        self.bad_packets = 0
        self.gaps = 0
        self.done = False

    # -- input side -------------------------------------------------------------------------

    def handle(self, packet: Any) -> list[Any]:
        import av

        if self.done:
            return []
        try:
            frames = self.in_stream.codec_context.decode(packet)
        except av.error.FFmpegError as exc:
            # A damaged packet: skip it; its time span becomes silence below.
            self.bad_packets += 1
            log.debug("skipping undecodable audio packet at %s: %s", packet.pts, exc)
            return []
        out: list[Any] = []
        for frame in frames:
            out.extend(self._push(frame))
        return out

    def flush(self) -> list[Any]:
        import av

        out: list[Any] = []
        try:
            for frame in self.in_stream.codec_context.decode(None):
                out.extend(self._push(frame))
        except av.error.EOFError:
            pass
        except av.error.FFmpegError:
            self.bad_packets += 1
        out.extend(self._resample(None))
        for packet in self.out_stream.encode(None):
            out.append(packet)
        return out

    def notices(self) -> list[str]:
        if not self.bad_packets:
            return []
        return [f"audio track {self.in_stream.index}: {self.bad_packets} damaged packet(s) "
                "replaced by silence"]

    # -- placement ----------------------------------------------------------------------------

    def _push(self, frame: Any) -> list[Any]:
        """Place one decoded frame on the output sample clock, trimming and gap-filling."""
        data = frame.to_ndarray()  # (channels, n) planar or (1, n*channels) packed
        data = _planar(data, frame.format.is_planar, len(frame.layout.channels))
        if frame.pts is not None:
            t = Fraction(frame.pts) * frame.time_base - self._origin
            first = round(t * self.rate)
        else:
            first = self._next if self._next is not None else 0
        if frame.sample_rate and frame.sample_rate != self.rate:
            data = _naive_resample(data, frame.sample_rate, self.rate)
        last = first + data.shape[1]
        lo = max(first, self._start) if self._start is not None else first
        if self._next is not None:
            lo = max(lo, self._next)  # overlapping timestamps: keep the earlier sound
        hi = min(last, self._end) if self._end is not None else last
        if self._end is not None and first >= self._end:
            self.done = True
        if hi <= lo:
            return []
        out: list[Any] = []
        if self._next is not None and lo - self._next > _GAP_TOLERANCE * self.rate:
            self.gaps += 1
            out.extend(self._feed(np.zeros((data.shape[0], lo - self._next), np.float32),
                                  self._next))
        elif self._next is not None:
            lo = self._next  # tiny rounding gap: butt the frames together
            if hi <= lo:
                return out
        chunk = data[:, max(lo - first, 0):hi - first]
        out.extend(self._feed(chunk, lo))
        return out

    def _feed(self, samples: np.ndarray, first: int) -> list[Any]:
        """Queue planar float samples (channels, n) whose first sample sits at `first`."""
        import av

        if self._out_pts is None:
            self._out_pts = first
        channels = self._channels
        if samples.shape[0] != channels:
            samples = _match_channels(samples, channels)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples, np.float32),
                                           format="fltp", layout=self._layout)
        frame.sample_rate = self.rate
        self._next = first + samples.shape[1]
        return self._resample(frame)

    def _resample(self, frame: Any) -> list[Any]:
        packets: list[Any] = []
        for out_frame in self._resampler.resample(frame):
            out_frame.pts = self._out_pts
            out_frame.time_base = Fraction(1, self.rate)
            self._out_pts = (self._out_pts or 0) + out_frame.samples
            packets.extend(self.out_stream.encode(out_frame))
        return packets


def _planar(data: np.ndarray, planar: bool, channels: int) -> np.ndarray:
    """Any PyAV sample array -> float32 (channels, n) in [-1, 1]."""
    if not planar:
        data = data.reshape(-1, channels).T
    if data.dtype == np.float32 or data.dtype == np.float64:
        return data.astype(np.float32, copy=False)
    if data.dtype == np.uint8:
        return (data.astype(np.float32) - 128.0) / 128.0
    return data.astype(np.float32) / float(np.iinfo(data.dtype).max)


def _match_channels(samples: np.ndarray, channels: int) -> np.ndarray:
    if samples.shape[0] > channels:
        return samples[:channels]
    reps = -(-channels // samples.shape[0])
    return np.tile(samples, (reps, 1))[:channels]


def _naive_resample(data: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Linear resampling for the odd stream whose rate changes mid-way (rare in practice)."""
    n = max(1, round(data.shape[1] * dst_rate / src_rate))
    x = np.linspace(0, data.shape[1] - 1, n)
    return np.stack([np.interp(x, np.arange(data.shape[1]), ch) for ch in data])
