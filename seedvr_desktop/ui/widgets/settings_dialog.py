"""Preferences: models folder and model manager, device, precision, memory budget, defaults.

Model downloads run on a plain Python thread (they are network- and disk-bound and know nothing
of Qt); progress comes back through a `Mailbox` to the GUI thread. Closing the dialog does not
stop a download.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from seedvr_desktop.settings import Settings
from seedvr_desktop.ui.mailbox import Mailbox
from seedvr_desktop.vocab import PRECISIONS

log = logging.getLogger(__name__)

# Kept here rather than imported from engine.device, which imports torch at module level.
DEVICE_CHOICES = ("auto", "cuda", "cpu", "mps")
PRECISION_CHOICES = PRECISIONS


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
        from PySide6.QtWidgets import QMessageBox

        self.progress.setVisible(False)
        self.download_button.setEnabled(True)
        self.refresh()
        if error:
            QMessageBox.warning(self, "Download failed", error)


class SettingsDialog(QDialog):
    """Edits a copy of `Settings`; `result_settings()` returns it after Accept."""

    def __init__(self, settings: Settings, engines: list[str], parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("settingsDialog")
        self.setWindowTitle("Settings")
        self._settings = settings
        self.models_edit = QLineEdit(settings.models_dir)
        self.models_edit.setPlaceholderText(str(settings.resolved_models_dir()))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._on_browse_clicked)
        models_row = QHBoxLayout()
        models_row.addWidget(self.models_edit, 1)
        models_row.addWidget(browse)
        self.device_combo = QComboBox()
        self.device_combo.addItems(list(DEVICE_CHOICES))
        self.device_combo.setCurrentText(settings.device)
        self.precision_combo = QComboBox()
        self.precision_combo.addItems(list(PRECISION_CHOICES))
        self.precision_combo.setCurrentText(settings.precision)
        self.memory_spin = QDoubleSpinBox()
        self.memory_spin.setRange(0.0, 1024.0)
        self.memory_spin.setSuffix(" GB")
        self.memory_spin.setSpecialValueText("use what the device reports as free")
        self.memory_spin.setValue(settings.memory_budget_gb)
        self.engine_combo = QComboBox()
        self.engine_combo.addItems(engines or ["auto"])
        self.engine_combo.setCurrentText(settings.default_engine)

        form = QFormLayout()
        form.addRow("Models folder", models_row)
        form.addRow("Device", self.device_combo)
        form.addRow("Precision", self.precision_combo)
        form.addRow("Memory budget", self.memory_spin)
        form.addRow("Default engine", self.engine_combo)
        models_box = QGroupBox("Models")
        box_layout = QVBoxLayout(models_box)
        self.manager = ModelManager(settings.resolved_models_dir())
        box_layout.addWidget(self.manager)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(models_box)
        layout.addWidget(buttons)
        self.resize(620, 520)

    def _on_browse_clicked(self) -> None:
        start = self.models_edit.text() or str(self._settings.resolved_models_dir())
        folder = QFileDialog.getExistingDirectory(self, "Models folder", start)
        if folder:
            self.models_edit.setText(folder)
            self.manager.models_dir = Path(folder)
            self.manager.refresh()

    def result_settings(self) -> Settings:
        return dataclasses.replace(
            self._settings,
            models_dir=self.models_edit.text().strip(),
            device=self.device_combo.currentText(),
            precision=self.precision_combo.currentText(),
            memory_budget_gb=self.memory_spin.value(),
            default_engine=self.engine_combo.currentText(),
        )
