"""Export queue: one row per job with progress, speed and ETA, and the controls for it.

Rows are keyed by the worker's job id; the panel learns about progress through plain calls from
the main window (which listens to the worker), and asks for actions through signals. A job
rendered on a cluster gets a row per cluster worker under its own: the segment it restores now
and its speed (from the job's ClusterProgressEvents).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from seedvr_desktop.cluster.progress import WorkerProgress, worker_rows
from seedvr_desktop.engine.base import ProgressEvent
from seedvr_desktop.ui.timecode import clock

COLUMNS = ("Job", "Status", "Progress", "Speed", "ETA")
ACTIVE = ("queued", "running", "paused")


@dataclass
class QueueEntry:
    job_id: str
    name: str
    output: Path
    status: str = "queued"  # queued | running | paused | done | failed | cancelled
    message: str = ""
    fraction: float = 0.0


class QueuePanel(QWidget):
    """Jobs waiting, running and finished."""

    export_requested = Signal()
    pause_requested = Signal(str)
    resume_requested = Signal(str)
    cancel_requested = Signal(str)
    open_folder_requested = Signal(str)  # folder path

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("queuePanel")
        self.entries: dict[str, QueueEntry] = {}
        self._items: dict[str, QTreeWidgetItem] = {}
        self._bars: dict[str, QProgressBar] = {}
        self._worker_items: dict[str, dict[str, QTreeWidgetItem]] = {}  # job -> label -> row

        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        # Room for "12345/67890  (100%)" on one line in the progress bar.
        self.tree.setColumnWidth(COLUMNS.index("Progress"), 170)
        self.tree.itemSelectionChanged.connect(self._update_buttons)

        self.export_button = QPushButton("Export…")
        self.export_button.setObjectName("exportButton")
        self.export_button.setToolTip("Choose export settings and queue the clips")
        self.pause_button = QPushButton("Pause")
        self.resume_button = QPushButton("Resume")
        self.cancel_button = QPushButton("Cancel")
        self.folder_button = QPushButton("Open folder")
        self.clear_button = QPushButton("Clear finished")
        self.export_button.clicked.connect(self.export_requested)
        self.pause_button.clicked.connect(lambda: self._emit_selected(self.pause_requested))
        self.resume_button.clicked.connect(lambda: self._emit_selected(self.resume_requested))
        self.cancel_button.clicked.connect(lambda: self._emit_selected(self.cancel_requested))
        self.folder_button.clicked.connect(self._on_folder_button_clicked)
        self.clear_button.clicked.connect(self.clear_finished)

        buttons = QHBoxLayout()
        for button in (self.export_button, self.pause_button, self.resume_button,
                       self.cancel_button, self.folder_button, self.clear_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(buttons)
        layout.addWidget(self.tree)
        self._update_buttons()

    # ---------------------------------------------------------------- rows
    def add_job(self, job_id: str, name: str, output: Path) -> None:
        entry = QueueEntry(job_id, name, Path(output))
        self.entries[job_id] = entry
        item = QTreeWidgetItem([name, "queued", "", "", ""])
        item.setToolTip(0, str(output))
        item.setData(0, Qt.ItemDataRole.UserRole, job_id)
        self.tree.addTopLevelItem(item)
        bar = QProgressBar()
        bar.setRange(0, 1000)
        bar.setTextVisible(True)
        self.tree.setItemWidget(item, 2, bar)
        self._items[job_id], self._bars[job_id] = item, bar
        if self.tree.currentItem() is None:
            self.tree.setCurrentItem(item)
        self._update_buttons()

    def update_progress(self, job_id: str, event: ProgressEvent) -> None:
        entry, item = self.entries.get(job_id), self._items.get(job_id)
        if entry is None or item is None:
            return
        entry.fraction = event.fraction
        self._bars[job_id].setValue(round(event.fraction * 1000))
        self._bars[job_id].setFormat(f"{event.frames_done}/{event.frames_total}  (%p%)")
        item.setText(3, f"{event.fps:.1f} fps" if event.fps else "")
        item.setText(4, clock(event.eta_seconds) if event.eta_seconds is not None else "")
        workers = worker_rows(event)
        if workers:
            self._show_workers(job_id, workers)
        if event.stage not in ("done", "cancelled") and entry.status == "queued":
            self.set_status(job_id, "running")

    def _show_workers(self, job_id: str, workers: tuple[WorkerProgress, ...]) -> None:
        """A child row per cluster worker: label, what it does, its speed."""
        item = self._items[job_id]
        rows = self._worker_items.setdefault(job_id, {})
        for gone in set(rows) - {w.label for w in workers}:  # a dead worker, replaced
            item.removeChild(rows.pop(gone))
        for worker in workers:
            row = rows.get(worker.label)
            if row is None:
                row = QTreeWidgetItem([worker.label, "", "", "", ""])
                row.setData(0, Qt.ItemDataRole.UserRole, job_id)  # selects its job
                item.addChild(row)
                rows[worker.label] = row
            row.setText(1, worker.text)
            row.setText(2, f"{worker.segments_done} done")
            row.setText(3, f"{worker.fps:.1f} fps" if worker.fps else "")
        self.tree.setRootIsDecorated(True)
        item.setExpanded(True)

    def worker_rows(self, job_id: str) -> list[tuple[str, str, str]]:
        """(worker, what it does, speed) of a cluster job's worker rows, in order."""
        item = self._items.get(job_id)
        if item is None:
            return []
        rows = [item.child(i) for i in range(item.childCount())]
        return [(row.text(0), row.text(1), row.text(3)) for row in rows if row is not None]

    def set_status(self, job_id: str, status: str, message: str = "") -> None:
        entry, item = self.entries.get(job_id), self._items.get(job_id)
        if entry is None or item is None:
            return
        entry.status, entry.message = status, message
        item.setText(1, f"{status}: {message}" if message else status)
        item.setToolTip(1, message or status)
        if status == "done":
            self._bars[job_id].setValue(1000)
            item.setText(4, "")
        if status not in ACTIVE:  # the workers are no longer this job's
            for row in self._worker_items.pop(job_id, {}).values():
                item.removeChild(row)
        self._update_buttons()

    def active_jobs(self) -> list[str]:
        return [e.job_id for e in self.entries.values() if e.status in ACTIVE]

    def select(self, job_id: str) -> None:
        item = self._items.get(job_id)
        if item is not None:
            self.tree.setCurrentItem(item)

    def selected_job(self) -> str | None:
        item = self.tree.currentItem()
        return item.data(0, Qt.ItemDataRole.UserRole) if item is not None else None

    def clear_finished(self) -> None:
        for job_id in [j for j, e in self.entries.items() if e.status not in ACTIVE]:
            item = self._items.pop(job_id)
            self.tree.takeTopLevelItem(self.tree.indexOfTopLevelItem(item))
            del self.entries[job_id], self._bars[job_id]
            self._worker_items.pop(job_id, None)
        self._update_buttons()

    # ---------------------------------------------------------------- buttons
    def _emit_selected(self, signal) -> None:
        job_id = self.selected_job()
        if job_id is not None:
            signal.emit(job_id)

    def _on_folder_button_clicked(self) -> None:
        job_id = self.selected_job()
        if job_id is not None:
            self.open_folder_requested.emit(str(self.entries[job_id].output.parent))

    def _update_buttons(self) -> None:
        job_id = self.selected_job()
        status = self.entries[job_id].status if job_id in self.entries else ""
        self.pause_button.setEnabled(status in ("queued", "running"))
        self.resume_button.setEnabled(status == "paused")
        self.cancel_button.setEnabled(status in ACTIVE)
        self.folder_button.setEnabled(bool(job_id))
        self.clear_button.setEnabled(any(e.status not in ACTIVE for e in self.entries.values()))
