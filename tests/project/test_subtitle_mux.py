"""Adding a caption track to a finished video: streams kept bit-exact, cues read back."""

from __future__ import annotations

import hashlib
from pathlib import Path

import av
import pytest

from seedvr_desktop.errors import MediaError
from seedvr_desktop.media.subtitles import SubtitleCue, mux_subtitles, subtitle_codec_for
from tests.clips import make_video

CUES = [
    SubtitleCue(0.2, 0.6, "Grandma's 80th, 1994"),
    SubtitleCue(0.64, 0.9, "über\ntwo lines", position="top"),
]


def _packets(path: Path, kind: str) -> list[tuple[int | None, str]]:
    """(pts, payload hash) of every packet of the first stream of `kind`."""
    with av.open(str(path)) as container:
        stream = getattr(container.streams, kind)[0]
        return [
            (p.pts, hashlib.sha1(bytes(p)).hexdigest())
            for p in container.demux(stream)
            if p.size
        ]


def _cues(path: Path, index: int = -1) -> tuple[str, str | None, list[tuple[float, float, str]]]:
    """(codec, language, [(start, end, raw ASS text)]) of a subtitle stream."""
    with av.open(str(path)) as container:
        stream = container.streams.subtitles[index]
        out = []
        for packet in container.demux(stream):
            if not packet.size:
                continue
            subs = stream.codec_context.decode2(packet) or []
            texts = [s.ass.decode("utf-8").split(",", 8)[-1] for s in subs]
            if not any(texts):
                continue  # MP4 timed text fills gaps with empty samples
            start = float(packet.pts * packet.time_base)
            out.append((round(start, 3), round(start + float(packet.duration * packet.time_base),
                                               3), texts[0]))
        return stream.codec_context.name, stream.metadata.get("language"), out


@pytest.mark.parametrize(
    ("suffix", "codec", "expected_codec"),
    [(".mp4", "auto", "mov_text"), (".mov", "auto", "mov_text"), (".mkv", "auto", "ssa"),
     (".mkv", "srt", "srt")],
)
def test_track_added_and_other_streams_copied(
    tmp_path: Path, suffix: str, codec: str, expected_codec: str
) -> None:
    clip = make_video(tmp_path / f"v{suffix}", frames=25, audio="aac")
    video_before = _packets(clip.path, "video")
    audio_before = _packets(clip.path, "audio")
    mux_subtitles(clip.path, CUES, codec=codec, language="eng", title="Captions")

    assert _packets(clip.path, "video") == video_before  # copied, not re-encoded
    assert _packets(clip.path, "audio") == audio_before
    name, language, cues = _cues(clip.path)
    assert name == expected_codec
    assert language == "eng"
    assert [(s, e) for s, e, _ in cues] == [(0.2, 0.6), (0.64, 0.9)]
    assert cues[0][2] == "Grandma's 80th, 1994"
    second = cues[1][2].replace("\\N", "\n").replace("{\\an8}", "")
    assert second == "über\ntwo lines"
    if expected_codec != "mov_text":  # timed text has no alignment tag
        assert cues[1][2].startswith("{\\an8}")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_existing_subtitle_track_is_kept(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "v.mkv", frames=25, subtitles=[(0.0, 0.5, "original")])
    mux_subtitles(clip.path, CUES)
    with av.open(str(clip.path)) as container:
        assert len(container.streams.subtitles) == 2
    assert _cues(clip.path, 0)[2][0][2] == "original"
    assert _cues(clip.path, 1)[2][0][2] == "Grandma's 80th, 1994"


def test_failure_leaves_the_video_untouched(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    clip = make_video(tmp_path / "v.mp4", frames=10)
    before = clip.path.read_bytes()

    def broken_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.replace", broken_replace)
    with pytest.raises(OSError, match="No space left"):
        mux_subtitles(clip.path, CUES)
    monkeypatch.undo()
    assert clip.path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]


def test_codec_choice_and_unsupported_containers(tmp_path: Path) -> None:
    assert subtitle_codec_for("a.MP4", "srt") == "mov_text"  # MP4 carries only timed text
    assert subtitle_codec_for("a.mkv") == "ass"
    assert subtitle_codec_for("a.mkv", "srt") == "subrip"
    with pytest.raises(MediaError, match=r"cannot add subtitles to a \.avi file"):
        mux_subtitles(tmp_path / "x.avi", CUES)


def test_no_cues_leaves_the_file_alone(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "v.mp4", frames=10)
    before = clip.path.read_bytes()
    mux_subtitles(clip.path, [])
    assert clip.path.read_bytes() == before
