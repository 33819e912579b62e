"""The viewer with its control bar: compare mode, zoom (fit, 1:1) and the Preview button."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from seedvr_desktop.ui.widgets.viewer import CompareMode, ViewerWidget

MODE_LABELS = (
    (CompareMode.SPLIT, "Split", "Wipe between original (left) and restored (right)"),
    (CompareMode.SIDE_BY_SIDE, "Side by side", "Original and restored next to each other"),
    (CompareMode.TOGGLE, "Toggle", "Restored; hold B to see the original"),
    (CompareMode.ORIGINAL, "Original", "Only the original"),
)


class ViewerPanel(QWidget):
    """Hosts `ViewerWidget` and the buttons that act on it."""

    preview_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = ViewerWidget(self)
        self._mode_buttons: dict[CompareMode, QToolButton] = {}
        group = QButtonGroup(self)
        bar = QHBoxLayout()
        bar.setContentsMargins(4, 2, 4, 2)
        for mode, text, tip in MODE_LABELS:
            button = QToolButton(self)
            button.setText(text)
            button.setToolTip(tip)
            button.setCheckable(True)
            button.setObjectName(f"mode_{mode.value}")
            button.clicked.connect(lambda _=False, m=mode: self.viewer.set_mode(m))
            group.addButton(button)
            bar.addWidget(button)
            self._mode_buttons[mode] = button
        bar.addSpacing(12)
        fit, actual = QToolButton(self), QToolButton(self)
        fit.setText("Fit")
        fit.setToolTip("Fit the picture in the viewer (F)")
        actual.setText("1:1")
        actual.setToolTip("One source pixel per screen pixel (1)")
        fit.clicked.connect(self.viewer.fit)
        actual.clicked.connect(self.viewer.actual_size)
        bar.addWidget(fit)
        bar.addWidget(actual)
        bar.addStretch(1)
        self.status_label = QLabel("")
        bar.addWidget(self.status_label)
        self.preview_button = QPushButton("Preview")
        self.preview_button.setObjectName("previewButton")
        self.preview_button.setToolTip(
            "Restore a short range around the playhead to compare before and after (P)"
        )
        self.preview_button.clicked.connect(self.preview_requested)
        bar.addWidget(self.preview_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(bar)
        layout.addWidget(self.viewer, 1)
        self.viewer.mode_changed.connect(self._on_viewer_mode_changed)
        self._on_viewer_mode_changed(self.viewer.mode.value)

    def _on_viewer_mode_changed(self, mode: str) -> None:
        self._mode_buttons[CompareMode(mode)].setChecked(True)

    def set_busy(self, busy: bool) -> None:
        self.preview_button.setEnabled(not busy)
        self.status_label.setText("Restoring preview…" if busy else "")
