"""Transport and editing keys that work wherever focus is in the main window.

Editors expect Space, J/K/L, arrows and I/O to drive the playhead no matter which panel was
clicked last, so they are caught by an application event filter rather than per-widget
shortcuts, except while the user is typing into a text or number field.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QLineEdit,
    QPlainTextEdit,
    QTextEdit,
    QWidget,
)

HOLD_COMPARE_KEY = Qt.Key.Key_B  # hold to see the original ("before") in toggle mode


class KeyController(QObject):
    """Maps key presses (and one held key) to callables for one top-level window."""

    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        self._window = window
        self._press: dict[int, Callable[[], object]] = {}
        self._hold: dict[int, Callable[[bool], None]] = {}

    def on_press(self, key: Qt.Key, action: Callable[[], object]) -> None:
        self._press[int(key.value)] = action

    def on_hold(self, key: Qt.Key, action: Callable[[bool], None]) -> None:
        self._hold[int(key.value)] = action

    def install(self) -> None:
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self)

    def uninstall(self) -> None:
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind not in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease):
            return False
        if not isinstance(watched, QWidget) or watched.window() is not self._window:
            return False
        assert isinstance(event, QKeyEvent)
        if event.modifiers() & (Qt.KeyboardModifier.ControlModifier
                                | Qt.KeyboardModifier.AltModifier
                                | Qt.KeyboardModifier.MetaModifier):
            return False  # menu shortcuts (Ctrl+S, Ctrl+Z...) pass through
        if _typing_into(watched):  # the receiver of a key event is the focused widget
            return False
        key = event.key()
        if key in self._hold:
            if not event.isAutoRepeat():
                self._hold[key](kind == QEvent.Type.KeyPress)
            return True
        if kind == QEvent.Type.KeyPress and key in self._press:
            self._press[key]()
            return True
        return False


def _typing_into(widget: QWidget | None) -> bool:
    if widget is None:
        return False
    if isinstance(widget, QComboBox):
        return widget.isEditable()
    return isinstance(widget, (QLineEdit, QAbstractSpinBox, QTextEdit, QPlainTextEdit))
