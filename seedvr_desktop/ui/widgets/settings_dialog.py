"""Preferences: models folder and model manager, device, precision, memory budget, defaults,
and where exports render ("Render on": this computer, its GPUs, or a Ray cluster)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from seedvr_desktop.settings import RENDER_ON, Settings
from seedvr_desktop.ui.widgets.model_manager import ModelManager
from seedvr_desktop.vocab import OFFLOAD_MODES, PRECISIONS

log = logging.getLogger(__name__)

# Kept here rather than imported from engine.device, which imports torch at module level.
DEVICE_CHOICES = ("auto", "cuda", "cpu", "mps")
PRECISION_CHOICES = PRECISIONS
# What the "Render on" combo shows for each value of Settings.render_on (settings.RENDER_ON).
RENDER_ON_LABELS = {
    "local": "This computer",
    "gpus": "All GPUs here",
    "cluster": "Ray cluster at …",
}
assert set(RENDER_ON_LABELS) == set(RENDER_ON)
OFFLOAD_LABELS = {"auto": "Automatic (memory plan)", "none": "Keep on the GPU",
                  "dit": "To RAM during the VAE", "stream": "Stream blocks from RAM"}
assert set(OFFLOAD_LABELS) == set(OFFLOAD_MODES)


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
        self.offload_combo = QComboBox()
        self.offload_combo.setObjectName("offloadCombo")
        for value in OFFLOAD_MODES:
            self.offload_combo.addItem(OFFLOAD_LABELS[value], value)
        self.offload_combo.setCurrentIndex(max(0, self.offload_combo.findData(settings.offload)))
        self.offload_combo.setToolTip("Where SeedVR's transformer waits while the VAE runs; "
                                      "Automatic follows the memory plan for your card")
        self.compile_check = QCheckBox("Compile the transformer (torch.compile: the first "
                                       "chunk takes minutes, later ones run faster)")
        self.compile_check.setObjectName("compileCheck")
        self.compile_check.setChecked(settings.compile_dit)
        self.engine_combo = QComboBox()
        self.engine_combo.addItems(engines or ["auto"])
        self.engine_combo.setCurrentText(settings.default_engine)
        self.render_combo = QComboBox()
        self.render_combo.setObjectName("renderOnCombo")
        for value in RENDER_ON:
            self.render_combo.addItem(RENDER_ON_LABELS[value], value)
        self.render_combo.setToolTip(
            "Where exports are restored: here, on every GPU of this computer (each GPU a "
            "worker), or on a Ray cluster; the file written is the same")
        self.address_edit = QLineEdit(settings.cluster_address)
        self.address_edit.setObjectName("clusterAddressEdit")
        self.address_edit.setPlaceholderText("ray://HOST:10001, HOST:6379 or auto")
        self.render_combo.currentIndexChanged.connect(self._on_render_changed)
        self.render_combo.setCurrentIndex(max(0, self.render_combo.findData(settings.render_on)))
        self._on_render_changed()
        render_row = QHBoxLayout()
        render_row.addWidget(self.render_combo)
        render_row.addWidget(self.address_edit, 1)

        form = QFormLayout()
        form.addRow("Models folder", models_row)
        form.addRow("Device", self.device_combo)
        form.addRow("Precision", self.precision_combo)
        form.addRow("Memory budget", self.memory_spin)
        form.addRow("DiT offload", self.offload_combo)
        form.addRow("", self.compile_check)
        form.addRow("Default engine", self.engine_combo)
        form.addRow("Render on", render_row)
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

    def render_on(self) -> str:
        return str(self.render_combo.currentData())

    def _on_render_changed(self) -> None:
        self.address_edit.setEnabled(self.render_on() == "cluster")

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
            offload=str(self.offload_combo.currentData()),
            compile_dit=self.compile_check.isChecked(),
            default_engine=self.engine_combo.currentText(),
            render_on=self.render_on(),
            cluster_address=self.address_edit.text().strip(),
        )
