"""User-facing messages and questions in one place.

Errors are shown window-modal but *non-blocking* (`open()` rather than `exec()`), so a message
never stalls the GUI thread while a job runs and tests can find and close it. Questions that must
be answered before going on (unsaved changes, overwrite) block by nature; they are module-level
functions so tests can replace them.
"""

from __future__ import annotations

import logging
from enum import Enum
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

log = logging.getLogger(__name__)


# The subtitle files "Import Captions" offers (project/captions.py reads them).
CAPTION_FILE_FILTER = "Subtitles (*.srt *.vtt *.ass *.ssa);;All files (*)"


class Answer(str, Enum):
    SAVE = "save"
    DISCARD = "discard"
    CANCEL = "cancel"


def show_error(parent: QWidget | None, title: str, text: str) -> QMessageBox:
    """A warning the user can read and dismiss; returns the (already open) box."""
    log.info("%s: %s", title, text)
    box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, parent)
    box.setObjectName("errorMessage")
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box


def show_info(parent: QWidget | None, title: str, text: str) -> QMessageBox:
    box = QMessageBox(QMessageBox.Icon.Information, title, text, QMessageBox.StandardButton.Ok,
                      parent)
    box.setObjectName("infoMessage")
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box


def ask_unsaved_changes(parent: QWidget | None, what: str) -> Answer:
    """Save / Discard / Cancel before `what` (e.g. "closing") when the project has changes."""
    box = QMessageBox(QMessageBox.Icon.Question, "Unsaved changes",
                      f"The project has unsaved changes. Save them before {what}?",
                      QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                      | QMessageBox.StandardButton.Cancel, parent)
    box.setDefaultButton(QMessageBox.StandardButton.Save)
    answer = box.exec()
    if answer == QMessageBox.StandardButton.Save:
        return Answer.SAVE
    if answer == QMessageBox.StandardButton.Discard:
        return Answer.DISCARD
    return Answer.CANCEL


def ask_yes_no(parent: QWidget | None, title: str, text: str) -> bool:
    answer = QMessageBox.question(parent, title, text,
                                  QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                  QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes



def ask_caption_file(parent: QWidget | None) -> Path | None:
    """A subtitle file to import captions from, or None when the user cancels."""
    path, _ = QFileDialog.getOpenFileName(parent, "Import captions", "", CAPTION_FILE_FILTER)
    return Path(path) if path else None
