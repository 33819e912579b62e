"""Content fingerprints of media files and finding moved files again by them.

Tapes get re-captured, drives get renamed, folders get tidied: a project must survive its media
moving. A fingerprint is the file size plus a SHA-256 over the size and the first and last MiB,
which reads at most 2 MiB however large the capture is. Searching a folder compares sizes first
(a stat per file) and hashes only same-size candidates.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from seedvr_desktop.project.model import Fingerprint, MediaRef, Project

log = logging.getLogger(__name__)

SAMPLE_BYTES = 1 << 20  # 1 MiB from each end
MAX_SCANNED_FILES = 200_000  # stop walking absurdly large trees (a whole disk picked by mistake)


def compute_fingerprint(path: str | os.PathLike[str]) -> Fingerprint:
    """Fingerprint of the file at `path`; OSError propagates (the caller knows the context)."""
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        digest = hashlib.sha256()
        digest.update(size.to_bytes(8, "little"))
        digest.update(handle.read(SAMPLE_BYTES))
        if size > SAMPLE_BYTES:
            handle.seek(max(SAMPLE_BYTES, size - SAMPLE_BYTES))
            digest.update(handle.read(SAMPLE_BYTES))
    return Fingerprint(size=size, digest=digest.hexdigest())


def matches(path: Path, fingerprint: Fingerprint) -> bool:
    try:
        if path.stat().st_size != fingerprint.size:
            return False
        return compute_fingerprint(path) == fingerprint
    except OSError:
        return False


def _walk_files(folder: Path, recursive: bool) -> Iterator[Path]:
    count = 0
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))  # stable order, skip hidden
        for name in sorted(files):
            count += 1
            if count > MAX_SCANNED_FILES:
                log.warning("stopped searching %s after %d files", folder, MAX_SCANNED_FILES)
                return
            yield Path(root) / name
        if not recursive:
            return


def find_by_fingerprint(
    fingerprint: Fingerprint,
    folder: str | os.PathLike[str],
    *,
    name_hint: str | None = None,
    recursive: bool = True,
) -> Path | None:
    """The first file under `folder` with this fingerprint; files named `name_hint` go first."""
    candidates = [p for p in _walk_files(Path(folder), recursive) if _same_size(p, fingerprint)]
    if name_hint:
        candidates.sort(key=lambda p: p.name != name_hint)
    for path in candidates:
        if matches(path, fingerprint):
            return path.absolute()
    return None


def _same_size(path: Path, fingerprint: Fingerprint) -> bool:
    try:
        return path.stat().st_size == fingerprint.size
    except OSError:
        return False


def find_relinks(
    project: Project, folder: str | os.PathLike[str], *, recursive: bool = True
) -> dict[str, Path]:
    """media id -> found file, for every missing media entry that has a fingerprint.

    Returns the plan only; apply it with `RelinkMedia` commands so it can be undone. Media without
    a fingerprint (very old projects whose files were never seen) cannot be searched for.
    """
    missing = [ref for ref in project.media if ref.missing and ref.fingerprint is not None]
    if not missing:
        return {}
    by_size: dict[int, list[MediaRef]] = {}
    for ref in missing:
        assert ref.fingerprint is not None
        by_size.setdefault(ref.fingerprint.size, []).append(ref)
    found: dict[str, Path] = {}
    for path in _walk_files(Path(folder), recursive):
        try:
            size = path.stat().st_size
        except OSError:
            continue
        refs = [r for r in by_size.get(size, []) if r.id not in found]
        if not refs:
            continue
        fingerprint = compute_fingerprint(path)
        for ref in refs:
            if ref.fingerprint == fingerprint:
                found[ref.id] = path.absolute()
        if len(found) == len(missing):
            break
    return found


def refresh_missing(project: Project) -> list[MediaRef]:
    """Re-check which media exist now (e.g. a drive was plugged in); returns the missing ones."""
    for ref in project.media:
        ref.missing = not ref.path.is_file()
    return project.missing_media()
