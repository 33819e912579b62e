"""Caption rules: a caption shows text. An empty one is refused when made or edited, and one in
a file saved before the rule is dropped on load with a warning naming it (the file still opens).
Captions starting after the clip are refused by `project caption` and named at render."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from seedvr_desktop import cli
from seedvr_desktop.project.captions import clip_captions
from seedvr_desktop.project.document import save_project
from seedvr_desktop.project.model import Caption, Clip, ProjectError
from seedvr_desktop.project.serialize import load_project
from tests.clips import make_video
from tests.project.conftest import make_project


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
def test_a_caption_without_text_is_refused_when_made(text: str) -> None:
    with pytest.raises(ProjectError, match="no text") as caught:
        Caption(1.0, 2.0, text).validate_edit()
    assert "\n" not in str(caught.value)
    Caption(1.0, 2.0, "Hello").validate_edit()  # the same caption with text is fine
    with pytest.raises(ProjectError, match="end after it starts"):
        Caption(2.0, 1.0, "Hello").validate_edit()  # and the older rules still hold


def test_an_old_project_with_an_empty_caption_still_opens(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    path = save_project(project, tmp_path / "tapes.svrproj")
    data = json.loads(path.read_text(encoding="utf-8"))
    clip = data["clips"][0]
    kept = [c["text"] for c in clip["captions"]]
    assert kept  # the builder's first clip has captions
    clip["captions"].append({"start": 0.5, "end": 1.5, "text": "  "})
    path.write_text(json.dumps(data), encoding="utf-8")
    loaded = load_project(path)  # the stricter rule for new captions does not refuse it
    assert [c.text for c in loaded.clips[0].captions] == kept  # the empty one is dropped


def test_empty_captions_of_an_old_project_are_dropped_by_name(
        caplog: pytest.LogCaptureFixture) -> None:
    clip = Clip("m", name="Beach", captions=[Caption(0, 1, "a"), Caption(1, 2, " "),
                                             Caption(2, 3, "")])
    with caplog.at_level(logging.WARNING):
        dropped = clip.drop_empty_captions()
    assert [c.text for c in clip.captions] == ["a"] and len(dropped) == 2
    messages = [r.getMessage() for r in caplog.records]
    assert any("clip Beach" in m and "1-2 s has no text" in m for m in messages), messages
    assert clip.drop_empty_captions() == []


def test_cli_refuses_empty_and_late_captions_with_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clip = make_video(tmp_path / "c.mp4", frames=25, fps=25).path  # 1 s
    project = tmp_path / "p.svrproj"
    assert cli.main(["project", "create", str(project), str(clip)]) == 0
    capsys.readouterr()
    base = ["project", "caption", str(project), "--clip", "1"]
    assert cli.main([*base, "--start", "1", "--end", "2", "--text", "late"]) == 1
    err = capsys.readouterr().err.strip()
    assert "after clip 1 ends" in err and len(err.splitlines()) == 1
    assert cli.main([*base, "--start", "0", "--end", "0.5", "--text", "\\n "]) == 1
    err = capsys.readouterr().err.strip()
    assert "empty" in err and len(err.splitlines()) == 1
    assert load_project(project).clips[0].captions == []


def test_render_names_a_caption_beyond_the_clip(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        out = clip_captions([Caption(0.2, 0.8, "kept"), Caption(3.0, 4.0, "too late")], 2.0)
    assert [c.text for c in out] == ["kept"]
    assert any("caption 2 (3-4 s) starts after the clip ends" in r.getMessage()
               for r in caplog.records)


def test_add_and_edit_commands_refuse_empty_text_and_change_nothing(tmp_path: Path) -> None:
    from seedvr_desktop.project.commands import AddCaption, EditCaption

    project = make_project(tmp_path)
    clip = project.clips[0]
    before = list(clip.captions)
    for command in (AddCaption(clip.id, Caption(0.2, 0.9, " ")),
                    EditCaption(clip.id, 0, Caption(0.2, 0.9, ""))):
        with pytest.raises(ProjectError, match="no text"):
            command.redo(project)
        assert clip.captions == before
