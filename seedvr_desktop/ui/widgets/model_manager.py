"""The model manager: the official models with their install state, and a Download button.

Downloads run on a plain Python thread (they are network- and disk-bound and know nothing of
Qt); progress comes back through a `Mailbox` to the GUI thread. Closing the settings dialog does
not stop a download.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from seedvr_desktop.ui.mailbox import Mailbox

log = logging.getLogger(__name__)


class ModelManager(QWidget):
    """Table of the official models with install state and a Download button."""

    _progressed = Signal(str, int, int)  # file, bytes done, bytes total
    _done = Signal(str, str)  # model name, error ("" on success)

    def __init__(self, models_dir: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.models_dir = models_dir
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Model", "Size", "State"])
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.download_button = QPushButton("Download selected")
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.download_button.clicked.connect(self._on_download_button_clicked)
        self._progressed.connect(self._on_self_progressed)
        self._done.connect(self._on_self_done)
        self._thread: threading.Thread | None = None
        self._mailbox = Mailbox(self)
        row = QHBoxLayout()
        row.addWidget(self.download_button)
        row.addWidget(self.progress, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)
        layout.addLayout(row)
        self.refresh()

    def refresh(self) -> None:
        from seedvr_desktop.engine.seedvr import store as model_store

        self.table.setRowCount(0)
        for name, model in model_store.CATALOG.items():
            r = self.table.rowCount()
            self.table.insertRow(r)
            installed = model_store.is_installed(name, self.models_dir)
            item = QTableWidgetItem(name)
            item.setToolTip(model.description)
            item.setData(Qt.ItemDataRole.UserRole, name)
            self.table.setItem(r, 0, item)
            self.table.setItem(r, 1, QTableWidgetItem(f"{model.approx_gb:.1f} GB"))
            state = "installed" if installed else "not installed"
            self.table.setItem(r, 2, QTableWidgetItem(state))

    def _on_download_button_clicked(self) -> None:
        row = self.table.currentRow()
        if row < 0 or (self._thread is not None and self._thread.is_alive()):
            return
        name = self.table.item(row, 0).data(Qt.ItemDataRole.UserRole)
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.download_button.setEnabled(False)
        self._thread = threading.Thread(target=self._download, args=(name,), daemon=True)
        self._thread.start()

    def _download(self, name: str) -> None:
        from seedvr_desktop.engine.seedvr import store as model_store
        from seedvr_desktop.errors import UserError

        post = self._mailbox.post
        try:
            model_store.download(name, root=self.models_dir, progress=lambda *a: post(
                self._progressed.emit, *a))
        except UserError as exc:
            post(self._done.emit, name, str(exc))
        except Exception as exc:
            log.exception("model download failed")
            post(self._done.emit, name, f"internal error: {exc}")
        else:
            post(self._done.emit, name, "")

    def _on_self_progressed(self, filename: str, done: int, total: int) -> None:
        if total > 0:
            self.progress.setRange(0, 1000)
            self.progress.setValue(round(1000 * done / total))
            self.progress.setFormat(f"{filename}: %p%")

    def _on_self_done(self, name: str, error: str) -> None:

        self.progress.setVisible(False)
        self.download_button.setEnabled(True)
        self.refresh()
        if error:
            QMessageBox.warning(self, "Download failed", error)
