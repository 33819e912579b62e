"""Restored preview chunks kept in memory, keyed by media file and restoration settings (no Qt).

The settings key makes invalidation automatic and exact: after a settings change the clip's key
differs, lookups miss, and `retain` drops the stale chunks so memory goes to the new ones.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PreviewChunk:
    path: str
    key: str  # fingerprint of the restoration settings that produced it
    start: int  # first source frame
    frames: np.ndarray  # (T, H, W, 3) uint8

    @property
    def stop(self) -> int:
        return self.start + len(self.frames)


class PreviewCache:
    """Chunks of restored frames, oldest dropped first once over `max_bytes`."""

    def __init__(self, max_bytes: int = 1 << 30) -> None:
        self.max_bytes = max_bytes
        self._chunks: list[PreviewChunk] = []
        self._lock = threading.Lock()

    def add(self, path: str, key: str, start: int, frames: np.ndarray) -> PreviewChunk:
        chunk = PreviewChunk(str(path), key, int(start), frames)
        with self._lock:
            # A new chunk replaces overlapping ones of the same settings (re-preview).
            self._chunks = [
                c for c in self._chunks
                if not (c.path == chunk.path and c.key == key and c.start < chunk.stop
                        and chunk.start < c.stop)
            ]
            self._chunks.append(chunk)
            while sum(c.frames.nbytes for c in self._chunks) > self.max_bytes and len(
                self._chunks
            ) > 1:
                self._chunks.pop(0)
        return chunk

    def lookup(self, path: str, key: str, index: int) -> np.ndarray | None:
        """The restored frame `index` of `path` under settings `key`, if previewed."""
        with self._lock:
            for c in reversed(self._chunks):
                if (c.path, c.key) == (str(path), key) and c.start <= index < c.stop:
                    return c.frames[index - c.start]
        return None

    def ranges(self, path: str, key: str) -> list[tuple[int, int]]:
        with self._lock:
            return sorted(
                (c.start, c.stop) for c in self._chunks if c.path == str(path) and c.key == key
            )

    def retain(self, valid: set[tuple[str, str]]) -> int:
        """Keep only chunks whose (path, key) is still current; returns how many were dropped."""
        with self._lock:
            before = len(self._chunks)
            self._chunks = [c for c in self._chunks if (c.path, c.key) in valid]
            return before - len(self._chunks)

    def clear(self) -> None:
        with self._lock:
            self._chunks.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._chunks)
