"""Undo/redo of every project edit, with exactly one change event per step."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from seedvr_desktop.project.commands import (
    AddCaption,
    AddClip,
    ChangeEvent,
    EditCaption,
    MoveClip,
    RemoveCaption,
    RemoveClip,
    RenameProject,
    SetClipPrompt,
    SetClipRestore,
    SetExportSettings,
    SetRestoreDefaults,
    TrimClip,
)
from seedvr_desktop.project.document import ProjectDocument
from seedvr_desktop.project.model import (
    Caption,
    Clip,
    ExportSettings,
    MediaRef,
    Project,
    ProjectError,
    RestoreSettings,
)
from tests.project.conftest import make_project, write_media


@pytest.fixture
def document(tmp_path: Path) -> tuple[ProjectDocument, list[ChangeEvent]]:
    doc = ProjectDocument(make_project(tmp_path))
    events: list[ChangeEvent] = []
    doc.subscribe(events.append)
    return doc, events


def _names(project: Project) -> list[str]:
    return [c.name for c in project.clips]


def test_long_sequence_undoes_to_the_start_and_redoes_to_the_end(
    document: tuple[ProjectDocument, list[ChangeEvent]], tmp_path: Path
) -> None:
    doc, events = document
    start = copy.deepcopy(doc.project)
    new_media = MediaRef(path=write_media(tmp_path / "new.mp4", size=4096))
    birthday, beach, cake = (c.id for c in doc.project.clips)
    commands = [
        AddClip(Clip(media_id=new_media.id, name="New"), index=1, media=new_media),
        RemoveClip(beach),
        MoveClip(cake, 0),
        TrimClip(birthday, 30, 200),
        AddCaption(birthday, Caption(0.1, 0.4, "first")),
        EditCaption(birthday, 1, Caption(0.5, 3.0, "edited")),
        RemoveCaption(birthday, 2),
        SetClipPrompt(birthday, "grainy film"),
        SetClipRestore(birthday, {"seed": 99}),
        SetRestoreDefaults(RestoreSettings(engine="none", seed=3)),
        SetExportSettings(ExportSettings(container="mp4", captions="soft")),
        RenameProject("Tapes, restored"),
    ]
    snapshots = [copy.deepcopy(doc.project)]
    for command in commands:
        doc.execute(command)
        snapshots.append(copy.deepcopy(doc.project))
    assert len(events) == len(commands)  # one event per edit

    end = doc.project
    assert _names(end) == ["Cake", "Birthday", "New"]
    assert end.clip_by_id(birthday).captions == [
        Caption(0.1, 0.4, "first"), Caption(0.5, 3.0, "edited")
    ]
    assert (end.clip_by_id(birthday).in_frame, end.clip_by_id(birthday).out_frame) == (30, 200)
    assert end.name == "Tapes, restored" and end.restore.engine == "none"
    assert any(m.id == new_media.id for m in end.media)

    for i in range(len(commands)):
        event = doc.undo()
        assert event is not None and event.undone
        assert doc.project == snapshots[-2 - i]
    assert doc.project == start
    assert doc.undo() is None  # nothing left, and no event for it
    assert len(events) == 2 * len(commands)

    for i in range(len(commands)):
        doc.redo()
        assert doc.project == snapshots[i + 1]
    assert len(events) == 3 * len(commands)
    assert doc.redo() is None


def test_event_kinds_and_targets(document: tuple[ProjectDocument, list[ChangeEvent]]) -> None:
    doc, events = document
    clip_id = doc.project.clips[0].id
    doc.execute(TrimClip(clip_id, 1, 2))
    doc.execute(AddCaption(clip_id, Caption(0, 1, "x")))
    doc.execute(MoveClip(clip_id, 2))
    doc.execute(RenameProject("N"))
    doc.undo()
    assert [(e.kind, e.clip_id, e.undone) for e in events] == [
        ("clip", clip_id, False),
        ("captions", clip_id, False),
        ("clips", clip_id, False),
        ("project", None, False),
        ("project", None, True),
    ]
    assert events[0].text == "Trim clip"


@pytest.mark.parametrize(
    "make_command",
    [
        lambda p: TrimClip(p.clips[0].id, 10, 5),  # out before in
        lambda p: TrimClip(p.clips[0].id, 0, 501),  # past the media's 500 frames
        lambda p: TrimClip("no such clip", 0, 1),
        lambda p: AddCaption(p.clips[0].id, Caption(2.0, 1.0, "backwards")),
        lambda p: EditCaption(p.clips[0].id, 7, Caption(0, 1, "x")),
        lambda p: RemoveCaption(p.clips[1].id, 0),  # Beach has no captions
        lambda p: MoveClip(p.clips[0].id, 3),
        lambda p: SetClipRestore(p.clips[0].id, {"colour": "red"}),
        lambda p: SetClipRestore(p.clips[0].id, {"precision": "int3"}),
        lambda p: SetRestoreDefaults(RestoreSettings(scale=2.0, short_side=480)),
        lambda p: SetExportSettings(ExportSettings(codec="divx")),
        lambda p: AddClip(Clip(media_id="unknown")),
        lambda p: RenameProject("  "),
    ],
)
def test_invalid_edits_change_nothing_and_emit_nothing(
    document: tuple[ProjectDocument, list[ChangeEvent]], make_command
) -> None:
    doc, events = document
    before = copy.deepcopy(doc.project)
    with pytest.raises(ProjectError):
        doc.execute(make_command(doc.project))
    assert doc.project == before
    assert events == []
    assert not doc.can_undo()


def test_new_edit_after_undo_discards_redo(
    document: tuple[ProjectDocument, list[ChangeEvent]]
) -> None:
    doc, _ = document
    doc.execute(RenameProject("A"))
    doc.execute(RenameProject("B"))
    doc.undo()
    assert doc.can_redo() and doc.redo_text() == "Rename project"
    doc.execute(RenameProject("C"))
    assert not doc.can_redo()
    doc.undo()
    assert doc.project.name == "A"


def test_merging_a_slider_drag_into_one_step(
    document: tuple[ProjectDocument, list[ChangeEvent]]
) -> None:
    doc, events = document
    clip_id = doc.project.clips[0].id
    for out in range(240, 200, -5):
        doc.execute(TrimClip(clip_id, 25, out), merge=True)
    assert doc.project.clips[0].out_frame == 205
    assert len(events) == 8  # every step still shows
    doc.undo()
    assert doc.project.clips[0].out_frame == 250  # one undo returns to before the drag
    assert not doc.can_undo()


def test_modified_state_follows_undo_depth(
    document: tuple[ProjectDocument, list[ChangeEvent]], tmp_path: Path
) -> None:
    doc, _ = document
    doc.project.path = tmp_path / "t.svrproj"
    assert not doc.is_modified()
    doc.execute(RenameProject("A"))
    assert doc.is_modified()
    doc.save()
    assert not doc.is_modified()
    doc.execute(RenameProject("B"))
    doc.undo()
    assert not doc.is_modified()  # back at the saved state
    doc.undo()
    assert doc.is_modified()
    doc.redo()
    doc.redo()
    doc.undo()
    doc.execute(RenameProject("C"))  # branching off the saved state keeps it reachable
    doc.undo()
    assert doc.project.name == "A" and not doc.is_modified()
    doc.undo()
    doc.execute(RenameProject("A"))  # the saved state is now unreachable...
    assert doc.project.name == "A"  # ...even though the content happens to match
    assert doc.is_modified()
    doc.undo()
    assert doc.is_modified()


def test_a_recovered_project_stays_modified_until_saved(
    document: tuple[ProjectDocument, list[ChangeEvent]]
) -> None:
    doc, _ = document
    doc.mark_unsaved()
    assert doc.is_modified()
    doc.execute(RenameProject("Q"))
    doc.undo()
    assert doc.is_modified()  # no state in the history is the file on disk
    doc.mark_saved()
    assert not doc.is_modified()


def test_a_failing_listener_does_not_break_editing(
    document: tuple[ProjectDocument, list[ChangeEvent]]
) -> None:
    doc, events = document

    def broken(event: ChangeEvent) -> None:
        raise RuntimeError("view bug")

    unsubscribe = doc.subscribe(broken)
    doc.execute(RenameProject("X"))
    assert doc.project.name == "X" and len(events) == 1
    unsubscribe()
    doc.undo()
    assert len(events) == 2
