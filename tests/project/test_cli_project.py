"""`project create/info/caption` and `render` on the command line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import av
import pytest

from seedvr_desktop import cli_project
from seedvr_desktop.errors import UserError
from seedvr_desktop.project.serialize import load_project
from tests.clips import frame_id, make_text_file, make_video


def run(argv: list[str]) -> int:
    """Parse with only our commands registered and call the handler, like cli.main does."""
    parser = argparse.ArgumentParser(prog="seedvr-desktop")
    cli_project.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture
def media(tmp_path: Path) -> list[Path]:
    (tmp_path / "media").mkdir()
    return [
        make_video(tmp_path / "media" / "tape1.mp4", frames=20, audio="aac").path,
        make_video(tmp_path / "media" / "tape2.mkv", frames=12, size=(64, 48), first_id=100).path,
    ]


def test_create_info_caption(tmp_path: Path, media: list[Path],
                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "tapes.svrproj"
    assert run(["project", "create", str(out), *map(str, media), "--name", "Tapes"]) == 0
    project = load_project(out)
    assert project.name == "Tapes"
    assert [c.name for c in project.clips] == ["tape1", "tape2"]
    assert [m.probe.frame_count for m in project.media] == [20, 12]
    assert project.media[1].probe.width == 64 and project.media[0].probe.has_audio
    assert all(m.fingerprint is not None for m in project.media)
    assert json.loads(out.read_text("utf-8"))["media"][0]["path"] == "media/tape1.mp4"

    capsys.readouterr()
    assert run(["project", "caption", str(out), "--clip", "2", "--start", "0:00.1",
                "--end", "0.3", "--text", "Grandma\\n1994", "--position", "top"]) == 0
    caption = load_project(out).clips[1].captions[0]
    assert (caption.start, caption.end, caption.text, caption.position) == (
        0.1, 0.3, "Grandma\n1994", "top")
    assert (tmp_path / "tapes.svrproj.bak").is_file()

    capsys.readouterr()
    assert run(["project", "info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["name"] == "Tapes" and info["missing_media"] == []
    assert [c["out_frame"] for c in info["clips"]] == [20, 12]
    assert info["clips"][1]["captions"][0]["text"] == "Grandma\n1994"
    assert info["clips"][0]["output"].endswith("Tapes-01-tape1.mp4")
    assert info["clips"][0]["duration"] == 0.8

    assert run(["project", "info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "clip   2  tape2" in text and "'Grandma\\n1994'" in text


def test_info_flags_missing_media(tmp_path: Path, media: list[Path],
                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "tapes.svrproj"
    run(["project", "create", str(out), *map(str, media)])
    media[0].unlink()
    capsys.readouterr()
    assert run(["project", "info", str(out)]) == 0
    captured = capsys.readouterr()
    assert "MISSING" in captured.out and "1 media file(s) missing" in captured.err


def test_user_mistakes_are_user_errors(tmp_path: Path, media: list[Path]) -> None:
    out = tmp_path / "tapes.svrproj"
    with pytest.raises(UserError, match="file not found"):
        run(["project", "create", str(out), str(tmp_path / "nope.mp4")])
    with pytest.raises(UserError):
        run(["project", "create", str(out), str(make_text_file(tmp_path / "notes.mp4"))])
    assert not out.exists()  # nothing half-written
    run(["project", "create", str(out), str(media[0])])
    with pytest.raises(UserError, match="already exists"):
        run(["project", "create", str(out), str(media[1])])
    assert run(["project", "create", str(out), str(media[1]), "--force"]) == 0
    with pytest.raises(UserError, match="there is no clip 2"):
        run(["project", "caption", str(out), "--clip", "2", "--start", "0", "--end", "1",
             "--text", "x"])
    with pytest.raises(UserError, match="caption must end after it starts"):
        run(["project", "caption", str(out), "--clip", "1", "--start", "2", "--end", "1",
             "--text", "x"])
    with pytest.raises(SystemExit):  # argparse: "not a time"
        run(["project", "caption", str(out), "--clip", "1", "--start", "soon", "--end", "1",
             "--text", "x"])
    with pytest.raises(UserError, match="not valid JSON"):
        (tmp_path / "broken.svrproj").write_text("{", "utf-8")
        run(["project", "info", str(tmp_path / "broken.svrproj")])


@pytest.mark.parametrize(("text", "seconds"), [("12.5", 12.5), ("1:02.5", 62.5),
                                               ("1:00:03", 3603.0), ("0,25", 0.25)])
def test_parse_time(text: str, seconds: float) -> None:
    assert cli_project.parse_time(text) == seconds


def test_render_exports_every_clip_with_captions(tmp_path: Path, media: list[Path]) -> None:
    out = tmp_path / "tapes.svrproj"
    run(["project", "create", str(out), *map(str, media)])
    run(["project", "caption", str(out), "--clip", "1", "--start", "0", "--end", "0.4",
         "--text", "Hello"])
    project = load_project(out)
    text = out.read_text("utf-8").replace('"engine": "auto"', '"engine": "none"')
    out.write_text(text, "utf-8")
    assert run(["render", str(out)]) == 0
    folder = tmp_path / "exports"
    first = folder / f"{project.name}-01-tape1.mp4"
    second = folder / f"{project.name}-02-tape2.mp4"
    with av.open(str(first)) as container:
        assert container.streams.subtitles  # default export: soft captions
        assert len(list(container.decode(video=0))) == 20
    with av.open(str(second)) as container:
        assert [frame_id(f.to_ndarray(format="rgb24")) for f in container.decode(video=0)] == list(
            range(100, 112))
    # --clip renders just one; existing outputs are refused without --overwrite.
    with pytest.raises(UserError):
        run(["render", str(out), "--clip", "2"])
    assert run(["render", str(out), "--clip", "2", "--overwrite"]) == 0


def test_exit_codes_through_the_main_cli(tmp_path: Path, media: list[Path],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from seedvr_desktop import cli

    out = tmp_path / "tapes.svrproj"
    assert cli.main(["project", "create", str(out), str(media[1])]) == 0
    assert cli.main(["project", "info", str(tmp_path / "missing.svrproj")]) == 1
    assert "error: " in capsys.readouterr().err
    media[1].unlink()
    assert cli.main(["render", str(out)]) == 1  # missing media: a clear error, no traceback
    err = capsys.readouterr().err
    assert "is missing; relink it first" in err and "Traceback" not in err


def test_caption_import_adds_a_subtitle_files_captions(tmp_path: Path, media: list[Path]) -> None:
    out = tmp_path / "tapes.svrproj"
    run(["project", "create", str(out), *map(str, media)])
    subs = tmp_path / "family.srt"
    subs.write_text("1\n00:00:00,100 --> 00:00:00,400\nGrandma's 80th\n\n"
                    "2\n00:00:00,500 --> 00:00:00,700\nthe cake\n", encoding="utf-8")
    assert run(["project", "caption", str(out), "--clip", "1", "--import", str(subs)]) == 0
    captions = load_project(out).clips[0].captions
    assert [(round(c.start, 2), c.text) for c in captions] == [(0.1, "Grandma's 80th"),
                                                                (0.5, "the cake")]
    with pytest.raises(UserError):
        run(["project", "caption", str(out), "--clip", "1", "--import", str(media[0])])
    with pytest.raises(UserError, match="--start"):
        run(["project", "caption", str(out), "--clip", "1"])
