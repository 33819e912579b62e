"""The open project as the window sees it: file operations, undo, autosave, recent files.

Wraps the project package's `ProjectDocument` (edits and change events) and `Autosaver`
(periodic crash copies) and adds what only a GUI needs: the QUndoStack bridge, a modified flag
for the title bar, the recovery prompt, and the recent-files list stored in the user settings.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QFileDialog, QWidget

from seedvr_desktop.project.autosave import discard_autosave, has_newer_autosave, load_autosave
from seedvr_desktop.project.commands import ChangeEvent, Command
from seedvr_desktop.project.document import Autosaver, ProjectDocument
from seedvr_desktop.project.model import PROJECT_SUFFIX, Project, RestoreSettings
from seedvr_desktop.settings import Settings, save_settings
from seedvr_desktop.ui import dialogs
from seedvr_desktop.ui.undo import UndoBridge

log = logging.getLogger(__name__)

AUTOSAVE_CHECK_MS = 10_000
FILE_FILTER = f"SeedVR projects (*{PROJECT_SUFFIX})"


class ProjectSession(QObject):
    """One project at a time, with its history and its file on disk."""

    changed = Signal(object)  # ChangeEvent
    modified_changed = Signal(bool)
    recent_changed = Signal(list)

    def __init__(self, settings: Settings, settings_dir: Path, window: QWidget,
                 *, autosave_interval: float = 60.0) -> None:
        super().__init__(window)
        self.settings, self.settings_dir, self._window = settings, settings_dir, window
        self.document = ProjectDocument(self.blank_project())
        self.undo = UndoBridge(self.document, self)
        self.undo.modified_changed.connect(self.modified_changed)
        self._unsubscribe = self.document.subscribe(self.changed.emit)
        self.recovery_file = settings_dir / "recovery" / f"untitled{PROJECT_SUFFIX}"
        try:
            self.recovery_file.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # autosave of untitled projects then reports its own failure
            log.warning("cannot create the recovery folder: %s", exc)
        self.autosaver = Autosaver(self.document, interval=autosave_interval,
                                   fallback_path=self.recovery_file)
        # Bumped whenever another project replaces the open one; late results (a probe that
        # finishes after File > Open) carry the number they started under and are dropped.
        self.generation = 0
        self._consent: tuple[int, int] | None = None  # (generation, revision) let go by the user
        self._recovery_pending = True  # the untitled recovery file is not ours until offered
        self._timer = QTimer(self)
        self._timer.setInterval(AUTOSAVE_CHECK_MS)
        self._timer.timeout.connect(self._on_timer_timeout)
        self._timer.start()

    @property
    def project(self) -> Project:
        return self.document.project

    def is_modified(self) -> bool:
        return self.undo.is_modified()

    def display_name(self) -> str:
        path = self.project.path
        return path.stem if path is not None else self.project.name

    # ---------------------------------------------------------------- edits
    def push(self, command: Command, *, merge: bool = False) -> bool:
        """Apply an edit; a rejected edit is shown to the user and changes nothing."""
        from seedvr_desktop.errors import UserError

        try:
            self.undo.push(command, merge=merge)
        except UserError as exc:
            dialogs.show_error(self._window, command.text, str(exc))
            return False
        return True

    # ---------------------------------------------------------------- files
    def blank_project(self) -> Project:
        """A new project using the engine chosen as default in the settings."""
        return Project(restore=RestoreSettings(engine=self.settings.default_engine or "auto"))

    def new(self) -> None:
        self._replace(self.blank_project(), modified=False)

    def open(self, path: str | Path) -> bool:
        from seedvr_desktop.errors import UserError
        from seedvr_desktop.project.serialize import load_project

        path = Path(path).absolute()
        disposable = self._disposable_autosave()
        if disposable is not None and disposable == path:
            # Reopening the project whose changes were just discarded: do not offer them back.
            discard_autosave(path)
        try:
            if has_newer_autosave(path) and dialogs.ask_yes_no(
                self._window, "Recover unsaved work?",
                f"{path.name} has newer unsaved changes from a previous session "
                "(the app may have closed unexpectedly). Recover them?",
            ):
                self._replace(load_autosave(path), modified=True, recovered=True)
            else:
                self._replace(load_project(path), modified=False)
        except UserError as exc:
            dialogs.show_error(self._window, "Cannot open project", str(exc))
            return False
        self._add_recent(path)
        missing = self.project.missing_media()
        if missing:
            names = ", ".join(m.path.name for m in missing[:5])
            dialogs.show_error(self._window, "Missing media",
                               f"{len(missing)} media file(s) were not found: {names}. "
                               "Relink them before exporting.")
        return True

    def offer_untitled_recovery(self) -> bool:
        """At start-up: bring back an untitled project that was never saved before a crash."""
        self._recovery_pending = False
        if not has_newer_autosave(self.recovery_file):
            return False
        if dialogs.ask_yes_no(self._window, "Recover unsaved work?",
                              "An unsaved project from a previous session was found. Recover it?"):
            try:
                project = load_autosave(self.recovery_file)
            except Exception as exc:
                dialogs.show_error(self._window, "Recovery failed", str(exc))
                return False
            project.path = None
            self._replace(project, modified=True, recovered=True)
            return True
        discard_autosave(self.recovery_file)
        return False

    def save(self) -> bool:
        if self.project.path is None:
            return self.save_as()
        return self._save_to(self.project.path)

    def save_as(self, path: str | Path | None = None) -> bool:
        if path is None:
            start = str(self.project.path or Path.home() / f"{self.project.name}{PROJECT_SUFFIX}")
            chosen, _ = QFileDialog.getSaveFileName(self._window, "Save project", start,
                                                    FILE_FILTER)
            if not chosen:
                return False
            path = chosen
        path = Path(path)
        if path.suffix != PROJECT_SUFFIX:
            path = path.with_name(path.name + PROJECT_SUFFIX)
        return self._save_to(path.absolute())

    def _save_to(self, path: Path) -> bool:
        from seedvr_desktop.errors import UserError

        untitled = self.project.path is None
        try:
            self.document.save(path)
        except UserError as exc:
            dialogs.show_error(self._window, "Cannot save project", str(exc))
            return False
        self.undo.mark_saved()
        if untitled:
            discard_autosave(self.recovery_file)
        self._add_recent(path)
        return True

    def confirm_discard(self, what: str) -> bool:
        """True when it is fine to drop the current project (saved, discarded or unchanged)."""
        if not self.is_modified():
            return True
        answer = dialogs.ask_unsaved_changes(self._window, what)
        if answer == dialogs.Answer.SAVE:
            return self.save()
        if answer == dialogs.Answer.DISCARD:
            self._consent = (self.generation, self.document.revision)
            return True
        return False

    def _disposable_autosave(self) -> Path | None:
        """The open project's autosave target when its unsaved work may be thrown away: the
        user chose Discard for exactly this state, or there is nothing unsaved (a leftover
        autosave then only holds changes that were declined or superseded)."""
        consented = self._consent == (self.generation, self.document.revision)
        if not (consented or not self.is_modified()):
            return None
        target = self.autosaver.target()
        if target == self.recovery_file and self._recovery_pending:
            return None  # a crashed session's untitled work that has not been offered yet
        return target

    def close(self) -> None:
        """The window is going away with the user's consent (changes saved or discarded), so
        the autosave must not be offered back next time; only a crash leaves it behind."""
        self._timer.stop()
        target = self.autosaver.target()
        if target is not None:
            discard_autosave(target)
        if not self._recovery_pending:
            # An untitled project dropped earlier in this session without consent (e.g. a
            # direct `new()`) must not come back at the next launch either.
            discard_autosave(self.recovery_file)
        self._unsubscribe()

    def _replace(self, project: Project, *, modified: bool, recovered: bool = False) -> None:
        """Swap in `project`; the old one's autosave goes when its work was let go, so that
        discarded changes are never offered back as "unsaved work" later."""
        old_autosave = self._disposable_autosave()
        self.generation += 1
        self._consent = None
        self.document.replace_project(project)
        self.undo.reset(self.document, modified=modified)
        self.autosaver = Autosaver(self.document, interval=self.autosaver.interval,
                                   fallback_path=self.recovery_file)
        # A recovered project was read from that very file; it stays until the next save.
        if old_autosave is not None and not (recovered
                                             and old_autosave == self.autosaver.target()):
            discard_autosave(old_autosave)

    # ---------------------------------------------------------------- recent files
    def _add_recent(self, path: Path) -> None:
        self.settings.add_recent(str(path))
        try:
            save_settings(self.settings, self.settings_dir)
        except OSError as exc:
            log.warning("cannot remember recent projects: %s", exc)
        self.recent_changed.emit(list(self.settings.recent_projects))

    def _on_timer_timeout(self) -> None:
        self.autosaver.maybe_autosave()

    def autosave_now(self) -> Path | None:
        return self.autosaver.autosave_now()


def is_structural(event: ChangeEvent) -> bool:
    """Changes that move things on the timeline (as opposed to settings only)."""
    return event.kind in ("clips", "clip", "captions", "project", "media")
