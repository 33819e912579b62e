"""Saving and loading `.svrproj` files: round trips, paths, and every kind of bad file."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from seedvr_desktop.errors import UserError
from seedvr_desktop.project.commands import RelinkMedia
from seedvr_desktop.project.document import ProjectDocument, save_project
from seedvr_desktop.project.fingerprint import find_by_fingerprint, find_relinks
from seedvr_desktop.project.model import SCHEMA_VERSION, ProjectError
from seedvr_desktop.project.serialize import load_project
from tests.project.conftest import make_project


def test_round_trip_keeps_everything(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    path = save_project(project, tmp_path / "tapes.svrproj")
    loaded = load_project(path)
    assert loaded == project
    assert loaded.path == path
    assert not loaded.missing_media()
    # Saving the loaded project again gives the identical bytes (stable order and formatting).
    first = path.read_bytes()
    save_project(loaded)
    assert path.read_bytes() == first


def test_file_is_readable_json_with_format_version_and_relative_paths(tmp_path: Path) -> None:
    path = save_project(make_project(tmp_path), tmp_path / "tapes.svrproj")
    text = path.read_text(encoding="utf-8")
    assert text.startswith('{\n  "format": "seedvr-desktop-project",\n  "schema_version": ')
    assert "tape 2 ü.mp4" in text  # UTF-8 kept, not \u escapes
    data = json.loads(text)
    assert data["schema_version"] == SCHEMA_VERSION == 2
    assert list(data) == ["format", "schema_version", "name", "restore", "export", "media", "clips"]
    assert [m["path"] for m in data["media"]] == ["media/tape1.avi", "media/sub dir/tape 2 ü.mp4"]
    assert Path(data["media"][0]["absolute_path"]) == (tmp_path / "media" / "tape1.avi").absolute()
    assert data["clips"][0]["captions"][0] == {
        "start": 0.5, "end": 3.25, "text": "Grandma's 80th, 1994", "position": "bottom",
        "size": 0.06, "color": "#ffffff", "outline": True,
    }
    assert data["clips"][0]["restore"] == {"seed": 7, "size": [1440, 1152]}


def test_moving_the_folder_with_its_media_keeps_working(tmp_path: Path) -> None:
    original = tmp_path / "old place"
    project = make_project(original)
    save_project(project, original / "tapes.svrproj")
    moved = tmp_path / "new place"
    shutil.move(original, moved)
    loaded = load_project(moved / "tapes.svrproj")
    assert not loaded.missing_media()
    assert loaded.media[1].path == (moved / "media" / "sub dir" / "tape 2 ü.mp4").absolute()


def test_absolute_path_is_the_fallback_when_only_the_project_moves(tmp_path: Path) -> None:
    project = make_project(tmp_path / "media-home")
    save_project(project, tmp_path / "media-home" / "tapes.svrproj")
    (tmp_path / "elsewhere").mkdir()
    shutil.move(tmp_path / "media-home" / "tapes.svrproj", tmp_path / "elsewhere" / "t.svrproj")
    loaded = load_project(tmp_path / "elsewhere" / "t.svrproj")
    assert not loaded.missing_media()
    assert loaded.media[0].path == (tmp_path / "media-home" / "media" / "tape1.avi").absolute()


def test_missing_media_is_flagged_and_relinked_by_fingerprint(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    save_project(project, tmp_path / "p" / "tapes.svrproj")
    # The user tidies up: one capture is renamed into another folder tree.
    target = tmp_path / "archive" / "1994" / "renamed.avi"
    target.parent.mkdir(parents=True)
    shutil.move(tmp_path / "p" / "media" / "tape1.avi", target)
    # A decoy of the same size must not be taken for it.
    (tmp_path / "archive" / "decoy.avi").write_bytes(b"\0" * target.stat().st_size)

    loaded = load_project(tmp_path / "p" / "tapes.svrproj")  # no crash
    missing = loaded.missing_media()
    assert [m.id for m in missing] == [project.media[0].id]

    found = find_relinks(loaded, tmp_path / "archive")
    assert found == {project.media[0].id: target.absolute()}
    assert find_by_fingerprint(missing[0].fingerprint, tmp_path / "archive") == target.absolute()

    document = ProjectDocument(loaded)
    for media_id, path in found.items():
        document.execute(RelinkMedia(media_id, path))
    assert not loaded.missing_media()
    document.save()
    assert not load_project(tmp_path / "p" / "tapes.svrproj").missing_media()
    document.undo()
    assert loaded.media[0].missing


def test_save_keeps_previous_version_as_backup(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    path = save_project(project, tmp_path / "tapes.svrproj")
    first = path.read_bytes()
    project.name = "Renamed"
    save_project(project)
    assert (tmp_path / "tapes.svrproj.bak").read_bytes() == first
    assert load_project(path).name == "Renamed"


def test_failure_between_write_and_replace_leaves_old_file_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path)
    path = save_project(project, tmp_path / "tapes.svrproj")
    before = path.read_bytes()
    project.name = "Half-written"

    def broken_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.replace", broken_replace)
    with pytest.raises(ProjectError, match="No space left"):
        save_project(project)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert load_project(path).name == "Family tapes"
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


# ----------------------------------------------------------------------------- bad files


def _write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "bad.svrproj"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def _valid_text(tmp_path: Path) -> str:
    return save_project(make_project(tmp_path), tmp_path / "good.svrproj").read_text("utf-8")


def test_malformed_json_names_line_and_column(tmp_path: Path) -> None:
    text = _valid_text(tmp_path).replace('"name": "Family tapes",', '"name": "Family tapes"', 1)
    # The parser stumbles on the key after the missing comma: the "restore" line, 3rd column.
    line = text.splitlines().index('  "restore": {') + 1
    expected = rf"bad\.svrproj: not valid JSON at line {line}, column 3"
    with pytest.raises(ProjectError, match=expected):
        load_project(_write(tmp_path, text))


def test_truncated_file_is_a_clear_error(tmp_path: Path) -> None:
    text = _valid_text(tmp_path)
    with pytest.raises(ProjectError, match=r"not valid JSON at line \d+, column \d+"):
        load_project(_write(tmp_path, text[: len(text) // 2]))
    with pytest.raises(ProjectError, match="the file is empty"):
        load_project(_write(tmp_path, ""))


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('"in_frame": 25', '"in_frame": "25"',
         r"clips\[0\]\.in_frame must be a whole number, not text"),
        ('"in_frame": 25', '"in_frame": true', r"clips\[0\]\.in_frame must be a whole number"),
        ('"start": 0.5', '"start": null',
         r"clips\[0\]\.captions\[0\]\.start must be a number, not null"),
        ('"seed": 666', '"seed": 1.5', r"restore\.seed must be a whole number, not a number"),
        ('"container": "mkv"', '"container": "avi"',
         r"export\.container must be one of mp4, mkv, mov"),
        ('"position": "top"', '"position": "left"',
         r"clips\[0\]\.captions\[1\]\.position must be one"),
        ('"media": [', '"media": {"x": 1}, "old": [', r"media must be a list, not an object"),
        ('"start": 4.0', '"start": 7.0', r"clips\[0\]\.captions\[1\] is invalid: caption must end"),
        ('"seed": 7', '"sede": 7', r"clips\[0\]\.restore\.sede is not a known setting"),
    ],
)
def test_wrong_types_name_the_field(tmp_path: Path, old: str, new: str, message: str) -> None:
    text = _valid_text(tmp_path)
    assert old in text
    with pytest.raises(ProjectError, match=message):
        load_project(_write(tmp_path, text.replace(old, new, 1)))


def test_unknown_media_reference_is_named(tmp_path: Path) -> None:
    data = json.loads(_valid_text(tmp_path))
    data["clips"][1]["media"] = "nope"
    with pytest.raises(ProjectError, match=r"clips\[1\]\.media refers to unknown media 'nope'"):
        load_project(_write(tmp_path, json.dumps(data)))


def test_future_version_asks_for_an_update(tmp_path: Path) -> None:
    data = json.loads(_valid_text(tmp_path))
    data["schema_version"] = SCHEMA_VERSION + 1
    expected = r"newer SeedVR Desktop \(schema_version 3; .* up to 2\)"
    with pytest.raises(ProjectError, match=expected):
        load_project(_write(tmp_path, json.dumps(data)))


_FMT = '"format": "seedvr-desktop-project"'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", "the file must be an object, not a list"),
        ('{"format": "something-else", "schema_version": 2}', "not a SeedVR Desktop project"),
        ("{" + _FMT + "}", "schema_version is missing"),
        ("{" + _FMT + ', "schema_version": "2"}', "schema_version must be a whole"),
        ("{" + _FMT + ', "schema_version": 0}', "must be at least 1"),
        ("{" + _FMT + ', "schema_version": 2, "name": NaN}', "NaN is not allowed"),
    ],
)
def test_not_a_project(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ProjectError, match=message):
        load_project(_write(tmp_path, text))


def test_binary_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="not UTF-8 text"):
        load_project(_write(tmp_path, b'{"name": "\xff\xfe"}'))
    with pytest.raises(ProjectError, match="no such project file"):
        load_project(tmp_path / "nothing.svrproj")
    with pytest.raises(ProjectError, match="is a folder"):
        load_project(tmp_path)
    assert issubclass(ProjectError, UserError)


def test_minimal_file_gets_defaults(tmp_path: Path) -> None:
    path = _write(tmp_path, '{"format": "seedvr-desktop-project", "schema_version": 2}')
    project = load_project(path)
    assert project.name == "Untitled" and project.clips == [] and project.media == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_saving_keeps_the_file_mode(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    path = save_project(project, tmp_path / "tapes.svrproj")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # not a private temp file's 0600
    path.chmod(0o640)
    save_project(project)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
