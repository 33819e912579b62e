"""The one way this app replaces a file: write a hidden sibling, fsync it, rename it over.

A crash, a full disk or a kill at any moment leaves either the old file or the new one, never a
half-written one, and never a stray temp the next run cannot recognise. Every writer (projects,
settings, journals, model files, images, subtitles, final videos) goes through here, so the
durability rules (fsync of the data and of the folder, permissions kept, names that stay under
the file-system limit) live in one place.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

# Most file systems limit one name to 255 bytes; temps and work folders add a prefix and a tag.
NAME_MAX = 255
# Bytes of the target's own name kept in a sibling's name: the rest holds ".", ".<8 hex>",
# ".<tag>" (tags are short) and suffixes such as ".part.mov" that writers append.
_NAME_ROOM = NAME_MAX - 64


def _short(name: str, room: int) -> str:
    """`name` if it fits in `room` bytes, else a prefix of it plus a hash of the whole name."""
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) <= room:
        return name
    digest = hashlib.sha256(raw).hexdigest()[:12]
    cut = raw[: room - len(digest) - 1].decode("utf-8", "ignore")
    return f"{cut}~{digest}"


def sibling_name(target: Path, tag: str, *, unique: bool = True) -> Path:
    """A hidden name next to `target` for its temp or work data, always a legal name.

    `.NAME.<random>.<tag>` (or `.NAME.<tag>` when not unique); long names are shortened with a
    hash of the full name, so two long outputs never share a temp and the name never exceeds
    NAME_MAX however long the target's name is.
    """
    if len(tag) > 24:
        raise ValueError(f"tag too long: {tag!r}")
    middle = f".{uuid.uuid4().hex[:8]}" if unique else ""
    return target.with_name(f".{_short(target.name, _NAME_ROOM)}{middle}.{tag}")


def temp_prefix(target: Path) -> str:
    """The start every temp of `target` shares, to find stale ones left by a killed run."""
    return f".{_short(target.name, _NAME_ROOM)}."


def fsync_path(path: Path) -> None:
    """Make a file's data (or a rename in a folder) durable; best effort.

    Folders cannot be fsynced on Windows, and some file systems (/dev/shm) refuse it; a file
    already gone has nothing to sync.
    """
    if path.is_dir() and os.name != "posix":
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable."""
    fsync_path(folder)


def _create_exclusive(path: Path) -> int:
    # 0o666 & umask, like any new file: mkstemp's 0600 would make outputs private to the user.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    return os.open(path, flags, 0o666)


def _commit(tmp: Path, path: Path) -> None:
    if path.is_file():
        with contextlib.suppress(OSError):
            shutil.copymode(path, tmp)  # a replaced file keeps its permissions
    os.replace(tmp, path)
    fsync_folder(path.parent)


def resolve_target(path: Path) -> Path:
    """Where a write to `path` must land: through a symlink to its target, so the link stays."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, tag: str = "tmp", suffix: str = "",
                fsync: bool = True) -> Iterator[Path]:
    """Yield a temp path next to `path` for a writer that wants a file name (PyAV, safetensors,
    OpenCV); on a clean exit it is fsynced and renamed over `path`, on any error removed.

    `suffix` ends the temp's name, for writers that pick the format from the extension.
    """
    target = resolve_target(Path(path))
    tmp = sibling_name(target, tag)
    if suffix:
        tmp = tmp.with_name(tmp.name + suffix)
    try:
        yield tmp
        if fsync and tmp.exists():
            fsync_path(tmp)
        _commit(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], *, tag: str = "tmp") -> Iterator[IO[bytes]]:
    """Yield a binary handle whose content replaces `path` atomically on a clean exit."""
    target = resolve_target(Path(path))
    tmp = sibling_name(target, tag)
    fd = _create_exclusive(tmp)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        _commit(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *,
                       backup: Path | None = None) -> None:
    """Replace `path` with `data`; with `backup`, first copy the old content there (atomically)."""
    target = resolve_target(Path(path))
    if backup is not None and target.is_file():
        with atomic_path(backup, tag="bak.tmp") as bak_tmp:
            shutil.copy2(target, bak_tmp)
    with atomic_open(target) as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Replace `path` with `text` in UTF-8."""
    atomic_write_bytes(path, text.encode("utf-8"))


def remove_stale_temps(target: Path, tags: tuple[str, ...] = ("tmp",), *,
                       folders: bool = False) -> list[Path]:
    """Delete temps of `target` that a killed run left behind (`.NAME.<random>.<tag>`):
    files, and with `folders` also temp folders (a model export is built in one)."""
    prefix = temp_prefix(target)
    removed = []
    try:
        entries = list(target.parent.iterdir())
    except OSError:
        return []
    for entry in entries:
        name = entry.name
        is_folder = entry.is_dir() and not entry.is_symlink()
        if not name.startswith(prefix) or not (entry.is_file() or (folders and is_folder)):
            continue
        rest = name[len(prefix):].split(".", 1)
        if len(rest) == 2 and len(rest[0]) == 8 and rest[1] in tags:
            with contextlib.suppress(OSError):
                if is_folder:
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
                removed.append(entry)
    return removed


# safetensors >= 0.8 writes atomically on its own, through Rust's `tempfile` crate: a hidden
# `.tmp` + 6 random letters/digits beside the file it was asked for (ours is already a temp).
_LIBRARY_TEMP = re.compile(r"\.tmp[A-Za-z0-9]{6}")


def remove_library_temps(folder: Path) -> list[Path]:
    """Delete the temps a library's own atomic write left when a kill -9 interrupted it.

    Only for a folder this process owns while it runs (a training run's output, a cache being
    filled): another writer's temp there would look the same.
    """
    removed = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return []
    for entry in entries:
        if _LIBRARY_TEMP.fullmatch(entry.name) and entry.is_file():
            with contextlib.suppress(OSError):
                entry.unlink()
                removed.append(entry)
    return removed


class LockBusy(OSError):
    """Another process holds the lock (callers turn this into a message for the user)."""


class ExclusiveLock:
    """An OS file lock (flock/LockFileEx through `filelock`) that also tidies its file.

    The lock file is removed on release, while still held; an acquirer that got the lock on
    a file already unlinked that way (it opened it just before) sees that the path no longer
    names its file and tries again, so two holders can never both believe they own it.
    """

    def __init__(self, path: Path, *, timeout: float = 0.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self._lock: object | None = None

    def acquire(self) -> ExclusiveLock:
        import time

        from filelock import FileLock, Timeout

        deadline = time.monotonic() + max(self.timeout, 0.0)
        while True:
            lock = FileLock(self.path, timeout=max(deadline - time.monotonic(), 0.0),
                            thread_local=False)
            try:
                lock.acquire()
            except Timeout:
                raise LockBusy(f"{self.path} is locked by another process") from None
            fd = getattr(getattr(lock, "_context", None), "lock_file_fd", None)
            try:
                same = fd is None or os.path.samestat(os.fstat(fd), os.stat(self.path))
            except OSError:
                same = False
            if same:
                self._lock = lock
                return self
            lock.release()  # a file its last holder already removed: lock the new one
            if time.monotonic() > deadline and self.timeout <= 0:
                raise LockBusy(f"{self.path} is locked by another process")

    def release(self, *, remove: bool = True) -> None:
        lock = self._lock
        if lock is None:
            return
        self._lock = None
        if remove:
            with contextlib.suppress(OSError):
                self.path.unlink()
        lock.release()  # type: ignore[attr-defined]

    @property
    def held(self) -> bool:
        return self._lock is not None

    def __enter__(self) -> ExclusiveLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
