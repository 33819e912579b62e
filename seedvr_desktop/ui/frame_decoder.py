"""The decoder thread behind scrubbing, playback and thumbnails (no Qt; callbacks only).

Why a dedicated thread with a "latest request wins" slot: a drag produces 60 playhead moves a
second and only the newest matters; queueing them would make the picture lag further and further
behind the mouse. Priorities, highest first: the frame under the playhead, thumbnails, then the
background proxy pass that makes later scrubbing instant.

Strategy for the frame under the playhead (sources with long GOPs need hundreds of decodes for
one exact frame):
1. full-resolution cache hit -> done;
2. proxy (small JPEG of every frame, built in the background) -> shown at once; full resolution
   follows when the drag stops or the mouse rests;
3. while dragging without a proxy: the nearest cheap picture (a cached frame or the keyframe of
   the GOP), exact frame once the drag stops;
4. exact decode: continue the open decoder when the target lies ahead in the same GOP, else seek
   to the GOP's keyframe and decode forward, giving up early when a newer request arrives.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from seedvr_desktop.errors import UserError
from seedvr_desktop.ui import media_access
from seedvr_desktop.ui.frame_cache import LruFrameCache, ProxyStore, downscale

log = logging.getLogger(__name__)

SETTLE_SECONDS = 0.15  # a resting mouse during a drag counts as a stop after this long
BACKWARD_CACHE = 12  # frames kept at full size behind an exact target, for stepping back
PROXY_SLICE = 2  # proxy frames built between checks for new requests
MAX_OPEN_MEDIA = 6


@dataclass(frozen=True)
class FrameResult:
    """A picture for the viewer. `exact` means `index == requested` (maybe at proxy size)."""

    path: str
    index: int
    requested: int
    image: np.ndarray  # (H, W, 3) uint8 RGB
    exact: bool
    full_res: bool
    token: int
    latency: float  # seconds from the request to this result


@dataclass
class _Request:
    path: str
    index: int
    dragging: bool
    token: int
    t0: float = field(default_factory=time.perf_counter)


@dataclass
class _Media:
    """Per-file decoder state, touched only by the decoder thread."""

    path: str
    reader: media_access.FrameReader
    keyframes: list[int]
    frame_count: int
    frames: Iterator | None = None  # live forward decode used for exact frames and playback
    next_index: int = -1  # index the live iterator yields next
    proxy_reader: media_access.FrameReader | None = None
    proxy_frames: Iterator | None = None
    proxy_next: int = 0
    proxy_done: bool = False
    thumb_reader: media_access.FrameReader | None = None

    def keyframe_before(self, index: int) -> int:
        pos = bisect.bisect_right(self.keyframes, index) - 1
        return self.keyframes[max(pos, 0)]

    def close(self) -> None:
        for reader in (self.reader, self.proxy_reader, self.thumb_reader):
            if reader is not None:
                try:
                    reader.close()
                except Exception:  # closing a broken file must not kill the thread
                    log.debug("closing reader of %s failed", self.path, exc_info=True)


class FrameDecoder:
    """Owns one thread; every public method is safe to call from any thread."""

    def __init__(
        self,
        on_frame: Callable[[FrameResult], None],
        on_thumbnail: Callable[[str, int, np.ndarray], None] | None = None,
        on_error: Callable[[str, str], None] | None = None,
        on_proxy: Callable[[str, int, int], None] | None = None,
        *,
        cache_bytes: int = 512 << 20,
        proxy_bytes: int = 512 << 20,
    ) -> None:
        self._on_frame = on_frame
        self._on_thumbnail = on_thumbnail or (lambda *_: None)
        self._on_error = on_error or (lambda *_: None)
        self._on_proxy = on_proxy or (lambda *_: None)
        self.cache = LruFrameCache(cache_bytes)
        self.proxies = ProxyStore(proxy_bytes)
        self._thumbs = LruFrameCache(64 << 20)
        self._cond = threading.Condition()
        self._request: _Request | None = None
        self._settle: tuple[_Request, float] | None = None
        self._thumb_queue: deque[tuple[str, int, int]] = deque()
        self._proxy_wanted: list[str] = []
        self._forget: list[str] = []
        self._stop = False
        self._token = 0
        self._media: OrderedDict[str, _Media] = OrderedDict()
        self._thread = threading.Thread(target=self._run, name="frame-decoder", daemon=True)
        self._thread.start()

    # ----------------------------------------------------------------- public, any thread
    def request(self, path: str, index: int, *, dragging: bool = False) -> int:
        """Ask for frame `index`; replaces any request not yet started. Returns its token."""
        with self._cond:
            self._token += 1
            self._request = _Request(str(path), int(index), dragging, self._token)
            self._settle = None
            self._cond.notify()
            return self._token

    def request_thumbnail(self, path: str, index: int, height: int) -> None:
        with self._cond:
            self._thumb_queue.append((str(path), int(index), int(height)))
            self._cond.notify()

    def set_display_size(self, width: int, height: int) -> None:
        """On-screen size (device pixels) of the viewer: proxies of clips opened from now on are
        made that wide (budget permitting), so the exact frame after a stop is shown from the
        proxy at display resolution while full resolution is still decoding."""
        self.proxies.display_width = max(1, int(width))

    def build_proxy(self, path: str) -> None:
        """Start (or resume) the background proxy pass for `path`, most recent first."""
        with self._cond:
            path = str(path)
            if path in self._proxy_wanted:
                self._proxy_wanted.remove(path)
            self._proxy_wanted.insert(0, path)
            self._cond.notify()

    def forget(self, path: str) -> None:
        """Drop everything held for `path` (file removed from the project or changed)."""
        with self._cond:
            self._forget.append(str(path))
            if str(path) in self._proxy_wanted:
                self._proxy_wanted.remove(str(path))
            self._cond.notify()
        self.cache.discard_where(lambda key: key[0] == str(path))
        self.proxies.forget(str(path))

    def close(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(timeout)

    def is_busy(self) -> bool:
        with self._cond:
            return self._request is not None or self._settle is not None

    # ----------------------------------------------------------------- decoder thread
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._has_work_locked():
                    timeout = None
                    if self._settle is not None:
                        timeout = max(0.0, self._settle[1] - time.perf_counter())
                    self._cond.wait(timeout)
                if self._stop:
                    break
                forget, self._forget = self._forget, []
                request, self._request = self._request, None
                settled = None
                if request is None and self._settle and self._settle[1] <= time.perf_counter():
                    settled, self._settle = self._settle[0], None
                thumb = None
                if request is None and settled is None and self._thumb_queue:
                    thumb = self._thumb_queue.popleft()
                proxy_path = self._proxy_wanted[0] if self._proxy_wanted else None
            job = request or settled
            if job is not None:
                job_path = job.path
            else:
                job_path = thumb[0] if thumb is not None else proxy_path or ""
            try:
                for path in forget:
                    self._close_media(path)
                if request is not None:
                    self._serve(request)
                elif settled is not None:
                    settled.dragging = False
                    self._serve(settled)
                elif thumb is not None:
                    self._serve_thumbnail(*thumb)
                elif proxy_path is not None:
                    self._proxy_step(proxy_path)
            except Exception as exc:  # a damaged file must not take the thread down
                # A user-fixable problem (missing or unreadable file) is no bug: no traceback.
                log.warning("decoding %s failed: %s", job_path, exc,
                            exc_info=not isinstance(exc, UserError))
                self._on_error(job_path, str(exc))
                if request is None and settled is None and thumb is None and proxy_path:
                    self._drop_proxy_work(proxy_path)
        for media in self._media.values():
            media.close()
        self._media.clear()

    def _has_work_locked(self) -> bool:
        settle_due = self._settle is not None and self._settle[1] <= time.perf_counter()
        return bool(
            self._stop
            or self._request is not None
            or settle_due
            or self._forget
            or self._thumb_queue
            or (self._proxy_wanted and self._settle is None)
        )

    def _newer_request(self) -> bool:
        with self._cond:
            return self._request is not None or self._stop

    def _emit(self, req: _Request, index: int, image: np.ndarray, full_res: bool) -> None:
        self._on_frame(
            FrameResult(
                path=req.path,
                index=index,
                requested=req.index,
                image=image,
                exact=index == req.index,
                full_res=full_res,
                token=req.token,
                latency=time.perf_counter() - req.t0,
            )
        )

    def _schedule_settle(self, req: _Request) -> None:
        with self._cond:
            if self._request is None:
                self._settle = (req, time.perf_counter() + SETTLE_SECONDS)

    def _open(self, path: str) -> _Media:
        media = self._media.get(path)
        if media is not None:
            self._media.move_to_end(path)
            return media
        reader = media_access.open_reader(path)
        keyframes = media_access.keyframe_indices(path)
        media = _Media(path, reader, keyframes, max(1, int(reader.frame_count)))
        self.proxies.configure(path, reader.width, reader.height, media.frame_count)
        self._media[path] = media
        while len(self._media) > MAX_OPEN_MEDIA:
            _, old = self._media.popitem(last=False)
            old.close()
        return media

    def _close_media(self, path: str) -> None:
        media = self._media.pop(path, None)
        if media is not None:
            media.close()

    def _serve(self, req: _Request) -> None:
        media = self._open(req.path)
        req.index = min(max(req.index, 0), media.frame_count - 1)
        cached = self.cache.get((req.path, req.index))
        if cached is not None:
            self._emit(req, req.index, cached, True)
            return
        proxy = self.proxies.get(req.path, req.index)
        if proxy is not None:
            self._emit(req, req.index, proxy, False)
            if req.dragging:
                self._schedule_settle(req)
                return
        elif req.dragging:
            self._serve_cheap(media, req)
            return
        image = self._decode_exact(media, req.index)
        if image is not None:
            self._emit(req, req.index, image, True)

    def _serve_cheap(self, media: _Media, req: _Request) -> None:
        """While dragging: the closest already-decoded frame at or before the target, else the
        GOP's keyframe (one decode), then the exact frame once the mouse rests."""
        key = media.keyframe_before(req.index)
        for index in range(req.index, key - 1, -1):
            image = self.cache.get((req.path, index))
            if image is not None:
                self._emit(req, index, image, True)
                break
        else:
            media.frames = media.reader.frames(key)
            media.next_index = key
            frame = next(media.frames, None)
            if frame is None:
                return
            media.next_index = frame.index + 1
            self.cache.put((req.path, frame.index), frame.image)
            self._emit(req, frame.index, frame.image, True)
            if frame.index == req.index:
                return
        self._schedule_settle(req)

    def _decode_exact(self, media: _Media, index: int) -> np.ndarray | None:
        key = media.keyframe_before(index)
        if media.frames is None or not (key <= media.next_index <= index):
            # The reader still decodes from the keyframe but converts to RGB only from `first`:
            # the pictures before it would be thrown away anyway (saves ~15% of a long-GOP seek).
            first = max(key, index - BACKWARD_CACHE)
            media.frames = media.reader.frames(first)
            media.next_index = first
        assert media.frames is not None
        for frame in media.frames:
            media.next_index = frame.index + 1
            if frame.index >= index - BACKWARD_CACHE:
                self.cache.put((media.path, frame.index), frame.image)
            if frame.index >= index:
                return frame.image
            if self._newer_request():
                return None  # the iterator stays where it is: still useful for the next target
        media.frames = None
        return None

    def _serve_thumbnail(self, path: str, index: int, height: int) -> None:
        cached = self._thumbs.get((path, index, height))
        if cached is None:
            image = self.proxies.get(path, index)
            if image is None:
                media = self._open(path)
                index = min(max(index, 0), media.frame_count - 1)
                if media.thumb_reader is None:
                    media.thumb_reader = media_access.open_reader(path)
                image = media.thumb_reader.read(media.keyframe_before(index)).image
            width = max(2, round(image.shape[1] * height / max(1, image.shape[0])))
            cached = downscale(image, (width, height))
            self._thumbs.put((path, index, height), cached)
        self._on_thumbnail(path, index, cached)

    def _proxy_step(self, path: str) -> None:
        media = self._open(path)
        if media.proxy_done:
            self._drop_proxy_work(path)
            return
        if media.proxy_frames is None:
            while self.proxies.has(path, media.proxy_next):
                media.proxy_next += 1
            if media.proxy_next >= media.frame_count:
                self._finish_proxy(media)
                return
            media.proxy_reader = media.proxy_reader or media_access.open_reader(path)
            media.proxy_frames = media.proxy_reader.frames(media.proxy_next)
        for _ in range(PROXY_SLICE):
            frame = next(media.proxy_frames, None)
            if frame is None:
                self._finish_proxy(media)
                return
            media.proxy_next = frame.index + 1
            if not self.proxies.has(path, frame.index) and not self.proxies.put(
                path, frame.index, frame.image
            ):
                log.info("proxy budget full; %s is proxied up to frame %d", path, frame.index)
                self._finish_proxy(media)
                return
        if media.proxy_next % 48 < PROXY_SLICE:
            self._on_proxy(path, self.proxies.count(path), media.frame_count)

    def _finish_proxy(self, media: _Media) -> None:
        media.proxy_done = True
        media.proxy_frames = None
        if media.proxy_reader is not None:
            media.proxy_reader.close()
            media.proxy_reader = None
        self._drop_proxy_work(media.path)
        self._on_proxy(media.path, self.proxies.count(media.path), media.frame_count)

    def _drop_proxy_work(self, path: str) -> None:
        with self._cond:
            if path in self._proxy_wanted:
                self._proxy_wanted.remove(path)
