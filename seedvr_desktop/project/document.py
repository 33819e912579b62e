"""An open project: its edits with one undo history, its saved state, saving and autosave.

`ProjectDocument` is the only undo history in the app: the CLI's `project caption` and the GUI's
undo bridge both push commands here, so "modified" has one meaning. `Autosaver` writes the
crash-recovery copy from it (the GUI calls `maybe_autosave()` from a timer; nothing here starts
threads), and `save_project` writes the file and retires that copy.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from seedvr_desktop.project.autosave import autosave_path, discard_autosave, write_autosave
from seedvr_desktop.project.commands import ChangeEvent, Command, Listener
from seedvr_desktop.project.model import Project, ProjectError
from seedvr_desktop.project.serialize import write_project

log = logging.getLogger(__name__)

DEFAULT_AUTOSAVE_INTERVAL = 60.0  # seconds


def save_project(project: Project, path: str | os.PathLike[str] | None = None,
                 *, backup: bool = True) -> Path:
    """Save atomically to `path` (default: where it was loaded from), keeping a `.bak` copy,
    and remove a leftover autosave, since the saved file is now the newest state."""
    target = write_project(project, path, backup=backup)
    discard_autosave(target)
    return target


class ProjectDocument:
    """A project with its undo history, listeners and the saved/modified state."""

    def __init__(self, project: Project | None = None) -> None:
        self.project = project or Project()
        self._undo: list[Command] = []
        self._redo: list[Command] = []
        self._listeners: list[Listener] = []
        self.revision = 0  # bumps on every change; the autosaver compares it
        self._clean_depth: int | None = 0  # undo depth that matches the file on disk

    # listeners
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` after every change; returns a function that unsubscribes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _emit(self, event: ChangeEvent) -> ChangeEvent:
        self.revision += 1
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a broken view must not corrupt the undo history
                log.exception("project change listener failed")
        return event

    # the undo history (the GUI's QUndoStack mirrors it, see ui/undo.py)
    def execute(self, command: Command, *, merge: bool = False) -> ChangeEvent:
        """Apply `command` and push it; with `merge`, fold it into the previous compatible one."""
        event = command.redo(self.project)
        depth = len(self._undo)
        if self._clean_depth is not None and self._clean_depth > depth:
            self._clean_depth = None  # the saved state was in the redo branch we now discard
        top = self._undo[-1] if self._undo else None
        merged = (
            merge and top is not None and self._clean_depth != depth and top.merge_with(command)
        )
        if not merged:
            self._undo.append(command)
        self._redo.clear()
        return self._emit(event)

    def undo(self) -> ChangeEvent | None:
        if not self._undo:
            return None
        command = self._undo.pop()
        self._redo.append(command)
        return self._emit(command.undo(self.project))

    def redo(self) -> ChangeEvent | None:
        if not self._redo:
            return None
        command = self._redo.pop()
        self._undo.append(command)
        return self._emit(command.redo(self.project))

    def undo_depth(self) -> int:
        return len(self._undo)

    def can_undo(self) -> bool:
        return bool(self._undo)

    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo_text(self) -> str:
        return self._undo[-1].text if self._undo else ""

    def redo_text(self) -> str:
        return self._redo[-1].text if self._redo else ""

    # saved state
    def is_modified(self) -> bool:
        """Whether the project differs from the last save (or load).

        It follows the undo depth, so undoing back to the saved state is "unmodified".
        """
        return self._clean_depth != len(self._undo)

    def mark_saved(self) -> None:
        self._clean_depth = len(self._undo)

    def mark_unsaved(self) -> None:
        """No state in the history matches the file (e.g. a recovered autosave)."""
        self._clean_depth = None

    def save(self, path: Path | None = None) -> Path:
        written = save_project(self.project, path)
        self.mark_saved()
        return written

    def replace_project(self, project: Project) -> None:
        """Swap in a freshly loaded project; clears the history (one "project" event)."""
        self.project = project
        self._undo.clear()
        self._redo.clear()
        self._emit(ChangeEvent("project", None, "Open project"))
        self.mark_saved()


class Autosaver:
    """Writes the document's autosave when it changed and `interval` seconds have passed.

    `fallback_path` is used for projects that were never saved (e.g. the GUI's recovery folder
    plus "untitled.svrproj"); without it such projects are not autosaved.
    """

    def __init__(
        self,
        document: ProjectDocument,
        *,
        interval: float = DEFAULT_AUTOSAVE_INTERVAL,
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
