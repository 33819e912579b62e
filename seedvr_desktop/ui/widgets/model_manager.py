"""The model manager: the models with their install state, a format per model, a Download
button, and which model and format this machine should use.

Each row is one official model; its Format box offers the publisher's files and the community
variants of the catalogue (fp16, fp8, GGUF), each installed in a folder of its own. The
recommendation (`engine/seedvr/recommend.py`, the memory planner on this machine's GPU and RAM)
is worked out when the manager is first shown and picks the recommended format.

Downloads and the recommendation run on plain Python threads (they are network-, disk- or
CPU-bound and know nothing of Qt); results come back through a `Mailbox` to the GUI thread.
Closing the settings dialog does not stop a download.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
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


FORMAT_COLUMN = 3


class ModelManager(QWidget):
    """Table of the models with install state and format, a Download button and the
    recommendation for this machine."""

    _progressed = Signal(str, int, int)  # file, bytes done, bytes total
    _done = Signal(str, str)  # model name, error ("" on success)
    recommended = Signal(object)  # recommend.Recommendation, once worked out

    def __init__(self, models_dir: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.models_dir = models_dir
        self.recommendation: object | None = None  # recommend.Recommendation
        self._recommending = False
        self.advice = QLabel("")
        self.advice.setWordWrap(True)
        self.advice.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Model", "Size", "State", "Format"])
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
        layout.addWidget(self.advice)
        layout.addWidget(self.table)
        layout.addLayout(row)
        self.refresh()

    def refresh(self) -> None:
        from seedvr_desktop.engine.seedvr import catalogue

        chosen = dict(self.selected(r) for r in range(self.table.rowCount()))
        current = self.table.currentRow()
        self.table.setRowCount(0)
        for name, model in catalogue.CATALOG.items():
            r = self.table.rowCount()
            self.table.insertRow(r)
            item = QTableWidgetItem(name)
            item.setToolTip(model.description)
            item.setData(Qt.ItemDataRole.UserRole, name)
            self.table.setItem(r, 0, item)
            self.table.setItem(r, 1, QTableWidgetItem(""))
            self.table.setItem(r, 2, QTableWidgetItem(""))
            formats = QComboBox()
            formats.addItem("official", None)
            for v in catalogue.variants_of(name):
                formats.addItem(v.name, v.name)
                formats.setItemData(formats.count() - 1, f"{v.repo_id}/{v.dit_file}",
                                    Qt.ItemDataRole.ToolTipRole)
            formats.setEnabled(formats.count() > 1)
            formats.setCurrentIndex(max(formats.findData(chosen.get(name)), 0))
            formats.currentIndexChanged.connect(
                lambda _i, row=r: self._show_state(row))
            self.table.setCellWidget(r, FORMAT_COLUMN, formats)
            self._show_state(r)
        if self.recommendation is not None and not chosen:
            self._apply_recommendation(self.recommendation)
        elif 0 <= current < self.table.rowCount():
            self.table.selectRow(current)

    def _item(self, row: int, column: int) -> QTableWidgetItem:
        item = self.table.item(row, column)
        assert item is not None  # refresh() fills every cell
        return item

    def _formats(self, row: int) -> QComboBox:
        box = self.table.cellWidget(row, FORMAT_COLUMN)
        assert isinstance(box, QComboBox)
        return box

    def selected(self, row: int) -> tuple[str, str | None]:
        """(model, variant or None for the official files) of a row."""
        name = str(self._item(row, 0).data(Qt.ItemDataRole.UserRole))
        variant = self._formats(row).currentData()
        return name, (str(variant) if variant else None)

    def _show_state(self, row: int) -> None:
        from seedvr_desktop.engine.seedvr import store as model_store

        name, variant = self.selected(row)
        v = model_store.get_variant(name, variant)
        gb = (v.approx_gb if v else model_store.get_model(name).approx_gb)
        self._item(row, 1).setText(f"{gb:.1f} GB")
        installed = model_store.is_installed(name, self.models_dir, variant)
        self._item(row, 2).setText("installed" if installed else "not installed")

    # ------------------------------------------------------------------ recommendation
    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self.recommendation is None:
            self.recommend()

    def recommend(self) -> None:
        """Work out the recommendation for this machine in the background (planner: ~1 s)."""
        if self._recommending:
            return
        self._recommending = True
        self.advice.setText("Checking which model fits this machine's memory...")
        # Not a daemon: quitting while it runs waits for it (seconds) instead of tearing the
        # interpreter down under torch, which aborts the process on the way out.
        threading.Thread(target=self._recommend, name="model-recommendation").start()

    def _recommend(self) -> None:
        from seedvr_desktop.engine.seedvr import recommend

        try:
            rec: object = recommend.recommend(recommend.detect())
        except Exception as exc:
            if not threading.main_thread().is_alive():  # the app quit meanwhile: nobody to tell
                log.debug("model recommendation stopped by the app quitting: %s", exc)
                return
            log.exception("model recommendation failed")
            rec = exc
        self._mailbox.post(self._on_recommended, rec)

    def _on_recommended(self, rec: object) -> None:
        self._recommending = False
        if isinstance(rec, Exception):
            self.advice.setText(f"Could not work out a recommendation: {rec}")
            return
        self.recommendation = rec
        self._apply_recommendation(rec)
        self.recommended.emit(rec)

    def _apply_recommendation(self, rec: object) -> None:
        from seedvr_desktop.engine.seedvr.recommend import Recommendation

        assert isinstance(rec, Recommendation)
        self.advice.setText(f"Recommended: {rec.line}")
        if rec.choice is None:
            return
        for r in range(self.table.rowCount()):
            if self._item(r, 0).data(Qt.ItemDataRole.UserRole) == rec.choice.model:
                box = self._formats(r)
                i = box.findText(rec.choice.variant)
                box.setCurrentIndex(max(i, 0))
                self.table.selectRow(r)
                self._item(r, 0).setToolTip(f"recommended for this machine: {rec.line}")

    # ------------------------------------------------------------------ download
    def _on_download_button_clicked(self) -> None:
        row = self.table.currentRow()
        if row < 0 or (self._thread is not None and self._thread.is_alive()):
            return
        name, variant = self.selected(row)
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.download_button.setEnabled(False)
        self._thread = threading.Thread(target=self._download, args=(name, variant), daemon=True)
        self._thread.start()

    def _download(self, name: str, variant: str | None = None) -> None:
        from seedvr_desktop.engine.seedvr import store as model_store
        from seedvr_desktop.errors import UserError

        post = self._mailbox.post
        try:
            model_store.download(name, variant=variant, root=self.models_dir,
                                 progress=lambda *a: post(self._progressed.emit, *a))
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
