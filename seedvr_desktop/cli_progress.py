"""Drive a restore job from a terminal: progress bar on stderr, Ctrl-C cancels cleanly.

Shared by `restore`, `render` and `demo`. On a TTY the bar redraws one line; otherwise (logs,
CI, pipes) a plain line is printed every few seconds. The first Ctrl-C asks the pipeline to
stop between chunks (it removes its partial output and keeps finished work for --resume); a
second Ctrl-C interrupts at once.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from seedvr_desktop.engine.base import ProgressEvent
    from seedvr_desktop.engine.job import RestoreJob

EXIT_CANCELLED = 130
_PLAIN_INTERVAL = 5.0  # seconds between lines when stderr is not a terminal
_BAR_WIDTH = 28


def format_duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds < 0:
        return "--:--"
    seconds = int(seconds + 0.5)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class ProgressPrinter:
    """Renders ProgressEvents as a bar (TTY) or as occasional plain lines."""

    def __init__(self, stream: TextIO | None = None, label: str = "") -> None:
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.label = label
        self._last_plain = 0.0
        self._bar_shown = False

    def show(self, event: ProgressEvent) -> None:
        if event.stage == "restore":
            self._progress(event)
        elif event.message:
            self._line(event.message if event.stage != "done" else f"done: {event.message}")

    def _progress(self, e: ProgressEvent) -> None:
        pct = 100.0 * e.fraction
        text = (f"{e.frames_done}/{e.frames_total} frames  {e.fps:5.1f} fps  "
                f"ETA {format_duration(e.eta_seconds)}")
        if self.tty:
            filled = int(_BAR_WIDTH * e.fraction)
            bar = "#" * filled + "-" * (_BAR_WIDTH - filled)
            prefix = f"{self.label} " if self.label else ""
            self.stream.write(f"\r{prefix}[{bar}] {pct:5.1f}%  {text}\x1b[K")
            self.stream.flush()
            self._bar_shown = True
            return
        now = time.monotonic()
        if now - self._last_plain >= _PLAIN_INTERVAL or e.frames_done >= e.frames_total:
            self._last_plain = now
            self._line(f"{pct:5.1f}%  {text}")

    def _line(self, text: str) -> None:
        if self._bar_shown:
            self.stream.write("\n")
            self._bar_shown = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def finish(self) -> None:
        if self._bar_shown:
            self.stream.write("\n")
            self.stream.flush()
            self._bar_shown = False


class _CtrlC:
    """First SIGINT sets the cancel event; the second raises KeyboardInterrupt."""

    def __init__(self, cancel: threading.Event) -> None:
        self.cancel = cancel
        self._previous: object = None

    def __enter__(self) -> _CtrlC:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: object) -> None:
        if self.cancel.is_set():
            raise KeyboardInterrupt
        self.cancel.set()
        sys.stderr.write("\ncancelling after the current chunk (Ctrl-C again to abort)\n")

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)  # type: ignore[arg-type]


def drive(events: Iterator[ProgressEvent], printer: ProgressPrinter) -> str:
    """Consume a job's events, printing them; returns the final stage ("done"/"cancelled")."""
    stage = ""
    try:
        for event in events:
            printer.show(event)
            stage = event.stage
    finally:
        printer.finish()
    return stage


def run_job_with_progress(job: RestoreJob, *, label: str = "",
                          cancel: threading.Event | None = None) -> int:
    """Run one job in the foreground; 0 when done, 130 when cancelled. Errors propagate."""
    from seedvr_desktop.engine.pipeline import run_restore

    cancel = cancel or threading.Event()
    printer = ProgressPrinter(label=label)
    with _CtrlC(cancel):
        stage = drive(run_restore(job, cancel), printer)
    return 0 if stage == "done" else EXIT_CANCELLED
