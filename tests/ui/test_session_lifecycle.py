"""Project switching in the window: late imports, discarded autosaves, one undo per drop."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from seedvr_desktop.project.autosave import autosave_path
from seedvr_desktop.ui.widgets.media_bin import ICON_SIZE
from tests.clips import make_video
from tests.ui.conftest import import_clip, wait_until

pytestmark = pytest.mark.gui


def _second_window(qtbot):
    from seedvr_desktop.ui.main_window import MainWindow

    other = MainWindow()
    qtbot.addWidget(other)
    return other


def test_an_import_finishing_after_new_project_is_not_added_to_it(window, qtbot,
                                                                  small_clip: Path) -> None:
    with qtbot.waitSignal(window.importer.batch_finished, timeout=10_000) as blocker:
        window.open_media([small_clip])
        window.new_project()  # nothing to save: no question, the drop's project is gone
    assert blocker.args[0].imported, "the probe itself must succeed"
    qtbot.wait(50)
    assert window.session.project.clips == []
    assert window.session.project.media == []
    assert not window.session.is_modified()
    # A drop into the project now open still works.
    import_clip(qtbot, window, small_clip)
    assert len(window.session.project.clips) == 1


def test_discarded_untitled_work_is_not_offered_at_next_launch(window, qtbot, answers,
                                                               small_clip: Path) -> None:
    import_clip(qtbot, window, small_clip)
    written = window.session.autosave_now()
    assert written is not None and written.is_file()
    window.new_project()  # answers Discard
    assert answers["asked"] == ["unsaved: starting a new project"]
    assert not written.exists()
    answers["asked"].clear()
    other = _second_window(qtbot)
    try:
        qtbot.wait(100)  # the start-up recovery check runs from the event loop
        assert "Recover unsaved work?" not in answers["asked"]
        assert other.session.project.clips == []
    finally:
        other.close()


def test_discarded_changes_of_a_named_project_are_not_offered_on_reopen(
        window, qtbot, answers, small_clip: Path, tmp_path: Path) -> None:
    import_clip(qtbot, window, small_clip)
    path = tmp_path / "A.svrproj"
    assert window.session.save_as(path)
    window.edits.rename(window.session.project.clips[0].id, "changed")
    assert window.session.autosave_now() == autosave_path(path)

    # Discard while opening the same project again, then via another project.
    assert window.open_project(path)
    assert "Recover unsaved work?" not in answers["asked"]
    assert window.session.project.clips[0].name == small_clip.stem
    window.edits.rename(window.session.project.clips[0].id, "changed again")
    window.session.autosave_now()
    window.new_project()
    assert not autosave_path(path).exists()
    assert window.open_project(path)
    assert "Recover unsaved work?" not in answers["asked"]
    assert window.session.project.clips[0].name == small_clip.stem


def test_clean_close_removes_the_untitled_recovery_file(window, qtbot, small_clip: Path,
                                                        tmp_path: Path) -> None:
    path = tmp_path / "named.svrproj"
    assert window.session.save_as(path)
    window.new_project()
    import_clip(qtbot, window, small_clip)
    recovery = window.session.autosave_now()
    assert recovery is not None and recovery.is_file()
    assert window.session.open(path)  # replaced without asking (no consent): kept for now
    assert recovery.is_file()
    window.close()  # the user closed the app normally: nothing is left to recover
    assert not recovery.exists()


def test_recovered_untitled_work_keeps_its_file_until_saved(window, qtbot, answers,
                                                            small_clip: Path) -> None:
    from seedvr_desktop.ui import dialogs

    import_clip(qtbot, window, small_clip)
    recovery = window.session.autosave_now()
    assert recovery is not None
    answers["unsaved"] = dialogs.Answer.CANCEL  # the first window stays, like a crashed one
    other = _second_window(qtbot)
    try:
        wait_until(qtbot, lambda: "Recover unsaved work?" in answers["asked"])
        assert len(other.session.project.clips) == 1
        assert recovery.is_file(), "a second crash must not lose the recovered work"
    finally:
        answers["unsaved"] = dialogs.Answer.DISCARD
        other.close()


def test_a_folder_drop_is_one_undo_step_with_one_thumbnail_request_per_file(
        window, qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    first = make_video(folder / "clip0.mp4", frames=6, size=(64, 48)).path
    for i in range(1, 6):
        shutil.copy(first, folder / f"clip{i}.mp4")
    icon_requests: list[str] = []
    real_request = window.frames.request_thumbnail

    def counting(path: str, index: int, height: int) -> None:
        if height == ICON_SIZE.height():
            icon_requests.append(path)
        real_request(path, index, height)

    monkeypatch.setattr(window.frames, "request_thumbnail", counting)
    window.open_media([folder])
    wait_until(qtbot, lambda: len(window.session.project.clips) == 6)
    stack = window.session.undo.stack
    assert stack.count() == 1
    assert stack.undoText() == "Import 6 files"
    assert sorted(icon_requests) == sorted(str(p) for p in folder.iterdir())

    stack.undo()
    assert window.session.project.clips == [] and window.session.project.media == []
    assert not window.session.is_modified()
    stack.redo()
    assert len(window.session.project.clips) == 6
    # Media that came back gets its icon asked for again, once each.
    assert len(icon_requests) == 12
