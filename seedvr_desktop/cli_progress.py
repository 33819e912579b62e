"""Drive a restore job from a terminal: progress bar on stderr, Ctrl-C cancels cleanly.

Shared by `restore`, `render` and `demo`. On a TTY the bar redraws one line; otherwise (logs,
CI, pipes) a plain line is printed every few seconds. The first Ctrl-C asks the pipeline to
stop between chunks (it removes its partial output and keeps finished work for --resume); a
second Ctrl-C interrupts at once. SIGTERM does the same clean-up and the command exits 143.
Once the output file is being written the job is past the point of cancelling: it finishes the
file and says so.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from seedvr_desktop.engine.base import ProgressEvent
    from seedvr_desktop.engine.job import RestoreJob

EXIT_CANCELLED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM, as a shell reports a process killed by it
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
        if e.message:  # e.g. the heartbeat of a long chunk: "restoring chunk 1/1: 12 s so far"
            text += f"  ({e.message})"
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
    """First SIGINT (or SIGTERM) sets the cancel event; the second raises KeyboardInterrupt.

    `stage` is the job's latest stage: during "finalize" the pipeline no longer looks at the
    cancel event (the frames are all restored, only the file is being put together), so the
    message says the file is being finished instead of promising a cancel."""

    def __init__(self, cancel: threading.Event) -> None:
        self.cancel = cancel
        self.stage = ""
        self.terminated = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> _CtrlC:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: object) -> None:
        if signum == signal.SIGTERM:
            self.terminated = True
        if self.cancel.is_set():
            if self.terminated:
                from seedvr_desktop.errors import Terminated

                raise Terminated
            raise KeyboardInterrupt
        self.cancel.set()
        again = "stop again" if signum == signal.SIGTERM else "Ctrl-C again"
        if self.stage == "finalize":
            text = f"finishing the output file first ({again} to abort and lose it)"
        else:
            text = f"cancelling after the current chunk ({again} to abort)"
        _write(f"\n{text}\n")

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)  # type: ignore[arg-type]
        self._previous = {}


def _write(text: str) -> None:
    """A message on stderr that never fails the job (stderr closed or a broken pipe)."""
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        pass


def drive(events: Iterator[ProgressEvent], printer: ProgressPrinter,
          ctrl_c: _CtrlC | None = None) -> str:
    """Consume a job's events, printing them; returns the final stage ("done"/"cancelled")."""
    stage = ""
    try:
        for event in events:
            if event.stage == "cancelled" and "kept" not in (event.message or ""):
                # Nothing was journaled yet (a clip shorter than one segment, or a stop
                # before the first one closed): say so, rather than a bare "cancelled".
                event = _with_message(event, "cancelled; no finished part to keep, so "
                                      "--resume would start from the beginning")
            printer.show(event)
            stage = event.stage
            if ctrl_c is not None:
                ctrl_c.stage = stage
    finally:
        printer.finish()
    return stage


def _with_message(event: ProgressEvent, message: str) -> ProgressEvent:
    from dataclasses import replace

    return replace(event, message=message)


def run_job_with_progress(job: RestoreJob, *, label: str = "",
                          cancel: threading.Event | None = None,
                          run: Callable[[RestoreJob, threading.Event | None],
                                        Iterator[ProgressEvent]] | None = None) -> int:
    """Run one job in the foreground; 0 when done, 130 when cancelled. Errors propagate."""
    from seedvr_desktop.engine.pipeline import run_restore

    cancel = cancel or threading.Event()
    printer = ProgressPrinter(label=label)
    with _CtrlC(cancel) as ctrl_c:
        stage = drive((run or run_restore)(job, cancel), printer, ctrl_c)
    if stage == "done":
        return 0
    return EXIT_TERMINATED if ctrl_c.terminated else EXIT_CANCELLED
