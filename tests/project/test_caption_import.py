"""Importing .srt/.vtt/.ass/.ssa files into a clip's captions (pysubs2), and what is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from seedvr_desktop.errors import UserError
from seedvr_desktop.project.captions import import_caption_file, to_ass, to_srt, to_vtt
from seedvr_desktop.project.model import Caption
from tests.clips import make_video

CAPTIONS = [
    Caption(0.5, 3.25, "Grandma's 80th, 1994"),
    Caption(4.0, 6.0, "Two lines\nüber & more", position="top"),
    Caption(7.0, 8.5, "in the middle", position="middle"),
]


@pytest.mark.parametrize("suffix", [".srt", ".vtt", ".ass"])
def test_round_trip_through_our_own_writers(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"c{suffix}"
    text = {".srt": to_srt(CAPTIONS), ".vtt": to_vtt(CAPTIONS),
            ".ass": to_ass(CAPTIONS, 640, 480)}[suffix]
    path.write_text(text, "utf-8")
    got = import_caption_file(path)
    assert got.problems == []
    # pysubs2 reads no WebVTT cue settings ("line:0"), so positions come back as bottom.
    positions = [c.position for c in CAPTIONS] if suffix != ".vtt" else ["bottom"] * 3
    assert [(c.start, c.end, c.position) for c in got.captions] == [
        (c.start, c.end, p) for c, p in zip(CAPTIONS, positions)]
    assert [c.text for c in got.captions] == [c.text for c in CAPTIONS]


def test_ssa_file_with_styles_and_tags(tmp_path: Path) -> None:
    path = tmp_path / "old.ssa"
    path.write_text(
        "[Script Info]\nScriptType: v4.00\n\n[V4 Styles]\n"
        "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, TertiaryColour, "
        "BackColour, Bold, Italic, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, "
        "MarginV, AlphaLevel, Encoding\n"
        "Style: Default,Arial,20,16777215,0,0,0,0,0,1,1,0,2,10,10,10,0,0\n\n[Events]\n"
        "Format: Marked, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
        "Dialogue: Marked=0,0:00:01.00,0:00:02.50,Default,,0,0,0,,{\\i1}Hello{\\i0}\\Nthere\n"
        "Comment: Marked=0,0:00:03.00,0:00:04.00,Default,,0,0,0,,not shown\n",
        "utf-8")
    got = import_caption_file(path)
    assert [(c.start, c.end, c.text, c.position) for c in got.captions] == [
        (1.0, 2.5, "Hello\nthere", "bottom")]


def test_windows_1252_srt(tmp_path: Path) -> None:
    path = tmp_path / "old.srt"
    path.write_bytes("1\r\n00:00:01,000 --> 00:00:02,000\r\nCafé à Noël\r\n\r\n".encode("cp1252"))
    assert import_caption_file(path).captions[0].text == "Café à Noël"


def test_beyond_the_clip_and_empty_text_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "c.srt"
    path.write_text(
        "1\n00:00:01,000 --> 00:00:02,000\nkept\n\n"
        "2\n00:00:02,000 --> 00:00:03,000\n{\\i1}{\\i0}\n\n"
        "3\n00:00:04,000 --> 00:00:12,000\nrunning long\n\n"
        "4\n00:00:11,000 --> 00:00:12,000\ntoo late\n\n", "utf-8")
    got = import_caption_file(path, duration=10.0)
    assert [(c.text, c.start, c.end) for c in got.captions] == [
        ("kept", 1.0, 2.0), ("running long", 4.0, 10.0)]
    assert len(got.problems) == 3
    assert "caption 2" in got.problems[0] and "no text" in got.problems[0]
    assert "caption 3" in got.problems[1] and "cut at 10 s" in got.problems[1]
    assert "caption 4" in got.problems[2] and "after the clip ends" in got.problems[2]
    with pytest.raises(UserError, match="none of its 4 caption"):
        import_caption_file(path, duration=0.5)


def _one_line(exc: pytest.ExceptionInfo[UserError]) -> str:
    message = str(exc.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_unusable_files_are_one_line_user_errors(tmp_path: Path) -> None:
    cases: dict[str, str] = {}
    (tmp_path / "empty.srt").write_text("", "utf-8")
    cases["empty.srt"] = "not a subtitle file"
    (tmp_path / "notes.srt").write_text("just some notes\nnothing timed\n", "utf-8")
    cases["notes.srt"] = "not a subtitle file"
    (tmp_path / "blank.ass").write_text(to_ass([], 640, 480), "utf-8")
    cases["blank.ass"] = "has no captions"
    video = make_video(tmp_path / "v.mp4", frames=2)
    (tmp_path / "video.srt").write_bytes(video.path.read_bytes())
    cases["video.srt"] = "binary data"
    (tmp_path / "subs.txt").write_text("1\n00:00:01,000 --> 00:00:02,000\nhi\n", "utf-8")
    cases["subs.txt"] = "use .srt, .vtt, .ass, .ssa"
    cases["missing.srt"] = "cannot read missing.srt"
    (tmp_path / "folder.vtt").mkdir()
    cases["folder.vtt"] = "cannot read folder.vtt"
    for name, expected in cases.items():
        with pytest.raises(UserError) as exc:
            import_caption_file(tmp_path / name)
        message = _one_line(exc)
        assert expected in message and name in message, (name, message)
