"""Hardening: a source that changes under a run.

- a file still growing while it is read (a capture in progress) or any file whose sound runs on
  past its last picture: the output's audio (and subtitles) stop where its video stops;
- the input replaced by another file mid-run: one clear line (a UserError, exit 1), the finished
  work kept for --resume, nothing at the output path.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import pytest

from seedvr_desktop.engine.job import RestoreJob
from seedvr_desktop.engine.pipeline import run_restore
from seedvr_desktop.engine.video_run import SOUND_TAIL_KEPT
from seedvr_desktop.media.codecs import EncodeSettings
from tests import clips
from tests.clips import frame_pattern


def _long_sound_clip(path: Path, *, frames: int = 10, fps: int = 25,
                     audio_seconds: float = 2.0, audio: str = "aac",
                     cues: tuple[tuple[float, float, str], ...] = ()) -> Path:
    """A clip whose sound lasts far longer than its pictures (like a capture still being
    written: the audio interleaved ahead of the video, or the video stopped early)."""
    ext = path.suffix.lower()
    container = av.open(os.fspath(path), "w")
    try:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height = 96, 64
        video.pix_fmt = "yuv420p"
        video.time_base = Fraction(1, fps)
        video.codec_context.options = {"preset": "veryfast"}
        sound = clips._add_audio(container, audio, 0)
        subs = clips._add_subtitles(container, ext, cues) if cues else None
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(frame_pattern(i, (96, 64)), format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            for packet in video.encode(frame.reformat(format="yuv420p")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        clips._encode_audio(container, sound, Fraction(audio_seconds), 0)
        if subs is not None:
            clips._mux_subtitles(container, subs, cues)
    finally:
        container.close()
    return path


def _spans(path: Path) -> tuple[float, float, float]:
    """(video end, audio end, one audio frame) in seconds, from the packets of `path`."""
    with av.open(os.fspath(path)) as container:
        v = container.streams.video[0]
        a = container.streams.audio[0]
        video_end = audio_end = 0.0
        frame = 0.0
        for packet in container.demux(v, a):
            if packet.size == 0 or packet.pts is None:
                continue
            end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
            if packet.stream.type == "video":
                video_end = max(video_end, end)
            else:
                audio_end = max(audio_end, end)
                frame = max(frame, float((packet.duration or 0) * packet.time_base))
    return video_end, audio_end, frame


def _subtitle_starts(path: Path) -> list[float]:
    with av.open(os.fspath(path)) as container:
        if not container.streams.subtitles:
            return []
        s = container.streams.subtitles[0]
        return [float(p.pts * p.time_base) for p in container.demux(s)
                if p.size and p.pts is not None]


@pytest.mark.parametrize(("engine", "audio", "ext"), [
    ("none", "copy", ".mp4"),
    ("classic", "copy", ".mp4"),
    ("none", "transcode", ".mkv"),
])
def test_the_sound_stops_where_the_pictures_stop(tmp_path: Path, engine: str, audio: str,
                                                  ext: str) -> None:
    src = _long_sound_clip(tmp_path / "growing.mp4", frames=10, audio_seconds=3.0)
    source_video, source_audio, _ = _spans(src)
    assert source_audio > source_video + 2.0  # the premise: sound runs on 2.6 s longer
    out = tmp_path / f"out{ext}"
    job = RestoreJob(src, out, engine=engine, encode=EncodeSettings(audio=audio))
    events = list(run_restore(job))
    assert events[-1].stage == "done"
    video_end, audio_end, frame = _spans(out)
    assert video_end == pytest.approx(0.4, abs=0.05)
    # Cut half a second (the tail any file may have) after the last picture.
    tail = float(SOUND_TAIL_KEPT)
    assert audio_end == pytest.approx(video_end + tail, abs=frame + 0.005), (video_end, audio_end)


def test_subtitle_cues_after_the_last_picture_are_left_out(tmp_path: Path) -> None:
    src = _long_sound_clip(tmp_path / "growing.mkv", frames=10, audio_seconds=2.0,
                           cues=((0.1, 0.3, "early"), (1.5, 1.8, "late")))
    out = tmp_path / "out.mkv"
    events = list(run_restore(RestoreJob(src, out, engine="none")))
    assert events[-1].stage == "done"
    assert _subtitle_starts(src) == [pytest.approx(0.1), pytest.approx(1.5)]
    assert _subtitle_starts(out) == [pytest.approx(0.1)]


# ------------------------------------------------------------------ the input replaced mid-run


def _one_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    assert lines and "Traceback" not in text, text
    return lines[-1]


@pytest.fixture()
def _chunky(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    from seedvr_desktop.engine import plan as job_planning
    from tests.engine import pipeline_fakes

    monkeypatch.setattr(job_planning, "SEGMENT_SECONDS", 0.2)
    pipeline_fakes.HOOK.clear()
    yield pipeline_fakes.HOOK
    pipeline_fakes.HOOK.clear()


def _swap_at_chunk(hook: list, index: int, new: Path, src: Path) -> None:  # type: ignore[type-arg]
    def swap(ctx: object) -> None:
        if getattr(ctx, "index", -1) == index:
            os.replace(new, src)

    hook.append(swap)


@pytest.mark.parametrize("replacement", ["video", "text"])
def test_an_input_replaced_between_segments_is_one_line_and_stays_resumable(
        tmp_path: Path, _chunky: list, replacement: str,  # type: ignore[type-arg]
        capsys: pytest.CaptureFixture[str]) -> None:
    from seedvr_desktop import cli
    from seedvr_desktop.engine.journal import work_dir_for
    from tests.engine.pipeline_fakes import decode_video, packet_payloads

    src = clips.make_video(tmp_path / "in.mp4", frames=45, audio="aac").path
    full = tmp_path / "full.mp4"
    assert cli.main(["restore", str(src), "-o", str(full), "--engine", "test-chunky"]) == 0
    original = tmp_path / "original.mp4"
    os.link(src, original)  # the same file (inode, time) under a second name, to put back
    other = tmp_path / "other.mp4"
    if replacement == "video":
        clips.make_video(other, frames=20, size=(128, 96), audio="aac", first_id=500)
    else:
        other.write_text("not a video\n" * 50)
    _swap_at_chunk(_chunky, 3, other, src)
    out = tmp_path / "out.mp4"
    capsys.readouterr()
    code = cli.main(["restore", str(src), "-o", str(out), "--engine", "test-chunky"])
    line = _one_line(capsys.readouterr().err)
    assert code == 1
    assert "in.mp4 was replaced by another file" in line and "--resume" in line
    assert not out.exists()
    assert work_dir_for(out).is_dir()
    # The original back in place: the run goes on from the finished segments, and the result
    # is the same as an uninterrupted run, sound included.
    _chunky.clear()
    os.replace(original, src)
    assert cli.main(["restore", str(src), "-o", str(out), "--engine", "test-chunky",
                     "--resume"]) == 0
    assert "resuming after" in capsys.readouterr().err
    times_a, images_a = decode_video(full)
    times_b, images_b = decode_video(out)
    assert times_a == times_b and all((a == b).all() for a, b in zip(images_a, images_b))
    assert packet_payloads(full) == packet_payloads(out)


def test_an_input_replaced_during_the_pass_through_copy_is_one_line(
        tmp_path: Path, _chunky: list,  # type: ignore[type-arg]
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from seedvr_desktop import cli
    from seedvr_desktop.engine import sinks, video_run

    monkeypatch.setattr(video_run, "_EVENT_INTERVAL", 0.0)
    src = clips.make_video(tmp_path / "in.mp4", frames=45, audio="aac").path
    other = clips.make_video(tmp_path / "other.mp4", frames=45, audio="aac", first_id=700).path
    written = [0]
    write = sinks.SegmentSink.write_frame

    def counting(self: object, frame: object, time: Fraction) -> None:
        written[0] += 1
        if written[0] == 20:
            os.replace(other, src)
        write(self, frame, time)  # type: ignore[arg-type]

    monkeypatch.setattr(sinks.SegmentSink, "write_frame", counting)
    out = tmp_path / "out.mp4"
    code = cli.main(["restore", str(src), "-o", str(out), "--engine", "none"])
    assert code == 1
    assert "was replaced by another file" in _one_line(capsys.readouterr().err)
    assert not out.exists()


def test_a_reader_refuses_to_reopen_a_replaced_file(tmp_path: Path) -> None:
    from seedvr_desktop.media.reader import SourceChanged, VideoReader

    src = clips.make_video(tmp_path / "in.mp4", frames=12).path
    other = clips.make_video(tmp_path / "other.mp4", frames=30, first_id=900).path
    with VideoReader(src) as reader:
        assert reader.read(3).index == 3
        os.replace(other, src)
        with pytest.raises(SourceChanged, match=r"in\.mp4 was replaced"):
            reader.read(0)  # a seek back reopens the file: it is another one now


def test_a_growing_file_is_not_a_replaced_one(tmp_path: Path) -> None:
    from seedvr_desktop.media.reader import FileIdentity

    path = tmp_path / "capture.dv"
    path.write_bytes(b"x" * 100)
    began = FileIdentity.of(path)
    assert began is not None
    with path.open("ab") as fh:
        fh.write(b"y" * 100)  # still being captured
    assert began.change(FileIdentity.of(path)) == ""
    other = tmp_path / "other.dv"
    other.write_bytes(b"x" * 300)
    with path.open("rb"):  # held open, as a run's decoder holds it: its inode stays taken
        os.replace(other, path)
        assert "replaced" in began.change(FileIdentity.of(path))
    path.unlink()
    assert "deleted" in began.change(FileIdentity.of(path))
    path.write_bytes(b"x" * 300)
    now = FileIdentity.of(path)
    assert now is not None
    path.write_bytes(b"z" * 10)  # rewritten in place, shorter
    assert "shorter" in now.change(FileIdentity.of(path))
