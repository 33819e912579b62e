"""QUndoStack on top of the project's own command system.

The project commands (plain Python, shared with the CLI) do the editing and emit change events;
this bridge only gives Qt's undo stack, menu texts and clean state something to hold. A command
is applied *before* it is pushed: `QUndoCommand.redo()` is called from C++, where a Python
exception cannot reach the caller, so validation errors must surface first.
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
    def __init__(self, document: ProjectDocument, command: Command, mergeable: bool) -> None:
        super().__init__(command.text)
        self.document = document
        self.command = command
        self._mergeable = mergeable
        self._skip_first_redo = True  # already applied by UndoBridge.push

    def redo(self) -> None:
        if self._skip_first_redo:
            self._skip_first_redo = False
            return
        self.document.apply(self.command)

    def undo(self) -> None:
        self.document.revert(self.command)

    def id(self) -> int:
        return MERGE_ID if self._mergeable else -1

    def mergeWith(self, other: QUndoCommand) -> bool:
        # Many small edits of one gesture (spin box steps, a slider drag) become one undo step.
        return isinstance(other, _CommandAdapter) and self.command.merge_with(other.command)


class UndoBridge(QObject):
    """Pushes project commands onto a QUndoStack and tracks the saved (clean) state."""

    modified_changed = Signal(bool)

    def __init__(self, document: ProjectDocument, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.stack = QUndoStack(self)
        self.stack.cleanChanged.connect(self._on_stack_clean_changed)

    def push(self, command: Command, *, merge: bool = False) -> None:
        """Apply `command` (ProjectError and no change when invalid), then record it."""
        self.document.apply(command)
        self.stack.push(_CommandAdapter(self.document, command, merge))

    def is_modified(self) -> bool:
        return not self.stack.isClean()

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
        self.modified_changed.emit(self.is_modified())

    def _on_stack_clean_changed(self, clean: bool) -> None:
        self.modified_changed.emit(not clean)
