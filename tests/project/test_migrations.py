"""Upgrading the schema-1 fixture (an older project file) to the current schema."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from seedvr_desktop.project.document import save_project
from seedvr_desktop.project.migrations import MIGRATIONS
from seedvr_desktop.project.model import SCHEMA_VERSION, ProjectError
from seedvr_desktop.project.serialize import load_project
from tests.conftest import REPO_ROOT

FIXTURE = REPO_ROOT / "tests" / "fixtures_project" / "family_tapes_v1.svrproj"


def test_every_old_version_has_an_upgrade_step() -> None:
    assert sorted(MIGRATIONS) == list(range(1, SCHEMA_VERSION))


def test_fixture_really_is_the_old_schema() -> None:
    data = json.loads(FIXTURE.read_text("utf-8"))
    assert data["schema_version"] == 1 < SCHEMA_VERSION
    assert "media" not in data and "start_ms" in data["clips"][0]["captions"][0]


def test_v1_fixture_upgrades(tmp_path: Path) -> None:
    path = tmp_path / "old.svrproj"
    shutil.copy(FIXTURE, path)
    project = load_project(path)

    assert project.name == "Family tapes"
    assert project.restore.engine == "classic"
    assert project.restore.scale == 2.0 and project.restore.seed == 42
    assert project.restore.color_fix == "adain"
    assert project.export.container == "mkv" and project.export.codec == "ffv1"
    assert project.export.output_folder == "restored"

    # Inline sources became a media table; the shared source is one entry.
    assert [m.path.name for m in project.media] == ["tape1.avi", "tape2.avi"]
    assert all(m.missing for m in project.media)  # flagged, not fatal
    assert all(m.fingerprint is None for m in project.media)
    birthday, beach, cake = project.clips
    assert birthday.media_id == cake.media_id != beach.media_id
    assert (birthday.in_frame, birthday.out_frame) == (25, 250)
    assert (beach.in_frame, beach.out_frame) == (0, None)
    assert birthday.restore == {"seed": 7}
    assert project.effective_restore(birthday).seed == 7
    assert birthday.prompt == "a sharp, clean home video"
    # Milliseconds became seconds.
    assert [(c.start, c.end, c.text, c.position) for c in birthday.captions] == [
        (0.5, 3.25, "Grandma's 80th, 1994", "bottom")
    ]
    assert [(c.start, c.end) for c in cake.captions] == [(0.0, 1.5), (1.5, 2.0)]
    assert len({c.id for c in project.clips}) == 3

    # Saving writes the current schema, which loads back to the same project.
    save_project(project)
    data = json.loads(path.read_text("utf-8"))
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["clips"][0]["captions"][0]["start"] == 0.5
    assert load_project(path) == project
    assert (tmp_path / "old.svrproj.bak").read_bytes() == FIXTURE.read_bytes()


def test_bad_old_file_names_the_field(tmp_path: Path) -> None:
    data = json.loads(FIXTURE.read_text("utf-8"))
    data["clips"][2]["captions"][1]["end_ms"] = "2s"
    path = tmp_path / "old.svrproj"
    path.write_text(json.dumps(data), "utf-8")
    with pytest.raises(ProjectError, match=r"clips\[2\]\.captions\[1\]\.end_ms must be a whole"):
        load_project(path)
