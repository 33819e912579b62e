"""Edit > Import Captions: an .srt/.vtt/.ass file into the selected clip's caption track, as one
undo step, through the same reader as `project caption --import`; a bad file is a message."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ui.conftest import import_clip, message_boxes, wait_until

SRT = """1
00:00:00,100 --> 00:00:00,600
Grandma's 80th

2
00:00:00,800 --> 00:00:01,400
the cake
arrives

3
00:00:05,000 --> 00:00:06,000
after the clip
"""


def _answer_file_dialog(monkeypatch: pytest.MonkeyPatch, path: Path | None) -> list[str]:
    from PySide6.QtWidgets import QFileDialog

    asked: list[str] = []

    def fake(parent, caption="", directory="", filter="", *args, **kwargs):
        asked.append(filter)
        return (str(path) if path else "", "")

    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(fake))
    return asked


def _close_boxes() -> list[str]:
    texts = []
    for box in message_boxes():
        texts.append(box.text())
        box.close()
    return texts


def test_import_captions_adds_them_to_the_selected_clip_in_one_undo_step(
        window, qtbot, small_clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import_clip(qtbot, window, small_clip)
    clip = window.session.project.clips[0]
    assert window.selected_clip == clip.id
    subs = tmp_path / "family.srt"
    subs.write_text(SRT, encoding="utf-8")
    asked = _answer_file_dialog(monkeypatch, subs)
    stack = window.session.undo.stack
    steps = stack.count()
    window.menus.import_captions.trigger()
    assert asked and "*.srt" in asked[0] and "*.vtt" in asked[0] and "*.ass" in asked[0]
    captions = window.session.project.clips[0].captions
    assert [c.text for c in captions] == ["Grandma's 80th", "the cake\narrives"]
    assert captions[0].start == pytest.approx(0.1) and captions[1].end == pytest.approx(1.4)
    assert [c.text for c in window.timeline.captions] == [c.text for c in captions]
    # The cue after the clip's end (1.92 s) is named, not dropped silently.
    wait_until(qtbot, message_boxes)
    texts = _close_boxes()
    assert any("2 caption(s) imported" in t and "after the clip ends" in t for t in texts), texts
    assert stack.count() == steps + 1 and stack.undoText() == "Import 2 captions"
    stack.undo()
    assert window.session.project.clips[0].captions == []
    stack.redo()
    assert len(window.session.project.clips[0].captions) == 2


@pytest.mark.parametrize("content", ["binary", "not subtitles", "missing"])
def test_a_bad_caption_file_is_a_message_and_changes_nothing(
        window, qtbot, small_clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        content: str) -> None:
    import_clip(qtbot, window, small_clip)
    bad = tmp_path / "bad.srt"
    if content == "binary":
        bad.write_bytes(b"\0\1\2garbage" * 50)
    elif content == "not subtitles":
        bad.write_text("just some notes\nabout the tape\n", encoding="utf-8")
    _answer_file_dialog(monkeypatch, bad)
    stack = window.session.undo.stack
    steps = stack.count()
    window.menus.import_captions.trigger()
    wait_until(qtbot, message_boxes)
    texts = _close_boxes()
    assert any("bad.srt" in t for t in texts), texts
    assert window.session.project.clips[0].captions == []
    assert stack.count() == steps


def test_cancelling_the_file_dialog_does_nothing(window, qtbot, small_clip: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import_clip(qtbot, window, small_clip)
    _answer_file_dialog(monkeypatch, None)
    steps = window.session.undo.stack.count()
    window.menus.import_captions.trigger()
    qtbot.wait(50)
    assert not message_boxes()
    assert window.session.undo.stack.count() == steps
    assert window.session.project.clips[0].captions == []


def test_without_a_clip_it_says_to_select_one(window, qtbot,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    asked = _answer_file_dialog(monkeypatch, None)
    window.menus.import_captions.trigger()
    wait_until(qtbot, message_boxes)
    assert any("Select a clip" in t for t in _close_boxes())
    assert not asked


def test_emptying_a_caption_s_text_is_refused_with_a_message(window, qtbot,
                                                             small_clip: Path) -> None:
    import_clip(qtbot, window, small_clip)
    clip = window.session.project.clips[0]
    window.add_caption_at(0.5)
    assert [c.text for c in window.session.project.clips[0].captions] == ["New caption"]
    steps = window.session.undo.stack.count()
    assert window.edits.edit_caption_text(clip.id, 0, "   ") is False
    wait_until(qtbot, message_boxes)
    assert any("no text" in t for t in _close_boxes())
    assert [c.text for c in window.session.project.clips[0].captions] == ["New caption"]
    assert window.session.undo.stack.count() == steps
    assert window.edits.edit_caption_text(clip.id, 0, "Grandma") is True
    assert window.session.project.clips[0].captions[0].text == "Grandma"
