"""Settings > DiT offload and torch.compile: stored, edited in the dialog, and what a SeedVR
engine uses when the job does not say (a CLI flag still wins)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seedvr_desktop.settings import SETTINGS_FILE, Settings, load_settings, save_settings
from seedvr_desktop.vocab import OFFLOAD_MODES

pytestmark = pytest.mark.gui


def test_the_dialog_edits_offload_and_compile(qtbot, tmp_path: Path) -> None:
    from seedvr_desktop.ui.widgets.settings_dialog import SettingsDialog

    dialog = SettingsDialog(Settings(models_dir=str(tmp_path)), ["auto"])
    qtbot.addWidget(dialog)
    combo = dialog.offload_combo
    assert [combo.itemData(i) for i in range(combo.count())] == list(OFFLOAD_MODES)
    assert combo.currentData() == "auto" and not dialog.compile_check.isChecked()
    combo.setCurrentIndex(combo.findData("stream"))
    dialog.compile_check.setChecked(True)
    result = dialog.result_settings()
    assert (result.offload, result.compile_dit) == ("stream", True)
    again = SettingsDialog(result, ["auto"])
    qtbot.addWidget(again)
    assert again.offload_combo.currentData() == "stream" and again.compile_check.isChecked()


def test_a_stored_offload_round_trips_and_a_bad_one_falls_back(tmp_path: Path) -> None:
    save_settings(Settings(offload="dit", compile_dit=True), tmp_path)
    loaded = load_settings(tmp_path)
    assert (loaded.offload, loaded.compile_dit) == ("dit", True)
    (tmp_path / SETTINGS_FILE).write_text(json.dumps({"offload": "attic"}), encoding="utf-8")
    assert load_settings(tmp_path).offload == "auto"


def test_the_engine_follows_the_settings_unless_told_otherwise() -> None:
    from seedvr_desktop.engine.seedvr.engine import SeedVREngine

    save_settings(Settings(offload="dit", compile_dit=True))  # the test's own config folder
    engine = SeedVREngine("seedvr2-3b")
    assert (engine.offload, engine.compile) == ("dit", True)
    explicit = SeedVREngine("seedvr2-3b", offload="none", compile=False)
    assert (explicit.offload, explicit.compile) == ("none", False)
