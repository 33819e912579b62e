"""Qt's undo stack as a view of the project's one undo history.

The history is `ProjectDocument`'s (shared with the CLI): pushing here executes the command on
the document, and Qt's undo/redo call the document's undo/redo, so both stacks always hold the
same steps and "modified" has one meaning. Qt's stack only supplies menu actions, texts, macros
and the clean signal. A command is executed *before* it is pushed: `QUndoCommand.redo()` is
called from C++, where a Python exception cannot reach the caller, so validation errors must
surface first.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from seedvr_desktop.project.commands import Command
from seedvr_desktop.project.document import ProjectDocument

MERGE_ID = 0x5EED  # QUndoCommand ids >= 0 are offered to mergeWith()


class _CommandAdapter(QUndoCommand):
    def __init__(self, document: ProjectDocument, command: Command, mergeable: bool,
                 merged: bool) -> None:
        super().__init__(command.text)
        self.document = document
        self.command = command
        self._mergeable = mergeable
        # The document already folded this command into its previous step (one gesture, one
        # undo step): Qt must fold it too, without merging the commands a second time.
        self.merged_into_previous = merged
        self._skip_first_redo = True  # already executed by UndoBridge.push

    def redo(self) -> None:
        if self._skip_first_redo:
            self._skip_first_redo = False
            return
        self.document.redo()

    def undo(self) -> None:
        self.document.undo()

    def id(self) -> int:
        return MERGE_ID if self._mergeable else -1

    def mergeWith(self, other: QUndoCommand) -> bool:
        return isinstance(other, _CommandAdapter) and other.merged_into_previous


class UndoBridge(QObject):
    """Pushes project commands onto a QUndoStack and tracks the saved (clean) state."""

    modified_changed = Signal(bool)

    def __init__(self, document: ProjectDocument, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.stack = QUndoStack(self)
        self.stack.cleanChanged.connect(self._on_stack_clean_changed)

    def push(self, command: Command, *, merge: bool = False) -> None:
        """Execute `command` (ProjectError and no change when invalid), then record it."""
        depth = self.document.undo_depth()
        self.document.execute(command, merge=merge)
        merged = self.document.undo_depth() == depth
        self.stack.push(_CommandAdapter(self.document, command, merge, merged))

    def is_modified(self) -> bool:
        return self.document.is_modified()

    @contextmanager
    def macro(self, text: str) -> Iterator[None]:
        """Everything pushed inside is one undo step named `text` (one gesture, one undo)."""
        self.stack.beginMacro(text)
        try:
            yield
        finally:
            self.stack.endMacro()

    def mark_saved(self) -> None:
        self.stack.setClean()
        self.document.mark_saved()

    def reset(self, document: ProjectDocument, *, modified: bool = False) -> None:
        """A new or opened project: history starts empty (and dirty after a recovery)."""
        self.document = document
        self.stack.clear()
        if modified:
            self.stack.resetClean()  # no index matches the file on disk
            document.mark_unsaved()
        self.modified_changed.emit(self.is_modified())

    def _on_stack_clean_changed(self, clean: bool) -> None:
        self.modified_changed.emit(not clean)
