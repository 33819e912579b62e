"""Calls from background threads delivered on the GUI thread, without Qt calls off-thread.

Background threads (the decoder, the restore worker, the importer) never call into PySide: they
append `(function, args)` to a locked deque and write one byte to a socket pair; a
`QSocketNotifier` on the GUI thread wakes up, drains the deque and runs the calls there, where
they typically emit the object's public signals. So every signal of the GUI-facing objects is
emitted on the GUI thread and delivered directly, and the plain data (numpy frames, dataclasses)
never crosses a queued Qt connection. PySide6 has had several bugs with signals emitted from
Python threads (crashes, reference-count corruption), and this design sidesteps all of them.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections import deque
from collections.abc import Callable

from PySide6.QtCore import QObject, QSocketNotifier

log = logging.getLogger(__name__)


class Mailbox(QObject):
    """Create on the GUI thread; `post` from any thread."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._calls: deque[tuple[Callable[..., object], tuple]] = deque()
        self._lock = threading.Lock()
        self._armed = False  # a wake-up byte is in flight; later posts need not send another
        self._closed = False
        self._recv, self._send = socket.socketpair()
        self._recv.setblocking(False)
        self._send.setblocking(False)
        self._notifier = QSocketNotifier(self._recv.fileno(), QSocketNotifier.Type.Read, self)
        self._notifier.activated.connect(self._on_notifier_activated)

    def post(self, fn: Callable[..., object], *args: object) -> None:
        """Run `fn(*args)` on the GUI thread soon, in posting order. Pure Python: thread-safe."""
        with self._lock:
            if self._closed:
                return
            self._calls.append((fn, args))
            wake, self._armed = not self._armed, True
        if wake:
            with contextlib.suppress(OSError):  # a full buffer means a wake-up is pending anyway
                self._send.send(b"\x01")

    def drain(self) -> int:
        """Run everything posted so far (GUI thread); returns how many calls ran."""
        try:
            while self._recv.recv(4096):
                pass
        except OSError:  # BlockingIOError: nothing left to read
            pass
        with self._lock:
            calls = list(self._calls)
            self._calls.clear()
            self._armed = False
        for fn, args in calls:
            try:
                fn(*args)
            except Exception:  # one failing receiver must not drop the calls behind it
                log.exception("delivering %s failed", getattr(fn, "__qualname__", fn))
        return len(calls)

    def _on_notifier_activated(self, *_: object) -> None:
        self.drain()

    def close(self) -> None:
        """Stop delivering; calls posted afterwards are dropped."""
        with self._lock:
            self._closed = True
            self._calls.clear()
        self._notifier.setEnabled(False)
        self._recv.close()
        self._send.close()
