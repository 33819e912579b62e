"""Waiting for a chunk that runs on a helper thread, with heartbeat progress meanwhile.

One chunk of a big picture can take minutes (a 3-frame 4000x3000 clip is one chunk), and the
CLI and the GUI must see time pass and be able to cancel during it. So `VideoRun` has each
chunk decoded and restored on one helper thread, always the same one, and waits here: every
HEARTBEAT_SECONDS this yields a progress event with an estimate of the running chunk's share
(`ProgressMeter.pulse`: the engine's own report through `ChunkContext.report`, else the pace so
far), and the seconds it has taken; the user's cancel is passed on to the engine.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator, Iterator
from concurrent.futures import Future
from concurrent.futures import wait as wait_for
from typing import Any

from seedvr_desktop.engine.base import ProgressEvent
from seedvr_desktop.engine.progress import ProgressMeter

HEARTBEAT_SECONDS = 1.0  # seconds between progress events while one chunk is restored
WAIT_STEP = 0.05  # how often the wait looks at the cancel button (seconds)
END = object()  # what the helper thread returns when no chunk is left


def next_or_end(stream: Iterator[Any]) -> Any:
    """The next item of `stream`, or END (StopIteration cannot cross a Future into a
    generator: it would turn into a RuntimeError there)."""
    return next(stream, END)


class RunningChunk:
    """Which chunk the helper thread is restoring, since when, and how far the engine says it
    is (`ChunkContext.report`, called from that thread)."""

    def __init__(self, chunks: list[Any], index: int) -> None:
        self.chunks = chunks
        self.index = index  # position in `chunks` of the chunk being restored
        self.began = time.monotonic()
        self.reported: float | None = None

    def start(self) -> None:
        self.began = time.monotonic()
        self.reported = None

    def report(self, fraction: float) -> None:
        self.reported = fraction

    def frames(self) -> int:
        """Frames this chunk adds to the output (its overlap with the one before was counted
        there), at least 1."""
        cp = self.chunks[self.index]
        before = self.chunks[self.index - 1].stop if self.index > 0 else cp.start
        return max(cp.stop - max(before, cp.start), 1)


def await_chunk(future: Future[Any], cancel: threading.Event, halt: threading.Event,
                meter: ProgressMeter, running: RunningChunk
                ) -> Generator[ProgressEvent, None, Any]:
    """The helper thread's next chunk (or END), with heartbeat events while it runs.

    `cancel` is the user's button; `halt` is what the engine watches (set here on cancel)."""
    beat = running.began
    while True:
        finished, _ = wait_for([future], timeout=WAIT_STEP)
        if finished:
            return future.result()
        if cancel.is_set():
            halt.set()
        now = time.monotonic()
        if now - beat < HEARTBEAT_SECONDS or running.index >= len(running.chunks):
            continue
        beat = now
        elapsed = now - running.began
        count = len(running.chunks)
        yield meter.pulse("restore", elapsed=elapsed, chunk_frames=running.frames(),
                          reported=running.reported, chunk=running.index + 1, chunks=count,
                          message=f"restoring chunk {running.index + 1}/{count}: "
                                  f"{elapsed:.0f} s so far")
