"""Inspector: the selected clip (name, range, prompt) and its restoration settings.

Settings edit either the project defaults or, with "Override for this clip", only the selected
clip. The widget shows values and reports edits; it never writes to the project itself.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from seedvr_desktop.engine.registry import BUILTIN_ENGINES
from seedvr_desktop.project.model import COLOR_FIX_MODES, PRECISIONS, RestoreSettings

SIZE_RULES = ("Engine default", "Scale", "Short side")


class InspectorWidget(QWidget):
    """Form for one clip and the restoration settings that apply to it."""

    clip_renamed = Signal(str, str)  # clip id, name
    prompt_changed = Signal(str, str)  # clip id, prompt
    restore_edited = Signal(object, bool)  # RestoreSettings, for this clip only

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("inspector")
        self._clip_id = ""
        self._loading = False
        self._defaults = RestoreSettings()

        clip_box = QGroupBox("Clip")
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("Clip name")
        self.range_label = QLabel("—")
        self.prompt_edit = QLineEdit()
        self.prompt_edit.setPlaceholderText("Optional description for SeedVR engines")
        clip_form = QFormLayout(clip_box)
        clip_form.addRow("Name", self.name_edit)
        clip_form.addRow("Range", self.range_label)
        clip_form.addRow("Prompt", self.prompt_edit)

        restore_box = QGroupBox("Restoration")
        self.override_check = QCheckBox("Override for this clip")
        self.override_check.setToolTip("Unchecked: changes apply to every clip (project defaults)")
        self.engine_combo = QComboBox()
        self.engine_combo.addItems(["auto", *BUILTIN_ENGINES])
        self.size_combo = QComboBox()
        self.size_combo.addItems(SIZE_RULES)
        self.scale_spin = QDoubleSpinBox()
        self.scale_spin.setRange(0.25, 8.0)
        self.scale_spin.setSingleStep(0.5)
        self.scale_spin.setValue(2.0)
        self.scale_spin.setSuffix(" ×")
        self.short_spin = QSpinBox()
        self.short_spin.setRange(16, 8192)
        self.short_spin.setValue(1080)
        self.short_spin.setSuffix(" px")
        self.color_combo = QComboBox()
        self.color_combo.addItems(list(COLOR_FIX_MODES))
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.chunk_spin = _optional_spin(0, 1024, "engine default")
        self.overlap_spin = _optional_spin(-1, 256, "engine default")
        self.precision_combo = QComboBox()
        self.precision_combo.addItems(list(PRECISIONS))
        self.strength_spin = QDoubleSpinBox()
        self.strength_spin.setRange(-0.01, 10.0)
        self.strength_spin.setSingleStep(0.1)
        self.strength_spin.setSpecialValueText("engine default")
        self.strength_spin.setValue(-0.01)
        form = QFormLayout(restore_box)
        form.addRow(self.override_check)
        form.addRow("Engine", self.engine_combo)
        form.addRow("Output size", self.size_combo)
        form.addRow("Scale", self.scale_spin)
        form.addRow("Short side", self.short_spin)
        form.addRow("Colour fix", self.color_combo)
        form.addRow("Seed", self.seed_spin)
        form.addRow("Chunk length", self.chunk_spin)
        form.addRow("Overlap", self.overlap_spin)
        form.addRow("Precision", self.precision_combo)
        form.addRow("Strength", self.strength_spin)

        layout = QVBoxLayout(self)
        layout.addWidget(clip_box)
        layout.addWidget(restore_box)
        layout.addStretch(1)

        self.name_edit.editingFinished.connect(self._on_name_edit_finished)
        self.prompt_edit.editingFinished.connect(self._on_prompt_edit_finished)
        for combo in (self.engine_combo, self.size_combo, self.color_combo, self.precision_combo):
            combo.currentIndexChanged.connect(self._on_setting_changed)
        for spin in (self.scale_spin, self.short_spin, self.seed_spin, self.chunk_spin,
                     self.overlap_spin, self.strength_spin):
            spin.editingFinished.connect(self._on_setting_changed)
        self.override_check.toggled.connect(self._on_override_toggled)
        self.set_clip(None, RestoreSettings(), RestoreSettings(), overridden=False)

    # ---------------------------------------------------------------- content
    def set_engines(self, names: list[str]) -> None:
        current = self.engine_combo.currentText()
        self._loading = True
        self.engine_combo.clear()
        self.engine_combo.addItems(names)
        self.engine_combo.setCurrentText(current if current in names else names[0])
        self._loading = False

    def set_clip(
        self,
        clip: Any | None,  # project.model.Clip
        defaults: RestoreSettings,
        effective: RestoreSettings,
        *,
        overridden: bool,
        range_text: str = "—",
    ) -> None:
        """Show `clip` (None: project defaults only) with the settings that apply to it."""
        self._loading = True
        try:
            self._defaults = defaults
            self._clip_id = clip.id if clip is not None else ""
            for w in (self.name_edit, self.prompt_edit, self.override_check):
                w.setEnabled(clip is not None)
            self.name_edit.setText(clip.name if clip is not None else "")
            self.prompt_edit.setText(clip.prompt if clip is not None else "")
            self.range_label.setText(range_text)
            self.override_check.setChecked(overridden)
            self._show_settings(effective)
        finally:
            self._loading = False

    def _show_settings(self, s: RestoreSettings) -> None:
        if self.engine_combo.findText(s.engine) < 0:
            self.engine_combo.addItem(s.engine)
        self.engine_combo.setCurrentText(s.engine)
        rule = 1 if s.scale is not None else 2 if s.short_side is not None else 0
        self.size_combo.setCurrentIndex(rule)
        if s.scale is not None:
            self.scale_spin.setValue(s.scale)
        if s.short_side is not None:
            self.short_spin.setValue(s.short_side)
        self.scale_spin.setEnabled(rule == 1)
        self.short_spin.setEnabled(rule == 2)
        self.color_combo.setCurrentText(s.color_fix)
        self.seed_spin.setValue(s.seed)
        self.chunk_spin.setValue(s.chunk_length or 0)
        self.overlap_spin.setValue(-1 if s.overlap is None else s.overlap)
        self.precision_combo.setCurrentText(s.precision)
        self.strength_spin.setValue(-0.01 if s.strength is None else s.strength)

    def settings(self) -> RestoreSettings:
        """The settings the form shows now (fields the form lacks come from the defaults)."""
        rule = self.size_combo.currentIndex()
        return dataclasses.replace(
            self._defaults,
            engine=self.engine_combo.currentText(),
            scale=self.scale_spin.value() if rule == 1 else None,
            short_side=self.short_spin.value() if rule == 2 else None,
            size=None,
            color_fix=self.color_combo.currentText(),
            seed=self.seed_spin.value(),
            chunk_length=self.chunk_spin.value() or None,
            overlap=None if self.overlap_spin.value() < 0 else self.overlap_spin.value(),
            precision=self.precision_combo.currentText(),
            strength=None if self.strength_spin.value() < 0 else self.strength_spin.value(),
        )

    # ---------------------------------------------------------------- slots
    def _on_name_edit_finished(self) -> None:
        if not self._loading and self._clip_id:
            self.clip_renamed.emit(self._clip_id, self.name_edit.text().strip())

    def _on_prompt_edit_finished(self) -> None:
        if not self._loading and self._clip_id:
            self.prompt_changed.emit(self._clip_id, self.prompt_edit.text().strip())

    def _on_setting_changed(self, *_: object) -> None:
        rule = self.size_combo.currentIndex()
        self.scale_spin.setEnabled(rule == 1)
        self.short_spin.setEnabled(rule == 2)
        if not self._loading:
            self.restore_edited.emit(self.settings(), self.override_check.isChecked())

    def _on_override_toggled(self, checked: bool) -> None:
        if self._loading or not self._clip_id:
            return
        # Unchecking drops the clip's overrides: it follows the project defaults again.
        self.restore_edited.emit(self.settings() if checked else self._defaults, True)


def _optional_spin(minimum: int, maximum: int, special: str) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(minimum, maximum)
    spin.setSpecialValueText(special)  # shown at the minimum, which stands for "None"
    spin.setAlignment(Qt.AlignmentFlag.AlignRight)
    return spin
