"""Memory-bounded stores of decoded frames for scrubbing (no Qt, safe from any thread).

Two tiers make scrubbing fast on long-GOP sources where an exact seek may decode hundreds of frames:

* `LruFrameCache` keeps recent full-resolution frames (the exact picture at 1:1), bounded in bytes.
* `ProxyStore` keeps a small JPEG of *every* frame of a clip, filled by a background pass, so any
  frame can be shown at viewer resolution in a few milliseconds while the full-resolution decode
  catches up. JPEG keeps a 10-minute clip in a few hundred megabytes instead of gigabytes.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Hashable

import numpy as np

log = logging.getLogger(__name__)

# Widest proxy first. The proxy is as wide as the viewer shows (the first width at least the
# on-screen width), then narrower until the estimate for the whole clip fits the budget.
PROXY_WIDTHS = (1920, 1280, 960, 640, 480, 320)
DEFAULT_DISPLAY_WIDTH = 960  # until the viewer reports its size
JPEG_QUALITY = 88
# Measured on film-like content: a q88 JPEG is about 1/12 of the raw RGB size.
_JPEG_RATIO = 1 / 12


class LruFrameCache:
    """Least-recently-used frames keyed by any hashable, evicted by total bytes."""

    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        self._items: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> np.ndarray | None:
        with self._lock:
            image = self._items.get(key)
            if image is not None:
                self._items.move_to_end(key)
            return image

    def put(self, key: Hashable, image: np.ndarray) -> None:
        if image.nbytes > self.budget_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            self._items[key] = image
            self._bytes += image.nbytes
            while self._bytes > self.budget_bytes and self._items:
                _, evicted = self._items.popitem(last=False)
                self._bytes -= evicted.nbytes

    def discard_where(self, predicate) -> None:  # predicate(key) -> bool
        with self._lock:
            for key in [k for k in self._items if predicate(k)]:
                self._bytes -= self._items.pop(key).nbytes

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    @property
    def nbytes(self) -> int:
        return self._bytes


def proxy_size(width: int, height: int, frame_count: int, budget_bytes: int,
               display_width: int = DEFAULT_DISPLAY_WIDTH) -> tuple[int, int]:
    """Proxy (w, h) for a clip: no wider than the display needs (never wider than the source),
    narrower where the whole clip would not fit the budget."""
    wanted = min(width, max(1, display_width))
    fitting = [w for w in PROXY_WIDTHS if w >= wanted]
    cap = fitting[-1] if fitting else PROXY_WIDTHS[0]
    for target in (w for w in PROXY_WIDTHS if w <= cap):
        w = min(width, target)
        h = max(2, round(height * w / max(1, width)))
        if w * h * 3 * _JPEG_RATIO * max(1, frame_count) <= budget_bytes:
            return w, h
    w = min(width, PROXY_WIDTHS[-1])
    return w, max(2, round(height * w / max(1, width)))


def downscale(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) -> (h, w, 3) with area averaging (no aliasing on fine film grain)."""
    import cv2

    if (image.shape[1], image.shape[0]) == size:
        return image
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


class ProxyStore:
    """JPEG-compressed low-resolution copies of frames, per media path, under one byte budget."""

    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        self._frames: dict[str, dict[int, bytes]] = {}
        self._sizes: dict[str, tuple[int, int]] = {}
        self._order: OrderedDict[str, None] = OrderedDict()  # media LRU for whole-clip eviction
        self._bytes = 0
        self._lock = threading.Lock()
        self.display_width = DEFAULT_DISPLAY_WIDTH  # on-screen pixels the viewer shows a frame at

    def configure(self, path: str, width: int, height: int, frame_count: int) -> tuple[int, int]:
        """Choose the proxy size of a clip and return it; fixed once a frame is stored (a later
        viewer resize must not mix sizes within one clip)."""
        with self._lock:
            if not self._frames.get(path):
                self._sizes[path] = proxy_size(width, height, frame_count, self.budget_bytes,
                                               self.display_width)
                self._frames[path] = {}
            self._order[path] = None
            self._order.move_to_end(path)
            return self._sizes[path]

    def size_of(self, path: str) -> tuple[int, int] | None:
        return self._sizes.get(path)

    def has(self, path: str, index: int) -> bool:
        frames = self._frames.get(path)
        return frames is not None and index in frames

    def count(self, path: str) -> int:
        return len(self._frames.get(path, ()))

    def put(self, path: str, index: int, image: np.ndarray) -> bool:
        """Store frame `index` (any size; scaled to the proxy size). False when over budget."""
        import cv2

        size = self._sizes.get(path)
        if size is None:
            size = self.configure(path, image.shape[1], image.shape[0], 1)
        small = downscale(image, size)
        ok, encoded = cv2.imencode(
            ".jpg", np.ascontiguousarray(small[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
        )
        if not ok:
            return False
        data = encoded.tobytes()
        with self._lock:
            frames = self._frames.setdefault(path, {})
            if index in frames:
                return True
            self._evict_for(len(data), keep=path)
            if self._bytes + len(data) > self.budget_bytes:
                return False
            frames[index] = data
            self._bytes += len(data)
        return True

    def get(self, path: str, index: int) -> np.ndarray | None:
        """The proxy of frame `index` as (h, w, 3) uint8 RGB, or None."""
        import cv2

        frames = self._frames.get(path)
        data = frames.get(index) if frames is not None else None
        if data is None:
            return None
        bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
        return None if bgr is None else np.ascontiguousarray(bgr[..., ::-1])

    def forget(self, path: str) -> None:
        with self._lock:
            frames = self._frames.pop(path, {})
            self._bytes -= sum(len(b) for b in frames.values())
            self._sizes.pop(path, None)
            self._order.pop(path, None)

    def _evict_for(self, incoming: int, keep: str) -> None:
        """Drop whole least-recently-used clips (never `keep`) until `incoming` fits."""
        for victim in list(self._order):
            if self._bytes + incoming <= self.budget_bytes:
                return
            if victim == keep:
                continue
            frames = self._frames.pop(victim, {})
            self._bytes -= sum(len(b) for b in frames.values())
            self._sizes.pop(victim, None)
            self._order.pop(victim, None)
            log.debug("proxy of %s evicted to make room", victim)

    @property
    def nbytes(self) -> int:
        return self._bytes
