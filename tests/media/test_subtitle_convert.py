"""Text subtitles change format with the container: SRT in MKV -> mov_text in MP4 and back.

The cues are the ones the clip factory was given, so text and times are checked against the
input, not against an earlier output.
"""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from seedvr_desktop.engine.job import RestoreJob
from seedvr_desktop.engine.pipeline import run_restore
from tests.clips import make_video

CUES = [(0.12, 0.36, "Hello\\Nworld"), (0.48, 0.8, "Second line")]


def _cues(path: Path) -> tuple[str, str | None, list[tuple[float, float, str]]]:
    """(codec, language, [(start_s, end_s, text)]) of the file's first subtitle track."""
    cues = []
    with av.open(str(path)) as container:
        stream = container.streams.subtitles[0]
        codec = stream.codec_context.name
        language = stream.metadata.get("language")
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            texts = [r.ass.decode().split(",", 8)[8] for r in stream.codec_context.decode(packet)]
            if not texts:  # mov_text's empty samples clear the screen between cues
                continue
            start = float(packet.pts * packet.time_base)
            cues.append((start, start + float(packet.duration * packet.time_base), texts[0]))
    return codec, language, cues


@pytest.mark.parametrize(("src", "dst", "codec"), [
    ("mkv", "mp4", "mov_text"), ("mkv", "mov", "mov_text"), ("mp4", "mkv", "srt"),
])
def test_text_subtitles_are_converted(tmp_path: Path, src: str, dst: str, codec: str) -> None:
    clip = make_video(tmp_path / f"in.{src}", frames=25, subtitles=CUES)
    events = list(run_restore(RestoreJob(clip.path, tmp_path / f"out.{dst}", engine="none")))
    assert events[-1].stage == "done"
    assert "converted" in events[-1].message
    got_codec, language, cues = _cues(tmp_path / f"out.{dst}")
    assert got_codec == codec  # "srt" is how PyAV names the SubRip decoder
    assert language == "eng"
    assert [c[2] for c in cues] == [c[2] for c in CUES]
    for (start, end, _), (want_start, want_end, _) in zip(cues, CUES, strict=True):
        assert start == pytest.approx(want_start, abs=0.0015)
        assert end == pytest.approx(want_end, abs=0.0015)


def test_trimmed_job_shifts_converted_cues(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "in.mkv", frames=25, subtitles=CUES)
    job = RestoreJob(clip.path, tmp_path / "out.mp4", engine="none", start_time=0.4)
    assert list(run_restore(job))[-1].stage == "done"
    _, _, cues = _cues(tmp_path / "out.mp4")
    assert [c[2] for c in cues] == ["Second line"]  # the first cue began before the trim
    assert cues[0][0] == pytest.approx(0.48 - 0.4, abs=0.0015)
