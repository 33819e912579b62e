"""Widgets on their own: viewer zoom/pan, timeline captions, export presets, start-up cost."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from seedvr_desktop.project.model import ExportSettings
from seedvr_desktop.ui.timeline_model import CaptionSpan, ClipSpan
from seedvr_desktop.ui.widgets.export_dialog import (
    PRESET_ARCHIVE,
    PRESET_CUSTOM,
    PRESET_SHARE,
    ExportDialog,
)
from seedvr_desktop.ui.widgets.timeline import TimelineWidget
from seedvr_desktop.ui.widgets.viewer import CompareMode, ViewerWidget
from tests.ui.test_window import _mouse

pytestmark = pytest.mark.gui


def _wheel(widget, pos: QPointF, steps: int) -> None:
    event = QWheelEvent(pos, widget.mapToGlobal(pos), QPoint(), QPoint(0, 120 * steps),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, event)


def test_viewer_zoom_and_pan_are_shared_by_both_sides(qtbot) -> None:
    viewer = ViewerWidget()
    qtbot.addWidget(viewer)
    viewer.resize(800, 400)
    image = np.zeros((100, 200, 3), np.uint8)
    viewer.set_frames(image, image)
    viewer.set_mode(CompareMode.SIDE_BY_SIDE)
    left, right = viewer.panes()
    fit = viewer.current_zoom()
    assert fit == pytest.approx(min(left.width() / 200, left.height() / 100))
    anchor = left.center() + QPointF(50, 20)
    before = viewer._widget_to_image(anchor, left)
    _wheel(viewer, anchor, 2)
    assert viewer.current_zoom() == pytest.approx(fit * 1.25**2)
    after = viewer._widget_to_image(anchor, left)
    assert (after.x(), after.y()) == pytest.approx((before.x(), before.y()), abs=1e-6)
    rl, rr = viewer.image_rect(left), viewer.image_rect(right)
    # Same region in both panes: identical offsets from each pane's own origin.
    assert rl.left() - left.left() == pytest.approx(rr.left() - right.left())
    assert rl.top() == pytest.approx(rr.top()) and rl.width() == pytest.approx(rr.width())
    _mouse(viewer, QEvent.Type.MouseButtonPress, 300, 200, True)
    _mouse(viewer, QEvent.Type.MouseMove, 340, 210, True)
    _mouse(viewer, QEvent.Type.MouseButtonRelease, 340, 210, False)
    moved_l, moved_r = viewer.image_rect(left), viewer.image_rect(right)
    assert moved_l.left() - rl.left() == pytest.approx(40, abs=0.5)
    assert moved_r.left() - rr.left() == pytest.approx(40, abs=0.5)
    viewer.actual_size()
    assert viewer.current_zoom() == pytest.approx(1 / viewer.devicePixelRatioF())
    viewer.fit()
    assert viewer.current_zoom() == pytest.approx(fit)


def _timeline(qtbot) -> TimelineWidget:
    tl = TimelineWidget()
    qtbot.addWidget(tl)
    tl.resize(900, 200)
    tl.show()
    clips = [ClipSpan("c1", "one", "/x/one.mp4", 0.0, 4.0, 25.0, 0, 100),
             ClipSpan("c2", "two", "/x/two.mp4", 4.0, 2.0, 25.0, 10, 60)]
    tl.set_items(clips, [CaptionSpan("c1", 0, 1.0, 2.0, "Hello")])
    tl.scale.pps, tl.scale.offset = 100.0, 0.0
    return tl


def test_caption_ends_drag_and_text_edits_become_signals(qtbot) -> None:
    tl = _timeline(qtbot)
    track = tl.caption_track
    y = track.height() / 2
    with qtbot.waitSignal(tl.caption_retimed) as blocker:
        _mouse(track, QEvent.Type.MouseButtonPress, 200, y, True)  # the caption's right end
        _mouse(track, QEvent.Type.MouseMove, 250, y, True)
        _mouse(track, QEvent.Type.MouseButtonRelease, 250, y, False)
    clip_id, index, start, end = blocker.args
    assert (clip_id, index) == ("c1", 0)
    assert (start, end) == pytest.approx((1.0, 2.5))
    with qtbot.waitSignal(tl.caption_retimed) as blocker:
        _mouse(track, QEvent.Type.MouseButtonPress, 150, y, True)  # the body: move it
        _mouse(track, QEvent.Type.MouseMove, 130, y, True)
        _mouse(track, QEvent.Type.MouseButtonRelease, 130, y, False)
    assert blocker.args[2:] == pytest.approx([0.8, 1.8])
    editor = track.edit_caption(tl.captions[0])
    editor.setText("Grandma's 80th")
    with qtbot.waitSignal(tl.caption_text_edited) as blocker:
        qtbot.keyClick(editor, Qt.Key.Key_Return)
    assert blocker.args == ["c1", 0, "Grandma's 80th"]
    with qtbot.waitSignal(tl.caption_add_requested) as blocker:
        qtbot.mouseDClick(track, Qt.MouseButton.LeftButton, pos=QPoint(500, round(y)))
    assert blocker.args[0] == pytest.approx(5.0)


def test_timeline_maps_time_to_frames_and_zooms_around_the_playhead(qtbot) -> None:
    tl = _timeline(qtbot)
    second = tl.clips[1]
    assert second.frame_at(4.0) == 10 and second.frame_at(5.999) == 59
    assert second.frame_at(100.0) == 59 and tl.clip_at(4.5) is second
    tl.set_playhead(3.0)
    x_before = tl.scale.x(3.0)
    tl.zoom(2.0)
    assert tl.scale.pps == pytest.approx(200.0)
    assert tl.scale.x(3.0) == pytest.approx(x_before)
    with qtbot.waitSignal(tl.scrubbed) as blocker:
        _mouse(tl.track, QEvent.Type.MouseButtonPress, tl.scale.x(4.5), 40, True)
    assert blocker.args[0] == pytest.approx(4.5, abs=0.01) and blocker.args[1] is True
    assert tl.selected_clip == "c2"


def test_export_presets_fill_codec_fields(qtbot) -> None:
    dialog = ExportDialog(ExportSettings(container="mkv", codec="h265"), has_selection=False)
    qtbot.addWidget(dialog)
    assert dialog.preset_combo.currentText() == PRESET_CUSTOM
    assert dialog.scope_all.isChecked() and not dialog.scope_selected.isEnabled()
    dialog.preset_combo.setCurrentText(PRESET_SHARE)
    s = dialog.settings()
    assert (s.container, s.codec, s.bit_depth) == ("mp4", "h264", 8)
    assert not dialog.codec_combo.isEnabled()
    dialog.preset_combo.setCurrentText(PRESET_ARCHIVE)
    dialog.archive_combo.setCurrentIndex(1)
    s = dialog.settings()
    assert (s.container, s.codec, s.bit_depth) == ("mov", "prores", 10)
    dialog.captions_combo.setCurrentIndex(dialog.captions_combo.findData("burned"))
    dialog.audio_combo.setCurrentIndex(dialog.audio_combo.findData("none"))
    s = dialog.settings()
    assert (s.captions, s.audio) == ("burned", "none")
    s.validate()


def test_window_opens_without_loading_torch(tmp_path) -> None:
    """A fresh interpreter shows the window with torch still unloaded: what keeps start-up
    fast. The seconds themselves are measured by bench/startup.py (goal: 2 s), not here."""
    import bench.startup as startup

    _seconds, torch_loaded = startup.one_start(tmp_path)
    assert torch_loaded is False


def test_resource_path_finds_the_icon_and_follows_a_bundle(monkeypatch, tmp_path) -> None:
    from seedvr_desktop.resources import resource_path

    assert resource_path("icons/app.svg").is_file()
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert resource_path("icons/app.svg") == tmp_path / "resources" / "icons" / "app.svg"
    with pytest.raises(ValueError):
        resource_path("../secrets.txt")


def test_settings_dialog_edits_a_copy_of_the_settings(qtbot, tmp_path) -> None:
    from seedvr_desktop.engine.seedvr.store import CATALOG
    from seedvr_desktop.settings import Settings
    from seedvr_desktop.ui.widgets.settings_dialog import SettingsDialog

    original = Settings(models_dir=str(tmp_path / "models"), device="auto")
    dialog = SettingsDialog(original, ["auto", "none", "classic"])
    qtbot.addWidget(dialog)
    assert dialog.manager.table.rowCount() == len(CATALOG)
    states = {dialog.manager.table.item(r, 2).text() for r in range(len(CATALOG))}
    assert states == {"not installed"}
    dialog.device_combo.setCurrentText("cpu")
    dialog.precision_combo.setCurrentText("bf16")
    dialog.memory_spin.setValue(6.5)
    dialog.engine_combo.setCurrentText("classic")
    result = dialog.result_settings()
    assert (result.device, result.precision, result.memory_budget_gb, result.default_engine) == (
        "cpu", "bf16", 6.5, "classic")
    assert original.device == "auto", "the caller's settings change only when it saves them"
