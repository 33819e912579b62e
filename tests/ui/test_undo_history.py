"""One undo history: the GUI's QUndoStack and the project document always hold the same steps."""

from __future__ import annotations

from pathlib import Path

import pytest

from seedvr_desktop.project.commands import RenameProject, TrimClip
from seedvr_desktop.project.document import ProjectDocument
from seedvr_desktop.project.model import Project
from seedvr_desktop.ui.undo import UndoBridge
from tests.project.conftest import make_project

pytestmark = pytest.mark.gui


def test_qt_stack_and_document_history_stay_in_step(qapp) -> None:
    document = ProjectDocument(Project(name="A"))
    bridge = UndoBridge(document)
    bridge.push(RenameProject("B"))
    with bridge.macro("two renames"):
        bridge.push(RenameProject("C"))
        bridge.push(RenameProject("D"))
    assert document.undo_depth() == 3 and bridge.stack.count() == 2
    assert bridge.is_modified() and document.is_modified()
    bridge.stack.undo()  # the macro: both of its document steps
    assert document.project.name == "B" and document.undo_depth() == 1
    bridge.stack.undo()
    assert document.project.name == "A" and not document.is_modified()
    assert not bridge.is_modified()
    bridge.stack.redo()
    bridge.stack.redo()
    assert document.project.name == "D" and document.undo_depth() == 3
    bridge.mark_saved()
    assert not document.is_modified() and bridge.stack.isClean()


def test_merged_gesture_is_one_step_in_both(qapp, tmp_path: Path) -> None:
    document = ProjectDocument(make_project(tmp_path))
    clip = document.project.clips[0]
    before = (clip.in_frame, clip.out_frame)
    bridge = UndoBridge(document)
    for out in (40, 35, 30):  # one slider drag
        bridge.push(TrimClip(clip.id, 5, out), merge=True)
    assert bridge.stack.count() == document.undo_depth() == 1
    assert (clip.in_frame, clip.out_frame) == (5, 30)
    bridge.stack.undo()
    assert (clip.in_frame, clip.out_frame) == before and document.undo_depth() == 0
