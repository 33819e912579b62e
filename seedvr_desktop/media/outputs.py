"""Output folders and files: create them, refuse to overwrite, and explain write failures."""

from __future__ import annotations

import errno
import logging
import shutil
from pathlib import Path

from seedvr_desktop.errors import UserError

log = logging.getLogger(__name__)


def make_output_folder(folder: Path) -> list[Path]:
    """Create `folder` and any missing parents; returns the folders made, outermost first.

    Where the output goes is the user's choice, so failing here (a read-only card or disc, a
    file where a folder should be, no permission) is a UserError naming the folder rather than
    an internal error, and folders made before the failure are removed again. Callers that
    fail later pass the returned list to `remove_empty_folders` to leave nothing behind.
    """
    missing: list[Path] = []
    probe = Path(folder)
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    created: list[Path] = []
    try:
        for path in reversed(missing):
            path.mkdir()
            created.append(path)
    except OSError as exc:
        remove_empty_folders(created)
        raise unwritable_folder(Path(folder), exc) from exc
    return created


def remove_empty_folders(folders: list[Path]) -> None:
    """Remove folders a job created (given outermost first), innermost first, while empty."""
    for path in reversed(folders):
        try:
            path.rmdir()
        except OSError:
            return


def unwritable_folder(folder: Path, exc: OSError) -> UserError:
    """The one-line error for an output folder that cannot be created or written to."""
    return UserError(f"cannot write to {folder}: {exc.strerror or exc}")


# errno values that say the output's disk refused the data (full, quota, read-only, failing),
# as opposed to an encoder or muxer rejecting what it was given.
_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO,
                          errno.EACCES, errno.EPERM})


def is_write_failure(exc: BaseException) -> bool:
    """Whether `exc`, raised while writing an output, means the disk refused the data.

    FFmpeg's errors are OSErrors too (PyAV maps AVERROR codes onto errno), so only those with a
    disk errno count; a plain OSError from our own file writes always does."""
    import av

    if not isinstance(exc, OSError):
        return False
    if isinstance(exc, av.FFmpegError):
        return exc.errno in _DISK_ERRNOS
    return True


def refuse_existing(path: Path, overwrite: bool) -> None:
    """Existing outputs are only replaced on request (and then only once the new one is done)."""
    if path.exists() and not overwrite:
        raise UserError(f"{path} already exists; use --overwrite to replace it")


def remove_tree(folder: Path) -> None:
    """Remove a work folder and everything in it; a folder already gone is fine."""
    shutil.rmtree(folder, ignore_errors=True)
