"""Periodic autosave, the recovery check, and its interplay with real saves."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from seedvr_desktop.project.autosave import (
    autosave_path,
    discard_autosave,
    has_newer_autosave,
    load_autosave,
)
from seedvr_desktop.project.commands import RenameProject
from seedvr_desktop.project.document import Autosaver, ProjectDocument, save_project
from seedvr_desktop.project.model import ProjectError
from seedvr_desktop.project.serialize import load_project
from tests.project.conftest import make_project


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _document(tmp_path: Path) -> tuple[ProjectDocument, Path]:
    path = save_project(make_project(tmp_path), tmp_path / "tapes.svrproj")
    document = ProjectDocument(load_project(path))
    return document, path


def test_autosave_file_name() -> None:
    assert autosave_path(Path("a") / "Tapes.svrproj") == Path("a") / ".Tapes.svrproj.autosave"


def test_autosaves_only_when_changed_and_due(tmp_path: Path) -> None:
    document, path = _document(tmp_path)
    clock = Clock()
    saver = Autosaver(document, interval=30, clock=clock)
    clock.now += 100
    assert saver.maybe_autosave() is None  # nothing changed
    assert not autosave_path(path).exists()
    document.execute(RenameProject("Edited"))
    written = saver.maybe_autosave()  # due: no autosave for over 30 s
    assert written == autosave_path(path) and written.is_file()
    document.execute(RenameProject("Edited again"))
    clock.now += 10
    assert saver.maybe_autosave() is None  # not due: only 10 s since the last autosave
    assert load_autosave(path).name == "Edited"
    clock.now += 25
    assert saver.maybe_autosave() == written
    assert saver.maybe_autosave(clock.now + 100) is None  # nothing new since
    assert load_project(path).name == "Family tapes"  # the real file is untouched
    assert has_newer_autosave(path)
    recovered = load_autosave(path)
    assert recovered.name == "Edited again"
    assert recovered.path == path.absolute()
    assert not recovered.missing_media()  # relative media paths resolve from the same folder


def test_a_real_save_removes_the_autosave(tmp_path: Path) -> None:
    document, path = _document(tmp_path)
    saver = Autosaver(document, interval=0)
    document.execute(RenameProject("Edited"))
    assert saver.maybe_autosave() is not None
    document.save()
    assert not autosave_path(path).exists()
    assert not has_newer_autosave(path)
    assert saver.maybe_autosave() is None  # saved state: nothing to autosave


def test_older_or_identical_autosave_is_not_offered(tmp_path: Path) -> None:
    document, path = _document(tmp_path)
    auto = autosave_path(path)
    auto.write_bytes(path.read_bytes())  # same content
    assert not has_newer_autosave(path)
    document.execute(RenameProject("Edited"))
    Autosaver(document, interval=0).autosave_now()
    stat = path.stat()
    os.utime(auto, ns=(stat.st_atime_ns, stat.st_mtime_ns - 10**9))  # autosave older
    assert not has_newer_autosave(path)
    discard_autosave(path)
    discard_autosave(path)  # twice is fine
    assert not auto.exists()


def test_unsaved_project_uses_the_fallback_path(tmp_path: Path) -> None:
    document = ProjectDocument(make_project(tmp_path))
    assert Autosaver(document, interval=0).autosave_now() is None  # nowhere to write
    document.execute(RenameProject("New"))
    fallback = tmp_path / "recovery" / "untitled.svrproj"
    fallback.parent.mkdir()
    saver = Autosaver(document, interval=0, fallback_path=fallback)
    assert saver.maybe_autosave() == autosave_path(fallback)
    assert has_newer_autosave(fallback)  # no project file at all: the autosave is all there is
    assert load_autosave(fallback).name == "New"


def test_autosave_failure_is_reported_not_raised(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    document, _ = _document(tmp_path)
    document.execute(RenameProject("Edited"))
    saver = Autosaver(document, interval=0)

    def full_disk(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("seedvr_desktop.fsutil.atomic_write_bytes", full_disk)
    assert saver.maybe_autosave() is None
    assert "No space left" in (saver.last_error or "")
    monkeypatch.undo()
    assert saver.maybe_autosave() is not None and saver.last_error is None


def test_corrupt_autosave_is_a_project_error(tmp_path: Path) -> None:
    _, path = _document(tmp_path)
    autosave_path(path).write_text('{"format": ', "utf-8")
    assert has_newer_autosave(path)
    with pytest.raises(ProjectError, match="not valid JSON"):
        load_autosave(path)
