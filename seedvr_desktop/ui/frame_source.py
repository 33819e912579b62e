"""Qt face of the decoder thread: its results become signals emitted on the GUI thread.

`FrameDecoder` calls back on its own thread; those callbacks only post to a `Mailbox`, which runs
the signal emissions on the GUI thread, so slots may build QImages and no Qt call is made from
the decoder thread.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, Signal

from seedvr_desktop.ui.frame_decoder import FrameDecoder, FrameResult
from seedvr_desktop.ui.mailbox import Mailbox

__all__ = ["FrameResult", "FrameSource"]


class FrameSource(QObject):
    """Asynchronous frames and thumbnails for the viewer, timeline and media bin."""

    frame_ready = Signal(object)  # FrameResult
    thumbnail_ready = Signal(str, int, object)  # path, frame index, (h, w, 3) uint8
    proxy_progressed = Signal(str, int, int)  # path, frames proxied, frame count
    failed = Signal(str, str)  # path, message

    def __init__(
        self,
        parent: QObject | None = None,
        *,
        cache_bytes: int = 512 << 20,
        proxy_bytes: int = 512 << 20,
    ) -> None:
        super().__init__(parent)
        self._latest_token = 0
        self._mailbox = Mailbox(self)
        post = self._mailbox.post
        self._decoder = FrameDecoder(
            lambda result: post(self.frame_ready.emit, result),
            lambda path, index, image: post(self.thumbnail_ready.emit, path, index, image),
            lambda path, message: post(self.failed.emit, path, message),
            lambda path, done, total: post(self.proxy_progressed.emit, path, done, total),
            cache_bytes=cache_bytes,
            proxy_bytes=proxy_bytes,
        )

    @property
    def decoder(self) -> FrameDecoder:
        return self._decoder

    @property
    def latest_token(self) -> int:
        return self._latest_token

    def request(self, path: str, index: int, *, dragging: bool = False) -> int:
        self._latest_token = self._decoder.request(path, index, dragging=dragging)
        return self._latest_token

    def request_thumbnail(self, path: str, index: int, height: int = 72) -> None:
        self._decoder.request_thumbnail(path, index, height)

    def set_display_size(self, width: int, height: int) -> None:
        self._decoder.set_display_size(width, height)

    def build_proxy(self, path: str) -> None:
        self._decoder.build_proxy(path)

    def cached_frame(self, path: str, index: int) -> np.ndarray | None:
        """A full-resolution frame already in the cache (never decodes)."""
        return self._decoder.cache.get((str(path), int(index)))

    def forget(self, path: str) -> None:
        self._decoder.forget(path)

    def close(self) -> None:
        self._decoder.close()
        self._mailbox.close()

    def is_current(self, result: FrameResult) -> bool:
        """Whether a result answers the newest request (older ones are stale after a seek)."""
        return result.token == self._latest_token
