"""Periodic autosave beside the project file and the check behind the recovery prompt.

The autosave is `.NAME.svrproj.autosave` in the project's folder: the same folder keeps relative
media paths valid, and the leading dot keeps it out of the way in file browsers. It is only ever
written by `Autosaver` and removed by a real save, so "an autosave that is newer than the project
and differs from it" means unsaved work survived a crash.

The GUI calls `Autosaver.maybe_autosave()` from a timer; nothing here starts threads.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from seedvr_desktop.project.model import Project, ProjectError

if TYPE_CHECKING:
    from seedvr_desktop.project.commands import ProjectDocument

log = logging.getLogger(__name__)

AUTOSAVE_SUFFIX = ".autosave"
DEFAULT_INTERVAL = 60.0  # seconds


def autosave_path(project_path: str | os.PathLike[str]) -> Path:
    path = Path(project_path)
    return path.with_name(f".{path.name}{AUTOSAVE_SUFFIX}")


def has_newer_autosave(project_path: str | os.PathLike[str]) -> bool:
    """True when an autosave exists that is newer than the project and holds different content."""
    path = Path(project_path)
    auto = autosave_path(path)
    try:
        auto_stat = auto.stat()
    except OSError:
        return False
    try:
        proj_stat = path.stat()
    except FileNotFoundError:
        return True  # the project was never saved, or was deleted: the autosave is all there is
    if auto_stat.st_mtime_ns < proj_stat.st_mtime_ns:
        return False
    try:
        return auto.read_bytes() != path.read_bytes()
    except OSError:
        return True


def load_autosave(project_path: str | os.PathLike[str]) -> Project:
    """The recovered project; its `path` is the real project file so that saving replaces it."""
    from seedvr_desktop.project.serialize import loads_project

    path = Path(project_path).absolute()
    auto = autosave_path(path)
    try:
        raw = auto.read_bytes()
    except OSError as exc:
        raise ProjectError(f"cannot read the autosave {auto.name}: {exc.strerror or exc}") from None
    # Decoded as if it were the project itself: same folder, so relative media paths agree.
    project = loads_project(raw, path)
    project.path = path
    return project


def discard_autosave(project_path: str | os.PathLike[str]) -> None:
    with contextlib.suppress(FileNotFoundError):
        autosave_path(project_path).unlink()


def write_autosave(project: Project, project_path: Path) -> Path:
    """Write the autosave for `project` (which will be saved at `project_path`) atomically."""
    from seedvr_desktop.project.serialize import atomic_write_bytes, dumps_project

    target = autosave_path(project_path)
    text = dumps_project(project, Path(project_path).absolute().parent)
    atomic_write_bytes(target, text.encode("utf-8"))
    return target


class Autosaver:
    """Writes the document's autosave when it changed and `interval` seconds have passed.

    `fallback_path` is used for projects that were never saved (e.g. the GUI's recovery folder
    plus "untitled.svrproj"); without it such projects are not autosaved.
    """

    def __init__(
        self,
        document: ProjectDocument,
        *,
        interval: float = DEFAULT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        fallback_path: Path | None = None,
    ) -> None:
        self.document = document
        self.interval = interval
        self.clock = clock
        self.fallback_path = fallback_path
        self._last_time = clock()
        self._saved_revision: int | None = None  # document revision last autosaved
        self.last_error: str | None = None

    def target(self) -> Path | None:
        return self.document.project.path or self.fallback_path

    def pending(self) -> bool:
        """The document changed since the last autosave or save."""
        return (
            self.document.revision != self._saved_revision and self.document.is_modified()
        )

    def maybe_autosave(self, now: float | None = None) -> Path | None:
        """Autosave if due; returns the file written, or None. Never raises for disk errors."""
        now = self.clock() if now is None else now
        if now - self._last_time < self.interval or not self.pending():
            return None
        return self.autosave_now(now)

    def autosave_now(self, now: float | None = None) -> Path | None:
        target = self.target()
        self._last_time = self.clock() if now is None else now
        if target is None or not self.pending():
            return None
        try:
            written = write_autosave(self.document.project, target)
        except (OSError, ProjectError) as exc:
            # An autosave failure must not interrupt editing; the GUI may show last_error.
            self.last_error = str(exc)
            log.warning("autosave to %s failed: %s", autosave_path(target), exc)
            return None
        self.last_error = None
        self._saved_revision = self.document.revision
        log.debug("autosaved %s", written)
        return written
