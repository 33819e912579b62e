"""Periodic autosave beside the project file and the check behind the recovery prompt.

The autosave is `.NAME.svrproj.autosave` in the project's folder: the same folder keeps relative
media paths valid, and the leading dot keeps it out of the way in file browsers. It is only ever
written by `document.Autosaver` and removed by a real save, so "an autosave that is newer than
the project and differs from it" means unsaved work survived a crash.


"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from seedvr_desktop.fsutil import atomic_write_text
from seedvr_desktop.project.model import Project, ProjectError
from seedvr_desktop.project.serialize import dumps_project, loads_project

log = logging.getLogger(__name__)

AUTOSAVE_SUFFIX = ".autosave"


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
    target = autosave_path(project_path)
    text = dumps_project(project, Path(project_path).absolute().parent)
    atomic_write_text(target, text)
    return target
