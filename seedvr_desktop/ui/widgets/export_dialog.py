"""Export dialog: a preset for people who do not want to choose codecs, Custom for those who do.

Presets only fill in the encoder fields; captions, audio and the output folder stay the user's
choice in every preset because they depend on the tape, not on the codec.
"""

from __future__ import annotations

import dataclasses

from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from seedvr_desktop.project.model import (
    AUDIO_MODES,
    CONTAINERS,
    SIDECAR_FORMATS,
    VIDEO_CODECS,
    ExportSettings,
)

PRESET_SHARE = "Share: H.264 MP4"
PRESET_ARCHIVE = "Archive: FFV1 or ProRes"
PRESET_CUSTOM = "Custom"
PRESETS = (PRESET_SHARE, PRESET_ARCHIVE, PRESET_CUSTOM)
ARCHIVE_CODECS = {"FFV1 (lossless, MKV)": ("mkv", "ffv1"), "ProRes 422 HQ (MOV)": ("mov", "prores")}
CAPTION_LABELS = {
    "none": "No captions",
    "soft": "Subtitle track (can be switched off)",
    "burned": "Burned into the picture",
    "sidecar": "Separate file beside the video",
}
AUDIO_LABELS = {"copy": "Copy unchanged", "transcode": "Re-encode (AAC/FLAC)", "none": "No audio"}


def preset_settings(preset: str, base: ExportSettings, archive_codec: str = "") -> ExportSettings:
    """`base` with the encoder fields a preset fixes (Custom changes nothing)."""
    if preset == PRESET_SHARE:
        return dataclasses.replace(base, container="mp4", codec="h264", crf=None, bitrate_kbps=None,
                                   preset=None, pixel_format=None, bit_depth=8)
    if preset == PRESET_ARCHIVE:
        container, codec = ARCHIVE_CODECS.get(archive_codec, ("mkv", "ffv1"))
        return dataclasses.replace(base, container=container, codec=codec, crf=None,
                                   bitrate_kbps=None, preset=None, pixel_format=None, bit_depth=10)
    return base


def guess_preset(settings: ExportSettings) -> tuple[str, str]:
    """Which preset (and archive codec) describes `settings`, else Custom."""
    if (settings.container, settings.codec, settings.bit_depth) == ("mp4", "h264", 8):
        return PRESET_SHARE, ""
    for label, pair in ARCHIVE_CODECS.items():
        if (settings.container, settings.codec) == pair and settings.bit_depth == 10:
            return PRESET_ARCHIVE, label
    return PRESET_CUSTOM, ""


class ExportDialog(QDialog):
    """Choose export settings and which clips to queue."""

    def __init__(self, settings: ExportSettings, *, has_selection: bool,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("exportDialog")
        self.setWindowTitle("Export")
        self._base = settings
        self.preset_combo = QComboBox()
        self.preset_combo.addItems(list(PRESETS))
        self.archive_combo = QComboBox()
        self.archive_combo.addItems(list(ARCHIVE_CODECS))
        self.container_combo = QComboBox()
        self.container_combo.addItems(list(CONTAINERS))
        self.codec_combo = QComboBox()
        self.codec_combo.addItems(list(VIDEO_CODECS))
        self.crf_spin = QSpinBox()
        self.crf_spin.setRange(-1, 63)
        self.crf_spin.setSpecialValueText("codec default")
        self.depth_combo = QComboBox()
        self.depth_combo.addItems(["8", "10", "16"])
        self.audio_combo = _labelled_combo(AUDIO_MODES, AUDIO_LABELS)
        self.captions_combo = _labelled_combo(tuple(CAPTION_LABELS), CAPTION_LABELS)
        self.sidecar_combo = QComboBox()
        self.sidecar_combo.addItems(list(SIDECAR_FORMATS))
        self.folder_edit = QLineEdit(settings.output_folder)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._on_browse_clicked)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(browse)
        self.scope_selected = QRadioButton("Selected clip")
        self.scope_all = QRadioButton("All clips")
        group = QButtonGroup(self)
        group.addButton(self.scope_selected)
        group.addButton(self.scope_all)
        self.scope_selected.setEnabled(has_selection)
        (self.scope_selected if has_selection else self.scope_all).setChecked(True)
        scope_row = QHBoxLayout()
        scope_row.addWidget(self.scope_selected)
        scope_row.addWidget(self.scope_all)

        form = QFormLayout()
        form.addRow("Preset", self.preset_combo)
        form.addRow("Archive codec", self.archive_combo)
        form.addRow("Container", self.container_combo)
        form.addRow("Video codec", self.codec_combo)
        form.addRow("Quality (CRF)", self.crf_spin)
        form.addRow("Bit depth", self.depth_combo)
        form.addRow("Audio", self.audio_combo)
        form.addRow("Captions", self.captions_combo)
        form.addRow("Caption file", self.sidecar_combo)
        form.addRow("Output folder", folder_row)
        form.addRow("Export", scope_row)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Add to queue")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)
        self.setMinimumWidth(560)

        preset, archive = guess_preset(settings)
        self._show(settings)
        self.preset_combo.setCurrentText(preset)
        if archive:
            self.archive_combo.setCurrentText(archive)
        self.preset_combo.currentTextChanged.connect(self._on_preset_changed)
        self.archive_combo.currentTextChanged.connect(self._on_preset_changed)
        self.captions_combo.currentIndexChanged.connect(self._update_enabled)
        self._on_preset_changed()

    def _show(self, s: ExportSettings) -> None:
        self.container_combo.setCurrentText(s.container)
        self.codec_combo.setCurrentText(s.codec)
        self.crf_spin.setValue(-1 if s.crf is None else s.crf)
        self.depth_combo.setCurrentText(str(s.bit_depth))
        self.audio_combo.setCurrentIndex(max(0, self.audio_combo.findData(s.audio)))
        self.captions_combo.setCurrentIndex(max(0, self.captions_combo.findData(s.captions)))
        self.sidecar_combo.setCurrentText(s.sidecar_format)

    def _on_preset_changed(self, *_: object) -> None:
        preset = self.preset_combo.currentText()
        if preset != PRESET_CUSTOM:
            fixed = preset_settings(preset, self.settings(), self.archive_combo.currentText())
            self.container_combo.setCurrentText(fixed.container)
            self.codec_combo.setCurrentText(fixed.codec)
            self.crf_spin.setValue(-1)
            self.depth_combo.setCurrentText(str(fixed.bit_depth))
        self._update_enabled()

    def _update_enabled(self, *_: object) -> None:
        custom = self.preset_combo.currentText() == PRESET_CUSTOM
        for widget in (self.container_combo, self.codec_combo, self.crf_spin, self.depth_combo):
            widget.setEnabled(custom)
        self.archive_combo.setEnabled(self.preset_combo.currentText() == PRESET_ARCHIVE)
        self.sidecar_combo.setEnabled(self.captions_combo.currentData() == "sidecar")

    def _on_browse_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Output folder", self.folder_edit.text())
        if folder:
            self.folder_edit.setText(folder)

    def settings(self) -> ExportSettings:
        crf = self.crf_spin.value()
        return dataclasses.replace(
            self._base,
            container=self.container_combo.currentText(),
            codec=self.codec_combo.currentText(),
            crf=None if crf < 0 else crf,
            bit_depth=int(self.depth_combo.currentText()),
            audio=self.audio_combo.currentData(),
            captions=self.captions_combo.currentData(),
            sidecar_format=self.sidecar_combo.currentText(),
            output_folder=self.folder_edit.text().strip() or self._base.output_folder,
        )

    def export_all(self) -> bool:
        return self.scope_all.isChecked()


def _labelled_combo(values: tuple[str, ...], labels: dict[str, str]) -> QComboBox:
    combo = QComboBox()
    for value in values:
        combo.addItem(labels.get(value, value), value)
    return combo
