"""Streamed, frame-accurate decoding of the probed video stream into RGB arrays.

The reader walks the timeline found by the probe (one presentation timestamp per picture) and
matches decoded pictures to it by timestamp. That single idea gives every guarantee the pipeline
needs:
- pictures come out in presentation order (the decoder's output order, never packet order) and
  each keeps its own timestamp, so AVI files with dropped ("null") frames and variable-frame-rate
  phone clips keep their timing; timestamps that repeat or step back by one (packed B-frames,
  some MPEG-PS muxers) are recognised as such and do not reorder or drop pictures;
- when the container's timestamps disagree with the decoder's output order (a muxer that wrote
  wrong composition offsets, or an H.264 file with a damaged first IDR), the decoder's order is
  kept and the pictures are re-timed from the container's timeline (its sorted timestamps): a
  picture the decoder returns is never dropped or replaced, only reordered timestamps are;
- a picture that never decodes (corrupt packet, truncated tail) leaves a hole in the timeline; the
  hole is filled with the last good picture, marked damaged and counted, so the output keeps the
  frame count and timing of the input. Frame threads (fast, the default) lose the pictures still
  queued when the stream ends in damage (draining fails, or ends quietly without them); only
  when holes are left at the end is the last GOP decoded again with slice threads, so good
  pictures there are not mistaken for holes;
- read(i) is exactly the i-th picture of a full decode: we seek to a keyframe before it, decode
  forward, and if the seek landed after the target (open GOPs, lying indexes) seek earlier.
Memory stays flat: only a few decoded pictures (the look-ahead window) are held at a time.
"""

from __future__ import annotations

import bisect
import logging
import os
import threading
import weakref
from collections import Counter, deque
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av
import cv2
import numpy as np
from av.video.reformatter import VideoReformatter

from seedvr_desktop.errors import MediaError
from seedvr_desktop.media.colors import SWSCALE_MATRIX, matrix_for_rgb
from seedvr_desktop.media.probe import MediaInfo, scan

log = logging.getLogger(__name__)

# Decoded pictures held back so that a timestamp jump can be told apart from swapped timestamps:
# a jump is a hole only if no picture in the window carries the timestamp we are waiting for.
_LOOKAHEAD = 4
# How far before the target retried seeks go, in seconds (the last resort decodes from the start).
_SEEK_BACKOFF: tuple[float, ...] = (2.0, 10.0, 60.0)
# Decoders that keep presentation timestamps right after a seek into an open GOP.
_EXACT_TIMESTAMP_CODECS = frozenset({"h264", "hevc", "vp8", "vp9", "av1"})
# read(i) keeps decoding forward instead of seeking when the target is this close.
_READ_AHEAD = 32
# How many slots back a picture whose own timestamp was given to an earlier picture may still
# arrive (H.264 allows at most 16 pictures of reordering); older debts are forgotten.
_REORDER_SPAN = 16


@dataclass(frozen=True)
class VideoFrame:
    """One picture of the source, in presentation order."""

    index: int  # 0-based index of the picture in presentation order
    time: Fraction  # presentation time in seconds (the stream's own timestamps, offset kept)
    image: np.ndarray  # (H, W, 3) RGB uint8, or uint16 for >8-bit sources with high_bit_depth
    damaged: bool  # True: this picture did not decode; the last good picture is repeated


class SourceChanged(MediaError):
    """The file being read is no longer the one the run started on: another file was moved
    over its path, it was deleted, or it got shorter."""


@dataclass(frozen=True)
class FileIdentity:
    """Which file a path named when a run began (device, inode) and how long it was then.

    A capture still being written keeps its identity while it grows; another file moved over
    the path (a new inode), a deleted file or one cut shorter does not."""

    device: int
    inode: int
    size: int

    @classmethod
    def of(cls, path: str | os.PathLike) -> FileIdentity | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        return cls(st.st_dev, st.st_ino, st.st_size)

    def change(self, now: FileIdentity | None) -> str:
        """How `now` (the path's identity today) differs from this one; "" if it does not."""
        if now is None:
            return "was moved or deleted"
        if (now.device, now.inode) != (self.device, self.inode):
            return "was replaced by another file"
        if now.size < self.size:
            return f"got shorter ({self.size} -> {now.size} bytes)"
        return ""


class _Overshoot(Exception):
    """The seek landed after the wanted picture; try again from earlier."""


class _UnreliableSeek(_Overshoot):
    """After a seek the demuxer invents timestamps the file does not have (MPEG-PS with its
    parser resynchronising mid-packet): seeking cannot be trusted in this file."""


@dataclass
class _Session:
    """How one decode pass went, as far as the timeline matching needs to know."""

    threads: str = "AUTO"  # FFmpeg thread_type of the decoder
    drain_failed: bool = False  # draining the decoder at the end raised (logged)


@dataclass
class _Ledger:
    """Timestamps that pictures carried out of step with the decoder's output order.

    The decoder's order is kept, so a picture placed on slot k whose timestamp is not pts[k]
    leaves pts[k] owed (the picture carrying it is still to come) unless an earlier picture
    already carried it. A later picture with an owed timestamp is then known to be a real one
    arriving late, not pre-roll or a duplicate, and takes the next slot instead of being dropped.
    """

    owed: Counter[int] = field(default_factory=Counter)
    ahead: Counter[int] = field(default_factory=Counter)  # carried before their slot came

    def place(self, slot_key: int, key: int | None) -> None:
        """Record that the picture carrying `key` went to the slot whose timestamp is slot_key."""
        if key is None or key == slot_key:
            return
        if self.ahead[slot_key]:
            self.ahead[slot_key] -= 1
        else:
            self.owed[slot_key] += 1
        if self.owed[key]:
            self.owed[key] -= 1
        else:
            self.ahead[key] += 1

    def forget_before(self, ts: int) -> None:
        """Drop debts older than any reordering the codecs allow (lost pictures, repeats)."""
        for counter in (self.owed, self.ahead):
            for k in [k for k, n in counter.items() if k < ts or n <= 0]:
                del counter[k]


class VideoReader:
    """Decode the main video stream of a file as RGB frames (context manager)."""

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        apply_rotation: bool = True,
        apply_sar: bool = False,
        high_bit_depth: bool = False,
        threads: int = 0,
    ) -> None:
        # Taken before the scan: what the timeline below describes is this file.
        self.identity = FileIdentity.of(path)
        result = scan(path)
        self.info: MediaInfo = result.info
        video = self.info.video
        if video is None:
            raise MediaError(f"{self.info.path.name} has no video stream")
        self._video = video
        self._pts: tuple[int, ...] = result.pts
        self._keys: tuple[int, ...] = result.keyframe_pts
        self._tb = video.time_base
        self.frame_count: int = len(self._pts)
        self._threads = threads
        self._rotation = video.rotation if apply_rotation else 0
        sar = video.sample_aspect_ratio if apply_sar else Fraction(1)
        # Size after the aspect correction, before the rotation: (width, height).
        self._unrotated = (max(1, round(video.width * sar)), video.height)
        self._format = "rgb48le" if high_bit_depth and video.bit_depth > 8 else "rgb24"
        self.dtype = np.uint16 if self._format == "rgb48le" else np.uint8
        # YUV->RGB matrix: the tagged one, else what players (and our writer) assume for the
        # size: BT.709 from 720 lines up, BT.601 below. swscale alone would use BT.601 always.
        self._matrix = SWSCALE_MATRIX.get(matrix_for_rgb(video.color, video.height))
        w, h = self._unrotated
        self.width, self.height = (h, w) if self._rotation in (90, 270) else (w, h)
        self._damaged: set[int] = set()
        self._live: weakref.WeakSet[Any] = weakref.WeakSet()
        self._local = threading.local()
        self._seek_ok = True  # cleared when a seek in this file produced foreign timestamps
        self._cursor: Iterator[VideoFrame] | None = None
        self._cursor_next = 0

    # ------------------------------------------------------------------ public API

    @property
    def damaged_frames(self) -> int:
        """Distinct pictures found undecodable so far (each repeated the last good one)."""
        return len(self._damaged)

    @property
    def damaged_indices(self) -> list[int]:
        return sorted(self._damaged)

    def frame_times(self) -> list[Fraction]:
        """Presentation time (s) of every picture, from the demux pass (no decoding)."""
        tb = self._tb
        return [p * tb for p in self._pts]

    def frames(self, start: int = 0, stop: int | None = None) -> Iterator[VideoFrame]:
        """Pictures start..stop-1 in presentation order; every index is yielded exactly once."""
        n = self.frame_count
        stop = n if stop is None else min(stop, n)
        if not 0 <= start <= n:
            raise IndexError(f"start {start} outside 0..{n}")
        gen = self._frames(start, stop)
        self._live.add(gen)
        return gen

    def read(self, index: int) -> VideoFrame:
        """The index-th picture, identical to the index-th of a full decode (accurate seek)."""
        if not 0 <= index < self.frame_count:
            raise IndexError(f"frame {index} outside 0..{self.frame_count - 1}")
        if self._cursor is None or not self._cursor_reaches(index):
            self._close_cursor()
            self._cursor = self.frames(index)
            self._cursor_next = index
        for vf in self._cursor:
            self._cursor_next = vf.index + 1
            if vf.index == index:
                return vf
        raise MediaError(f"frame {index} of {self.info.path.name} could not be read")

    def check_source(self) -> None:
        """Raise SourceChanged when the path no longer names the file this reader scanned.

        Called before every (re)open of the file and by long runs between chunks: frames of
        another file must never be matched against this file's timeline, and sound or
        subtitles of another file never muxed with its pictures."""
        if self.identity is None:
            return
        change = self.identity.change(FileIdentity.of(self.info.path))
        if change:
            raise SourceChanged(f"{self.info.path.name} {change} while it was being read")

    def close(self) -> None:
        """Stop every running frame iterator and release the decoders."""
        self._close_cursor()
        for gen in list(self._live):
            gen.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ decoding

    def _cursor_reaches(self, index: int) -> bool:
        """Decode forward from the live cursor only if no keyframe lies between (else seek)."""
        nxt = self._cursor_next
        if index < nxt or nxt >= self.frame_count:
            return False
        if index - nxt <= _READ_AHEAD:
            return True
        lo, hi = self._pts[nxt], self._pts[index]
        return bisect.bisect_right(self._keys, hi) == bisect.bisect_right(self._keys, lo)

    def _close_cursor(self) -> None:
        if self._cursor is not None:
            self._cursor.close()  # type: ignore[attr-defined]
            self._cursor = None

    def _open(self, thread_type: str = "AUTO") -> tuple[Any, Any]:
        self.check_source()
        try:
            container = av.open(os.fspath(self.info.path), metadata_errors="replace")
        except av.FFmpegError as exc:
            raise MediaError(f"cannot open {self.info.path.name}: {exc}") from exc
        stream = container.streams.video[_stream_position(container, self._video.index)]
        cc = stream.codec_context
        cc.thread_type = thread_type
        cc.thread_count = self._threads
        return container, stream

    def _seek_targets(self, start: int) -> list[int | None]:
        """Seek timestamps to try, best first; None means decode from the beginning.

        The first try is the keyframe before the target. Decoders of older codecs (MPEG-1/2,
        MPEG-4 Part 2, VC-1) drop the leading B-frames of an open GOP after a seek and then
        attach the wrong timestamps to the next few pictures, so for them we start one GOP
        earlier and let those pictures pass as pre-roll.
        """
        if start == 0 or not self._seek_ok:
            return [None]
        target = self._pts[start]
        k = bisect.bisect_right(self._keys, target) - 1
        if self._video.codec not in _EXACT_TIMESTAMP_CODECS:
            k -= 1
        out: list[int | None] = []
        if k >= 0:
            out.append(self._keys[k])
        for back in _SEEK_BACKOFF:
            ts = target - round(Fraction(back) / self._tb)
            if out and out[-1] is not None and ts >= out[-1]:
                continue
            if ts <= self._pts[0]:
                break
            out.append(ts)
        out.append(None)
        return out

    def _frames(self, start: int, stop: int, *, thread_type: str = "AUTO",
                fallback: Any = None) -> Iterator[VideoFrame]:
        """Pictures start..stop-1 of one decode pass (seeking first when start > 0).

        `fallback` is the picture holes repeat until this pass decodes a good one (the last
        good picture before `start`, when re-decoding a tail); `thread_type` the decoder's.
        """
        if start >= stop:
            return
        targets = self._seek_targets(start)
        for attempt, target in enumerate(targets):
            final = attempt == len(targets) - 1
            session = _Session(thread_type)
            container, stream = self._open(thread_type)
            try:
                if target is not None:
                    try:
                        container.seek(target, stream=stream, backward=True, any_frame=False)
                    except av.FFmpegError as exc:
                        log.debug("seek to %s failed (%s); trying earlier", target, exc)
                        continue
                try:
                    yield from self._match(container, stream, start, stop, target is None, final,
                                           session, fallback)
                    return
                except _UnreliableSeek:
                    log.info("%s: timestamps after a seek do not match the file; decoding from "
                             "the start instead", self.info.path.name)
                    self._seek_ok = False
                    yield from self._frames(start, stop, thread_type=thread_type,
                                            fallback=fallback)
                    return
                except _Overshoot:
                    log.debug("seek for frame %d landed late; retrying earlier", start)
            finally:
                container.close()

    def _decoded(
        self, container: Any, stream: Any, session: _Session
    ) -> Iterator[tuple[int | None, Any, list[int | None]]]:
        """(pts, av frame, pts of the next few pictures) in decoder output order; decode and
        demux errors are logged and skipped (the timeline notices the missing pictures)."""
        window: deque[tuple[int | None, Any]] = deque()
        for frame in _raw_frames(container, stream, session):
            window.append((frame.pts if frame.pts is not None else frame.dts, frame))
            if len(window) > _LOOKAHEAD:
                key, frm = window.popleft()
                yield key, frm, [k for k, _ in window]
        while window:
            key, frm = window.popleft()
            yield key, frm, [k for k, _ in window]

    def _match(self, container: Any, stream: Any, start: int, stop: int, from_start: bool,
               final: bool, session: _Session, fallback: Any = None) -> Iterator[VideoFrame]:
        """Walk the timeline from `start`, filling holes with the last good picture."""
        pts = self._pts
        n = len(pts)
        pos: int | None = 0 if from_start else None
        last_good: Any = fallback  # av frame (pre-roll) or converted ndarray
        last_image: np.ndarray | None = None
        leading: list[int] = []  # damaged indices seen before any good picture

        def emit_damaged(i: int) -> Iterator[VideoFrame]:
            nonlocal last_image
            if i < start:
                return
            if last_image is None and last_good is not None:
                last_image = self._convert(last_good)
            if last_image is None:
                leading.append(i)
                return
            self._damaged.add(i)
            yield VideoFrame(i, pts[i] * self._tb, last_image.copy(), True)

        placed = False  # whether a picture of this decode session sits on the timeline yet
        ledger = _Ledger()
        for key, frame, upcoming in self._decoded(container, stream, session):
            if pos is None:
                # First picture after a seek: where on the timeline did we land?
                k = start if key is None else bisect.bisect_left(pts, key)
                if key is not None and (k >= n or pts[k] != key):
                    raise _UnreliableSeek
                if k > start and not final:
                    raise _Overshoot
                pos = min(k, start)
            if pos >= stop:
                return
            ledger.forget_before(pts[max(0, min(pos, n - 1) - _REORDER_SPAN)])
            k = _locate(pts, key, pos, upcoming, placed, ledger.owed)
            if k < 0:
                continue  # pre-roll of an open GOP, or a repeated timestamp
            if k > pos and len(upcoming) < _LOOKAHEAD and session.threads != "SLICE":
                break  # a hole among the last pictures: the tail re-decode below decides it
            for i in range(pos, min(k, stop)):
                yield from emit_damaged(i)
            if k >= stop:
                return
            ledger.place(pts[k], key)
            pos = k + 1
            placed = True
            if frame.is_corrupt:
                yield from emit_damaged(k)
                continue
            if k < start:
                last_good, last_image = frame, None  # convert only if a hole needs it
                continue
            image = self._convert(frame)
            last_good, last_image = image, image
            for i in leading:
                self._damaged.add(i)
                yield VideoFrame(i, pts[i] * self._tb, image.copy(), True)
            leading.clear()
            yield VideoFrame(k, pts[k] * self._tb, image, False)
        if pos is None:
            if not final:
                raise _Overshoot
            pos = start
        if pos < stop and session.threads != "SLICE":
            # The holes left at the end may be pictures frame threads still held when the
            # stream ended in damage: draining can fail, or end quietly without them. Decode
            # from the key frame before them again, with threads that hold none back (one GOP,
            # and only for files with holes at the end). Slots still waiting for a first good
            # picture (`leading`) are redone too.
            first = leading[0] if leading else pos
            log.debug("%d picture(s) missing at the end (drain failed: %s); re-decoding from "
                      "frame %d with slice threads", stop - pos, session.drain_failed, first)
            held = last_image if last_image is not None else last_good
            yield from self._frames(first, stop, thread_type="SLICE", fallback=held)
            return
        for i in range(pos, stop):
            yield from emit_damaged(i)
        if leading:  # nothing good from here on, and nothing before to repeat
            if not final:
                raise _Overshoot
            raise MediaError(f"{self.info.path.name}: no picture could be decoded")

    def _convert(self, frame: Any) -> np.ndarray:
        """RGB array of a decoded picture, with the aspect correction and rotation applied.

        The single conversion point: subclasses (the pass-through reader) override it to yield
        something else than RGB arrays; it must return `frame` unchanged when given its own
        output back, and the result must have a `copy()`.

        One swscale pass straight into the RGB layout numpy views without copying. The range
        comes from the frame; the matrix from the stream's tags or the size-based guess that the
        writer also makes, so an untagged source round-trips without a colour shift.
        """
        if isinstance(frame, np.ndarray):
            return frame
        sws = getattr(self._local, "sws", None)
        if sws is None:  # one scaler per thread: iterators may run in worker threads
            sws = self._local.sws = VideoReformatter()
        rgb = sws.reformat(frame, format=self._format,
                           # PyAV takes the colourspace by name too; its stub says int only
                           src_colorspace=self._matrix,  # type: ignore[arg-type]
                           ).to_ndarray()  # (h, w, 3)
        w, h = self._unrotated
        if rgb.shape[1] != w or rgb.shape[0] != h:
            shrink = rgb.shape[1] > w or rgb.shape[0] > h
            rgb = cv2.resize(rgb, (w, h),
                             interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
        if self._rotation == 90:
            rgb = cv2.rotate(rgb, cv2.ROTATE_90_CLOCKWISE)
        elif self._rotation == 180:
            rgb = cv2.rotate(rgb, cv2.ROTATE_180)
        elif self._rotation == 270:
            rgb = cv2.rotate(rgb, cv2.ROTATE_90_COUNTERCLOCKWISE)
        return rgb


def _locate(pts: tuple[int, ...], key: int | None, pos: int,
            upcoming: Sequence[int | None] = (), placed: bool = True,
            owed: Collection[int] = ()) -> int:
    """Timeline slot of a decoded picture with timestamp `key` when slot `pos` is next; -1 drops it.

    - exact match: that slot;
    - an earlier timestamp that is `owed` (an earlier picture took its slot because the
      container's timestamps disagree with the decoder's order): a real picture arriving late,
      so the next slot; the decoder's order wins and the timeline re-times it;
    - a timestamp equal to or just after the previous slot's (repeated or stepped back by one):
      the decoder's order is right and the timestamp wrong, so it is the next picture;
    - anything earlier: pre-roll after a seek (or a duplicate), dropped;
    - a later timestamp: a hole (the pictures in between never decoded), unless a picture in the
      look-ahead carries the awaited timestamp, which means the timestamps are merely swapped;
      pictures in the look-ahead stamped inside the gap shrink the hole by one slot each;
    - a later timestamp that comes again in the look-ahead, after earlier ones, more often
      than the timeline has slots for it: a stray extra picture, dropped. MPEG-4 Part 2
      decoders emit one ahead of its twin when a key frame is damaged; placing it would make
      the twin look like a repeat and put every later picture one slot late;
    - no timestamp, or one the timeline does not know: the next picture.
    """
    n = len(pts)
    if pos >= n:
        return n
    if key is None:
        return pos
    t = pts[pos]
    if key == t:
        return pos
    if key < t:
        if placed and key in owed:
            return pos
        return pos if placed and pos > 0 and key >= pts[pos - 1] else -1
    if any(u is not None and u <= t for u in upcoming):
        return pos
    if key in upcoming and any(u is not None and u < key for u in upcoming):
        slots = bisect.bisect_right(pts, key, pos) - bisect.bisect_left(pts, key, pos)
        if slots <= list(upcoming).count(key):
            return -1
    k = bisect.bisect_left(pts, key, pos)
    if k < n and pts[k] == key:
        # Pictures still to come stamped between the awaited timestamp and this one fill slots
        # of the gap themselves (timestamps out of decoder order): only the rest are holes.
        coming = {u for u in upcoming if u is not None and t < u < key and _on_timeline(pts, u)}
        return max(pos, k - len(coming))
    return pos


def _on_timeline(pts: tuple[int, ...], key: int) -> bool:
    i = bisect.bisect_left(pts, key)
    return i < len(pts) and pts[i] == key


def _raw_frames(container: Any, stream: Any, session: _Session) -> Iterator[Any]:
    """Every decodable picture in decoder order; bad packets and a broken tail are skipped.

    Draining (the empty packet at the end) stops at the first error, and PyAV offers no way to
    fetch the pictures still queued behind it; `session.drain_failed` records that loss.
    """
    try:
        for packet in container.demux(stream):
            try:
                yield from packet.decode()
            except av.FFmpegError as exc:
                if packet.size == 0:
                    session.drain_failed = True
                log.debug("undecodable packet at pts %s: %s", packet.pts, exc)
        return
    except av.FFmpegError as exc:
        log.warning("demuxing stopped early: %s", exc)
    try:  # the demuxer gave up before its final flush packet: drain the decoder ourselves
        yield from stream.codec_context.decode(None)
    except av.FFmpegError as exc:
        session.drain_failed = True
        log.debug("flushing the decoder failed: %s", exc)


def _stream_position(container: Any, index: int) -> int:
    for pos, stream in enumerate(container.streams.video):
        if stream.index == index:
            return pos
    raise MediaError("the video stream disappeared between probe and decode")


def time_to_frame_index(times: list[Fraction], t: float) -> int:
    """Index of the picture on screen at time t (s): the last one starting at or before t.

    Clamped to the valid range; a microsecond of slack absorbs float rounding of exact times.
    """
    if not times:
        raise ValueError("no frames")
    k = bisect.bisect_right(times, Fraction(t) + Fraction(1, 1_000_000)) - 1
    return min(max(k, 0), len(times) - 1)
