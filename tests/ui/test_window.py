"""End-to-end GUI tests of the main window (pytest-qt, offscreen)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QEvent, QMimeData, QPoint, QPointF, Qt, QTimer, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QMouseEvent
from PySide6.QtWidgets import QApplication, QPushButton, QWidget

from seedvr_desktop.media.probe import probe
from seedvr_desktop.media.reader import VideoReader
from seedvr_desktop.ui.image import array_from_qimage
from seedvr_desktop.ui.widgets.viewer import CompareMode
from tests.clips import frame_id, make_text_file
from tests.ui.conftest import INVERT, import_clip, message_boxes, set_engine, wait_until

pytestmark = pytest.mark.gui


def _drop(target: QWidget, paths: list[Path]) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = target.rect().center()
    enter = QDragEnterEvent(QPointF(pos), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(target, enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(pos), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(target, drop)


def _mouse(widget: QWidget, kind: QEvent.Type, x: float, y: float, held: bool) -> None:
    buttons = Qt.MouseButton.LeftButton if held else Qt.MouseButton.NoButton
    button = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseMove else Qt.MouseButton.LeftButton
    local = QPointF(x, y)
    event = QMouseEvent(kind, local, widget.mapToGlobal(local), button, buttons,
                        Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)


def _grab(widget: QWidget) -> np.ndarray:
    return array_from_qimage(widget.grab().toImage())


def _patch_diff(shot: np.ndarray, expected: np.ndarray, box: tuple[int, int, int, int]) -> float:
    x0, y0, x1, y1 = box
    return float(np.abs(shot[y0:y1, x0:x1].astype(int) - expected[y0:y1, x0:x1].astype(int)).mean())


def _expected_canvas(viewer, image: np.ndarray, pane=None) -> np.ndarray:
    """What the viewer should show for `image` drawn into its image rectangle (widget sized)."""
    rect = viewer.image_rect(pane).toRect()
    canvas = np.zeros((viewer.height(), viewer.width(), 3), np.uint8)
    scaled = cv2.resize(image, (rect.width(), rect.height()), interpolation=cv2.INTER_LINEAR)
    x0, y0 = max(rect.left(), 0), max(rect.top(), 0)
    canvas[y0:y0 + rect.height(), x0:x0 + rect.width()] = scaled[
        y0 - rect.top():viewer.height() - rect.top(), x0 - rect.left():viewer.width() - rect.left()]
    return canvas


def test_window_has_the_named_widgets(window) -> None:
    for name in ("mediaBin", "viewer", "compareDivider", "timeline", "captionTrack", "inspector",
                 "queuePanel", "previewButton", "exportButton"):
        assert window.findChild(QWidget, name) is not None, name


def test_drop_files_and_folders_into_bin(window, qtbot, small_clip: Path, tmp_path: Path) -> None:
    notes = make_text_file(tmp_path / "notes.txt")
    folder = tmp_path / "holiday"
    folder.mkdir()
    shutil.copy(small_clip, folder / "beach.mp4")
    make_text_file(folder / "readme.txt")
    _drop(window.media_bin.viewport(), [small_clip, notes, folder])
    wait_until(qtbot, lambda: len(window.session.project.clips) == 2 and message_boxes())
    rows = [window.media_bin.item(i).text() for i in range(window.media_bin.count())]
    assert len(rows) == 2
    assert rows[0].startswith("small.mp4") and rows[1].startswith("beach.mp4")
    for row in rows:
        assert "160×120" in row and "h264" in row and "0:01.9" in row
    text = " ".join(box.text() for box in message_boxes())
    assert "notes.txt" in text and "readme.txt" in text
    placeholder = window.media_bin._placeholder.cacheKey()
    wait_until(qtbot, lambda: window.media_bin.item(0).icon().cacheKey() != placeholder)


def test_scrub_shows_exactly_the_decoded_frame(window, qtbot, small_clip: Path) -> None:
    import_clip(qtbot, window, small_clip)
    track = window.timeline.track
    span = window.playback.clips[0]
    shown: list = []
    window.playback.frame_shown.connect(shown.append)
    y = track.height() - 20
    xs = [window.timeline.scale.x(span.start + t) for t in (0.1, 0.4, 0.7, 1.0, 1.23)]
    _mouse(track, QEvent.Type.MouseButtonPress, xs[0], y, True)
    for x in xs[1:]:
        _mouse(track, QEvent.Type.MouseMove, x, y, True)
    wait_until(qtbot, lambda: shown)  # feedback while the mouse button is still down
    _mouse(track, QEvent.Type.MouseButtonRelease, xs[-1], y, False)
    target = span.frame_at(window.timeline.playhead)
    assert 28 <= target <= 32
    wait_until(qtbot, lambda: window.playback.shown.full_res
               and window.playback.shown.index == target)
    on_screen = array_from_qimage(window.viewer.original_image())
    with VideoReader(small_clip) as reader:
        decoded = reader.read(target).image
    assert np.array_equal(on_screen, decoded)
    assert frame_id(on_screen) == target  # the frame number painted into the clip itself


def test_split_side_by_side_and_toggle_show_original_and_restored(window, qtbot,
                                                                  small_clip: Path) -> None:
    set_engine(window, INVERT)
    import_clip(qtbot, window, small_clip)
    window.playback.seek_frame(window.playback.clips[0].clip_id, 20)
    button = window.findChild(QPushButton, "previewButton")
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    wait_until(qtbot, lambda: window.viewer.has_restored() and not window.preview.busy())
    assert window.timeline.preview_ranges, "the previewed range is marked on the timeline"
    viewer = window.viewer
    original = array_from_qimage(viewer.original_image())
    inverted = 255 - original
    viewer.set_mode(CompareMode.SPLIT)
    viewer.set_split(0.5)
    viewer.fit()
    qtbot.wait(50)
    shot = _grab(viewer)
    rect = viewer.image_rect().toRect()
    y0, y1 = rect.top() + rect.height() * 2 // 5, rect.top() + rect.height() * 4 // 5
    mid = viewer.width() // 2
    left = (rect.left() + 10, y0, mid - 15, y1)
    right = (mid + 15, y0, rect.right() - 10, y1)
    exp_orig, exp_inv = _expected_canvas(viewer, original), _expected_canvas(viewer, inverted)
    assert _patch_diff(shot, exp_orig, left) < 8 < 40 < _patch_diff(shot, exp_inv, left)
    assert _patch_diff(shot, exp_inv, right) < 8 < 40 < _patch_diff(shot, exp_orig, right)

    divider = window.findChild(QWidget, "compareDivider")
    assert divider.isVisible()
    x_from = divider.width() / 2
    _mouse(divider, QEvent.Type.MouseButtonPress, x_from, 10, True)
    _mouse(divider, QEvent.Type.MouseMove, x_from - viewer.width() // 4, 10, True)
    _mouse(divider, QEvent.Type.MouseButtonRelease, x_from - viewer.width() // 4, 10, False)
    assert viewer.split == pytest.approx(0.25, abs=0.03)
    qtbot.wait(50)
    band = (viewer.width() * 3 // 10, y0, viewer.width() * 9 // 20, y1)  # now right of the divider
    assert _patch_diff(_grab(viewer), exp_inv, band) < 8

    viewer.set_mode(CompareMode.SIDE_BY_SIDE)
    qtbot.wait(50)
    shot = _grab(viewer)
    for pane, expected, other in zip(viewer.panes(), (original, inverted), (inverted, original)):
        r = viewer.image_rect(pane).toRect()
        box = (r.left() + 5, r.top() + r.height() * 2 // 5, r.right() - 5,
               r.top() + r.height() * 4 // 5)
        assert _patch_diff(shot, _expected_canvas(viewer, expected, pane), box) < 8
        assert _patch_diff(shot, _expected_canvas(viewer, other, pane), box) > 40
    assert not divider.isVisible()

    viewer.set_mode(CompareMode.TOGGLE)
    qtbot.wait(50)
    box = (rect.left() + 10, y0, rect.right() - 10, y1)
    assert _patch_diff(_grab(viewer), exp_inv, box) < 8
    qtbot.keyPress(window.timeline, Qt.Key.Key_B)  # held: the original
    qtbot.wait(50)
    assert _patch_diff(_grab(viewer), exp_orig, box) < 8
    qtbot.keyRelease(window.timeline, Qt.Key.Key_B)
    qtbot.wait(50)
    assert _patch_diff(_grab(viewer), exp_inv, box) < 8


def test_settings_change_invalidates_preview(window, qtbot, small_clip: Path) -> None:
    set_engine(window, INVERT)
    import_clip(qtbot, window, small_clip)
    window.request_preview()
    wait_until(qtbot, lambda: window.timeline.preview_ranges and not window.preview.busy())
    set_engine(window, INVERT, seed=1)
    assert window.timeline.preview_ranges == []
    assert not window.viewer.has_restored()
    assert len(window.preview.cache) == 0


def _accept_export_dialog(folder: Path, qtbot) -> None:
    from seedvr_desktop.ui.widgets.export_dialog import PRESET_SHARE, ExportDialog

    def accept() -> None:
        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, ExportDialog), dialog
        dialog.preset_combo.setCurrentText(PRESET_SHARE)
        dialog.folder_edit.setText(str(folder))
        dialog.scope_all.setChecked(True)
        dialog.accept()

    QTimer.singleShot(200, accept)


def test_export_from_queue_writes_a_valid_file_with_sound_and_captions(
        window, qtbot, small_clip: Path, tmp_path: Path) -> None:
    set_engine(window, "none")
    import_clip(qtbot, window, small_clip)
    clip_id = window.playback.clips[0].clip_id
    window.edits.add_caption(clip_id, 0.2)
    _accept_export_dialog(tmp_path / "exports", qtbot)
    qtbot.mouseClick(window.findChild(QPushButton, "exportButton"), Qt.MouseButton.LeftButton)
    panel = window.queue_panel
    wait_until(qtbot, lambda: panel.entries and all(
        e.status in ("done", "failed", "cancelled") for e in panel.entries.values()), 60)
    entry = next(iter(panel.entries.values()))
    assert entry.status == "done", entry.message
    info = probe(entry.output)
    assert info.video is not None and info.video.codec == "h264"
    assert info.video.frame_count == 48
    assert len(info.audio) == 1
    assert len(info.subtitles) == 1
    assert panel.folder_button.isEnabled()


def _queue_slow_export(window, qtbot, clip: Path, folder: Path):
    import dataclasses

    from seedvr_desktop.project.commands import SetExportSettings

    set_engine(window, "test-slow")
    import_clip(qtbot, window, clip)
    export = dataclasses.replace(window.session.project.export, output_folder=str(folder),
                                 audio="none", captions="none")
    assert window.session.push(SetExportSettings(export))
    (job_id,) = window.exports.queue()
    entry = window.queue_panel.entries[job_id]
    wait_until(qtbot, lambda: entry.fraction > 0, 30)
    return job_id, entry


def test_pause_resume_and_cancel_answer_quickly(window, qtbot, long_clip: Path,
                                                tmp_path: Path) -> None:
    job_id, entry = _queue_slow_export(window, qtbot, long_clip, tmp_path / "out")
    panel = window.queue_panel
    panel.select(job_id)
    qtbot.mouseClick(panel.pause_button, Qt.MouseButton.LeftButton)
    assert entry.status == "paused"
    qtbot.wait(1300)  # at most the chunk already in flight finishes (4 frames of 120)
    frozen = entry.fraction
    qtbot.wait(1300)
    assert entry.fraction == frozen < 0.5
    qtbot.mouseClick(panel.resume_button, Qt.MouseButton.LeftButton)
    wait_until(qtbot, lambda: entry.fraction > frozen, 10)

    # The GUI thread stays responsive while the job runs: measure event-loop stalls.
    gaps: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(tick)
    timer.start()
    qtbot.wait(1000)
    timer.stop()
    gaps = sorted(gaps[1:])
    p99, worst = gaps[int(0.99 * (len(gaps) - 1))], gaps[-1]
    print(f"GUI event-loop gaps while exporting: p99 {p99 * 1000:.1f} ms, "
          f"worst {worst * 1000:.1f} ms over {len(gaps)} ticks")
    # The bound is 50 ms; on a shared 2-core CI box the OS alone can deschedule the
    # process that long now and then, so the bound applies to p99 and the worst case only has to
    # rule out real blocking work on the GUI thread (a decode or an engine call takes far longer).
    assert p99 < 0.05
    assert worst < 0.25

    started = time.perf_counter()
    qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    wait_until(qtbot, lambda: entry.status == "cancelled", 5)
    assert time.perf_counter() - started < 1.0
    assert not entry.output.exists()


def test_close_with_running_job_cancels_and_joins(window, qtbot, answers, long_clip: Path,
                                                  tmp_path: Path) -> None:
    _, entry = _queue_slow_export(window, qtbot, long_clip, tmp_path / "out")
    answers["yes_no"] = False  # "Cancel the exports and quit?" -> No: the window stays
    window.close()
    assert window.isVisible() and entry.status == "running"
    answers["yes_no"] = True
    started = time.perf_counter()
    window.close()
    assert not window.isVisible()
    assert window.host.worker_thread.isFinished()
    assert time.perf_counter() - started < 2.0
    assert "Exports are running" in answers["asked"]
    assert not entry.output.exists()


def test_save_and_reopen_restores_the_same_project(window, qtbot, small_clip: Path,
                                                   tmp_path: Path) -> None:
    from seedvr_desktop.ui.main_window import MainWindow

    set_engine(window, "none", scale=2.0)
    import_clip(qtbot, window, small_clip)
    clip_id = window.playback.clips[0].clip_id
    window.edits.add_caption(clip_id, 0.5)
    window.edits.trim(clip_id, 5, 40)
    assert window.isWindowModified()
    path = tmp_path / "family.svrproj"
    assert window.session.save_as(path)
    assert not window.isWindowModified() and "family" in window.windowTitle()

    other = MainWindow()
    qtbot.addWidget(other)
    try:
        assert other.open_project(path)
        a, b = window.session.project, other.session.project
        assert (a.name, a.clips, a.restore, a.export) == (b.name, b.clips, b.restore, b.export)
        assert [m.path for m in a.media] == [m.path for m in b.media]
        assert other.timeline.clips == window.timeline.clips
        assert other.timeline.captions == window.timeline.captions
        assert other.media_bin.count() == 1 and not other.isWindowModified()
        assert str(path) in other.settings.recent_projects
    finally:
        other.close()


def test_undo_and_redo_of_caption_and_trim_edits(window, qtbot, small_clip: Path) -> None:
    import_clip(qtbot, window, small_clip)
    stack = window.session.undo.stack
    clip = window.session.project.clips[0]
    track = window.timeline.caption_track
    x = window.timeline.scale.x(0.6)
    qtbot.mouseDClick(track, Qt.MouseButton.LeftButton, pos=QPoint(round(x), track.height() // 2))
    assert [c.text for c in clip.captions] == ["New caption"]
    editor = track.editor
    assert editor is not None and editor.hasFocus()
    editor.setText("Grandma's 80th, 1994")
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    assert [c.text for c in window.session.project.clips[0].captions] == ["Grandma's 80th, 1994"]
    assert window.timeline.captions[0].text == "Grandma's 80th, 1994"

    window.playback.seek_frame(clip.id, 10)
    qtbot.keyClick(window.timeline, Qt.Key.Key_I)
    assert window.session.project.clips[0].in_frame == 10
    assert stack.undoText() == "Trim clip"

    stack.undo()
    assert window.session.project.clips[0].in_frame == 0
    stack.undo()
    assert window.session.project.clips[0].captions[0].text == "New caption"
    stack.undo()
    assert window.session.project.clips[0].captions == []
    for _ in range(3):
        stack.redo()
    clip = window.session.project.clips[0]
    assert clip.in_frame == 10 and clip.captions[0].text == "Grandma's 80th, 1994"
    assert window.timeline.clips[0].in_frame == 10


def test_transport_keys(window, qtbot, small_clip: Path) -> None:
    import_clip(qtbot, window, small_clip)
    pb = window.playback
    pb.seek_frame(pb.clips[0].clip_id, 10)
    qtbot.keyClick(window.timeline, Qt.Key.Key_Right)
    assert pb.current()[1] == 11
    qtbot.keyClick(window.timeline, Qt.Key.Key_Left)
    qtbot.keyClick(window.timeline, Qt.Key.Key_Left)
    assert pb.current()[1] == 9
    qtbot.keyClick(window.timeline, Qt.Key.Key_Space)
    assert pb.is_playing()
    qtbot.wait(300)
    qtbot.keyClick(window.timeline, Qt.Key.Key_Space)
    assert not pb.is_playing() and pb.current()[1] > 9
    qtbot.keyClick(window.timeline, Qt.Key.Key_L)
    qtbot.keyClick(window.timeline, Qt.Key.Key_L)
    assert pb.speed == 2.0
    qtbot.keyClick(window.timeline, Qt.Key.Key_J)
    assert pb.speed == -1.0
    qtbot.keyClick(window.timeline, Qt.Key.Key_K)
    assert not pb.is_playing()
    qtbot.keyClick(window.timeline, Qt.Key.Key_O)
    assert window.session.project.clips[0].out_frame == pb.current()[1] + 1


def test_close_prompts_for_unsaved_changes_and_autosave_is_recovered(
        window, qtbot, answers, small_clip: Path) -> None:
    from seedvr_desktop.ui import dialogs
    from seedvr_desktop.ui.main_window import MainWindow

    import_clip(qtbot, window, small_clip)
    window.edits.rename(window.session.project.clips[0].id, "Beach 1994")
    assert window.isWindowModified() and window.windowTitle().startswith("Untitled[*]")
    written = window.session.autosave_now()
    assert written is not None and written.is_file()

    answers["unsaved"] = dialogs.Answer.CANCEL
    window.close()
    assert window.isVisible(), "Cancel keeps the window open"
    assert answers["asked"][-1] == "unsaved: closing"

    # A second window (as after a crash) offers the untitled project's autosave back.
    other = MainWindow()
    qtbot.addWidget(other)
    try:
        wait_until(qtbot, lambda: "Recover unsaved work?" in answers["asked"])
        assert [c.name for c in other.session.project.clips] == ["Beach 1994"]
        assert other.isWindowModified()
    finally:
        answers["unsaved"] = dialogs.Answer.DISCARD
        other.close()
    window.close()
    assert not window.isVisible()


def test_a_missing_media_file_is_a_message_not_a_crash(window, qtbot, small_clip: Path,
                                                       tmp_path: Path) -> None:
    moved = tmp_path / "moved.mp4"
    shutil.copy(small_clip, moved)
    set_engine(window, INVERT)
    import_clip(qtbot, window, moved)
    window.frames.forget(str(moved))
    moved.unlink()
    window.playback.seek(0.5)
    wait_until(qtbot, lambda: window.viewer.original_image() is None
               and "moved.mp4" in window.viewer._message)
    window.request_preview()
    wait_until(qtbot, lambda: message_boxes() and not window.preview.busy())
    texts = [box.text() for box in message_boxes()]
    assert any("moved.mp4" in text for text in texts), texts


def test_reordering_clips_moves_them_on_the_timeline_and_undoes(window, qtbot, small_clip: Path,
                                                                long_clip: Path) -> None:
    import_clip(qtbot, window, small_clip)
    import_clip(qtbot, window, long_clip)
    first, second = (c.id for c in window.session.project.clips)
    window.edits.move_clip(second, -1)
    assert [c.clip_id for c in window.timeline.clips] == [second, first]
    assert window.timeline.clips[0].start == 0.0
    assert window.timeline.clips[1].start == pytest.approx(120 / 25)
    window.edits.move_clip(second, -1)  # already first: nothing happens, nothing recorded
    assert window.session.undo.stack.undoText() == "Reorder clips"
    window.session.undo.stack.undo()
    assert [c.clip_id for c in window.timeline.clips] == [first, second]


def test_dragging_a_clip_past_its_neighbour_reorders_in_one_undo_step(
        window, qtbot, small_clip: Path, long_clip: Path) -> None:
    from seedvr_desktop.ui.theme import ACCENT
    from seedvr_desktop.ui.widgets.timeline import CLIP_H, RULER_H

    import_clip(qtbot, window, small_clip)
    import_clip(qtbot, window, long_clip)
    first, second = (c.id for c in window.session.project.clips)
    tl = window.timeline
    tl.zoom_to_fit()  # both clips on screen
    track, scale = tl.track, tl.scale
    stack = window.session.undo.stack
    steps = stack.count()
    a, b = tl.clips
    assert scale.x(b.end) < track.width()
    # The viewer tells the frame source its on-screen size (proxies are made that wide).
    viewer = window.viewer
    assert window.frames.decoder.proxies.display_width == round(
        viewer.width() * viewer.devicePixelRatioF())
    y = round(RULER_H + 2 + CLIP_H / 2)
    grab = round(scale.x((a.start + a.end) / 2))
    # Move the block so its right edge lands just past the middle of clip 1.
    stop = grab + round(scale.x((b.start + b.end) / 2) - scale.x(a.end)) + 6
    qtbot.mousePress(track, Qt.MouseButton.LeftButton, pos=QPoint(grab, y))
    qtbot.mouseMove(track, QPoint(grab + 20, y))
    assert tl.dragged_clip == first
    qtbot.mouseMove(track, QPoint(stop, y))
    assert tl.insertion_time() == pytest.approx(b.end)  # the marker sits after clip 1
    shot = _grab(track)  # the marker is painted in the accent colour at that x
    marker_x = round(scale.x(b.end) * track.devicePixelRatioF())
    accent = (ACCENT.red(), ACCENT.green(), ACCENT.blue())
    assert any(tuple(shot[y + 4, x, :3]) == accent for x in range(marker_x - 2, marker_x + 2))
    with qtbot.assertNotEmitted(tl.scrubbed):  # a reorder drag leaves the playhead alone
        qtbot.mouseMove(track, QPoint(stop + 1, y))
    qtbot.mouseRelease(track, Qt.MouseButton.LeftButton, pos=QPoint(stop, y))
    assert [c.id for c in window.session.project.clips] == [second, first]
    assert [c.clip_id for c in tl.clips] == [second, first] and not tl.dragged_clip
    assert stack.count() == steps + 1 and stack.undoText() == "Reorder clips"
    stack.undo()
    assert [c.id for c in window.session.project.clips] == [first, second]
    # Dragging on the ruler still scrubs and never reorders.
    expected = scale.t(stop)
    with qtbot.waitSignal(tl.scrubbed):
        qtbot.mousePress(track, Qt.MouseButton.LeftButton, pos=QPoint(grab, 5))
    qtbot.mouseMove(track, QPoint(stop, 5))
    qtbot.mouseRelease(track, Qt.MouseButton.LeftButton, pos=QPoint(stop, 5))
    assert tl.playhead == pytest.approx(expected, abs=0.05)
    assert [c.id for c in window.session.project.clips] == [first, second]
    # A drag that does not pass the neighbour's middle changes nothing.
    qtbot.mousePress(track, Qt.MouseButton.LeftButton, pos=QPoint(grab, y))
    qtbot.mouseMove(track, QPoint(grab + 20, y))
    qtbot.mouseRelease(track, Qt.MouseButton.LeftButton, pos=QPoint(grab + 20, y))
    assert [c.id for c in window.session.project.clips] == [first, second]
    assert stack.count() == steps + 1
