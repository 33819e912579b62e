"""The restore pipeline end to end on tiny synthetic clips: timing, sizes, sound, damage, cancel.

Each test restores a clip made by tests.clips and checks the output against facts the clip
factory recorded (frame times, the frame number drawn into each picture), not against an
earlier output of the pipeline.
"""

from __future__ import annotations

import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from seedvr_desktop.engine import plan as job_planning
from seedvr_desktop.engine.job import RestoreJob, SizeRule
from seedvr_desktop.engine.pipeline import run_restore
from seedvr_desktop.engine.plan import plan_job
from seedvr_desktop.errors import MediaError, UserError
from seedvr_desktop.media.codecs import EncodeSettings
from seedvr_desktop.media.images import read_image
from seedvr_desktop.media.probe import probe
from tests.clips import (
    frame_id,
    frame_pattern,
    make_corrupt,
    make_image,
    make_null_frame_avi,
    make_text_file,
    make_truncated,
    make_video,
)
from tests.engine import pipeline_fakes
from tests.engine.pipeline_fakes import decode_video, packet_payloads


def restore(src: Path, out: Path, **kwargs: object) -> list:
    cancel = kwargs.pop("cancel", None)
    job = RestoreJob(Path(src), Path(out), engine=kwargs.pop("engine", "none"), **kwargs)
    return list(run_restore(job, cancel))  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _reset_fake_engine() -> None:
    pipeline_fakes.CALLS.clear()
    pipeline_fakes.HOOK.clear()


@pytest.mark.parametrize("engine", ["none", "test-chunky"])
def test_frame_count_timing_and_content_round_trip(tmp_path: Path, engine: str) -> None:
    clip = make_video(tmp_path / "vfr.mp4", frames=30, vfr_jitter=True, audio="aac")
    events = restore(clip.path, tmp_path / "out.mp4", engine=engine)
    assert events[-1].stage == "done"
    times, images = decode_video(tmp_path / "out.mp4")
    assert times == list(clip.times)  # VFR kept exactly (MP4 keeps the source time base)
    assert [frame_id(im) for im in images] == list(clip.ids)
    assert images[0].shape[:2] == (64, 96)
    # Audio copied packet for packet.
    assert packet_payloads(tmp_path / "out.mp4") == packet_payloads(clip.path)


def test_progress_events(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "c.mkv", frames=40)
    events = restore(clip.path, tmp_path / "out.mkv", engine="test-chunky")
    stages = [e.stage for e in events]
    assert stages[0] == "probe" and stages[-1] == "done" and "finalize" in stages
    work = [e for e in events if e.stage == "restore"]
    done = [e.frames_done for e in work]
    assert done == sorted(done) and done[-1] == 40 and all(e.frames_total == 40 for e in work)
    assert work[-1].fps > 0
    assert work[-1].chunk_count == len(pipeline_fakes.CALLS) == work[-1].chunk_index


def test_chunks_never_cross_a_scene_cut(tmp_path: Path) -> None:
    # 20 frames of one scene, then 20 of a completely different one.
    path = tmp_path / "cut.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        for i in range(40):
            img = frame_pattern(i, (96, 64))
            if i >= 20:
                img = (255 - img)[:, ::-1].copy()
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 25)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    restore(path, tmp_path / "out.mp4", engine="test-chunky")
    spans = [(first, first + n) for _, first, n in pipeline_fakes.CALLS]
    assert spans, "the engine was not called"
    assert all(not (a < 20 < b) for a, b in spans), spans
    assert any(a == 20 for a, _ in spans)  # a chunk starts exactly at the cut


def test_none_engine_resize_keeps_timing(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "c.mp4", frames=12)
    restore(clip.path, tmp_path / "out.mp4", size=SizeRule(scale=2.0))
    times, images = decode_video(tmp_path / "out.mp4")
    assert times == list(clip.times) and images[0].shape[:2] == (128, 192)
    assert [frame_id(im) for im in images] == list(clip.ids)


def test_rotated_phone_clip_is_written_upright(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "phone.mp4", frames=8, rotation=90, vfr_jitter=True)
    restore(clip.path, tmp_path / "out.mp4")
    times, images = decode_video(tmp_path / "out.mp4")
    assert images[0].shape[:2] == (96, 64)  # stored 96x64 turned: shown 64 wide, 96 high
    assert [frame_id(im) for im in images] == list(clip.ids)  # readable without turning
    assert times == list(clip.times)
    assert probe(tmp_path / "out.mp4").video.rotation == 0


def test_odd_size_is_rounded_to_even(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "odd.mkv", frames=6, size=(719, 481))
    restore(clip.path, tmp_path / "out.mkv")
    _, images = decode_video(tmp_path / "out.mkv")
    assert images[0].shape[:2] == (482, 720)
    assert [frame_id(im) for im in images] == list(clip.ids)


def test_one_frame_video(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "one.mp4", frames=1)
    restore(clip.path, tmp_path / "out.mp4", engine="test-chunky")
    times, images = decode_video(tmp_path / "out.mp4")
    assert len(images) == 1 and times == [Fraction(0)] and frame_id(images[0]) == 0


def test_dropped_frame_avi_keeps_each_pictures_time(tmp_path: Path) -> None:
    clip = make_null_frame_avi(tmp_path / "capture.avi")
    restore(clip.path, tmp_path / "out.mp4")
    times, images = decode_video(tmp_path / "out.mp4")
    assert times == list(clip.times)
    assert [frame_id(im) for im in images] == list(clip.ids)


def test_trim_cuts_video_and_audio_together(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "c.mp4", frames=50, audio="aac")  # 2 s at 25 fps
    restore(clip.path, tmp_path / "out.mp4", start_time=0.5, end_time=1.5)
    times, images = decode_video(tmp_path / "out.mp4")
    # Frame 12 (0.48 s) is on screen at 0.5 s; frame 37 (1.48 s) is the last to start before 1.5.
    assert [frame_id(im) for im in images] == list(range(12, 38))
    assert times == [t - clip.times[12] for t in clip.times[12:38]]
    with av.open(str(tmp_path / "out.mp4")) as f:
        a = f.streams.audio[0]
        packets = [p for p in f.demux(a) if p.size]
        start = float(packets[0].pts * a.time_base)
        end = float((packets[-1].pts + packets[-1].duration) * a.time_base)
    packet_len = 1024 / 48000
    assert -packet_len <= start <= packet_len / 2
    assert abs(end - 1.04) <= packet_len  # video: 0.48 s .. 1.52 s


def test_corrupt_frames_keep_count_and_timing(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "c.mp4", frames=40, gop=10)
    bad = make_corrupt(clip.path, tmp_path / "bad.mp4", count=2)
    events = restore(bad.path, tmp_path / "out.mp4", engine="test-chunky")
    times, _ = decode_video(tmp_path / "out.mp4")
    assert times == list(clip.times)
    assert "damaged frame" in events[-1].message


def test_truncated_files(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "c.mkv", frames=40)
    cut = make_truncated(clip.path, tmp_path / "cut.mkv", 0.6)
    expected = probe(cut).video.frame_count
    assert 0 < expected < 40
    restore(cut, tmp_path / "out.mkv")
    times, _ = decode_video(tmp_path / "out.mkv")
    assert len(times) == expected
    mp4 = make_video(tmp_path / "c.mp4", frames=20)
    cut_mp4 = make_truncated(mp4.path, tmp_path / "cut.mp4", 0.5)  # index is at the end
    with pytest.raises(MediaError):
        restore(cut_mp4, tmp_path / "out.mp4")


def test_two_ac3_tracks_and_subtitles_are_copied_to_mkv(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "c.mkv", frames=25, audio="ac3", audio_tracks=2,
                      subtitles=[(0.1, 0.5, "hello"), (0.6, 0.9, "world")])
    restore(clip.path, tmp_path / "out.mkv")
    assert packet_payloads(tmp_path / "out.mkv") == packet_payloads(clip.path)
    assert packet_payloads(tmp_path / "out.mkv", "subtitle") == \
        packet_payloads(clip.path, "subtitle")
    info = probe(tmp_path / "out.mkv")
    assert [a.language for a in info.audio] == ["eng", "fra"]
    assert [s.codec for s in info.subtitles] == ["subrip"]


@pytest.mark.parametrize(("codec", "src_ext", "out_ext"),
                         [("ac3", ".mkv", ".mp4"), ("mp3", ".mp4", ".mkv"),
                          ("ac3", ".mp4", ".mov")])
def test_audio_codecs_copied_bit_exact(tmp_path: Path, codec: str, src_ext: str,
                                       out_ext: str) -> None:
    clip = make_video(tmp_path / f"c{src_ext}", frames=20, audio=codec,
                      subtitles=[(0.1, 0.4, "hi")] if src_ext == ".mp4" else None)
    events = restore(clip.path, tmp_path / f"out{out_ext}")
    source = packet_payloads(clip.path)
    assert source and source[0]
    assert packet_payloads(tmp_path / f"out{out_ext}") == source
    if src_ext == ".mp4" and out_ext == ".mkv":  # mov_text cannot go into Matroska as is
        assert "subtitle" in events[-1].message


def test_ten_bit_h265_and_png_sequence(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "c.mp4", frames=5)
    restore(clip.path, tmp_path / "out.mkv", encode=EncodeSettings(codec="h265", bit_depth=10))
    assert probe(tmp_path / "out.mkv").video.pix_fmt == "yuv420p10le"
    folder = tmp_path / "frames"
    restore(clip.path, folder, encode=EncodeSettings(codec="png"))
    files = sorted(folder.iterdir())
    assert [f.name for f in files] == [f"frame_{i:06d}.png" for i in range(1, 6)]
    assert [frame_id(read_image(f)) for f in files] == list(clip.ids)


def test_still_images(tmp_path: Path) -> None:
    make_image(tmp_path / "a.jpg", index=5)
    restore(tmp_path / "a.jpg", tmp_path / "a_out.jpg", size=SizeRule(scale=2.0))
    out = read_image(tmp_path / "a_out.jpg")
    assert out.shape == (128, 192, 3) and out.dtype == np.uint8 and frame_id(out) == 5
    make_image(tmp_path / "b.png", index=7, bit_depth=16)
    restore(tmp_path / "b.png", tmp_path / "b_out.png", engine="test-chunky")
    out = read_image(tmp_path / "b_out.png")
    assert out.dtype == np.uint16 and frame_id(out) == 7
    with pytest.raises(UserError):
        restore(tmp_path / "a.jpg", tmp_path / "a_out.mp4")


def test_odd_size_still_keeps_its_exact_size(tmp_path: Path) -> None:
    """Stills have no 4:2:0 chroma, so --engine none must not round 319x241 up to 320x242."""
    make_image(tmp_path / "odd.png", size=(319, 241), index=3)
    restore(tmp_path / "odd.png", tmp_path / "odd_out.png")
    out = read_image(tmp_path / "odd_out.png")
    assert out.shape == (241, 319, 3) and frame_id(out) == 3


def test_renamed_still_suggests_its_real_format(tmp_path: Path) -> None:
    """A JPEG named .mp4 restored to x.mp4: the hint names the format it really is."""
    make_image(tmp_path / "photo.jpg", index=1)
    (tmp_path / "photo.jpg").rename(tmp_path / "photo.mp4")
    with pytest.raises(UserError, match=r"such as x\.jpg"):
        restore(tmp_path / "photo.mp4", tmp_path / "x.mp4")


def test_user_errors(tmp_path: Path) -> None:
    text = make_text_file(tmp_path / "notes.mp4")
    with pytest.raises(MediaError):
        restore(text, tmp_path / "out.mp4")
    clip = make_video(tmp_path / "c.mp4", frames=4)
    existing = tmp_path / "exists.mp4"
    existing.write_bytes(b"keep me")
    with pytest.raises(UserError, match="already exists"):
        restore(clip.path, existing)
    assert existing.read_bytes() == b"keep me"
    with pytest.raises(UserError):
        restore(clip.path, clip.path, overwrite=True)
    with pytest.raises(UserError):
        restore(clip.path, tmp_path / "x.mp4", engine="no-such-engine")
    with pytest.raises(UserError):
        restore(clip.path, tmp_path / "x.mp4", encode=EncodeSettings(codec="prores"))
    with pytest.raises(UserError):
        restore(clip.path, tmp_path / "x.mp4", start_time=5.0)


def test_cancel_removes_temporary_output_and_keeps_existing(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "c.mp4", frames=40, audio="aac")
    out = tmp_path / "out.mp4"
    out.write_bytes(b"an older restore")
    cancel = threading.Event()
    pipeline_fakes.HOOK.append(lambda ctx: cancel.set() if ctx.index == 1 else None)
    events = restore(clip.path, out, engine="test-chunky", overwrite=True, cancel=cancel)
    assert events[-1].stage == "cancelled"
    assert out.read_bytes() == b"an older restore"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.mp4", "out.mp4"]
    assert len(pipeline_fakes.CALLS) == 2  # stopped between chunks


def test_plan_job(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "c.mp4", frames=30)
    plan = plan_job(RestoreJob(clip.path, tmp_path / "o.mp4", engine="test-chunky",
                               size=SizeRule(short_side=128), start_time=0.2))
    assert (plan.first_frame, plan.stop_frame, plan.frame_count) == (5, 30, 25)
    assert plan.output_size == (192, 128) and plan.engine == "test-chunky"
    assert plan.chunk_count == 4  # 9-frame chunks sharing 2 frames: 0-9, 7-16, 14-23, 21-25
    auto = plan_job(RestoreJob(clip.path, tmp_path / "o.mp4", engine="auto"))
    assert auto.engine != "auto" and auto.notes and auto.engine in auto.notes[0]


def test_segments_are_short_enough_for_resume(monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    """Segment boundaries fall on chunk boundaries; many segments concatenate seamlessly."""
    monkeypatch.setattr(job_planning, "SEGMENT_SECONDS", 0.2)  # 5 frames at 25 fps
    clip = make_video(tmp_path / "c.mp4", frames=30, audio="aac", vfr_jitter=True)
    restore(clip.path, tmp_path / "out.mp4", engine="test-chunky")
    times, images = decode_video(tmp_path / "out.mp4")
    assert times == list(clip.times) and [frame_id(im) for im in images] == list(clip.ids)


# ----------------------------------------------------------------------------- engine options


def test_chunk_options_override_the_engine_caps(tmp_path: Path) -> None:
    """chunk_length/overlap are the pipeline's: they change the chunks the engine receives."""
    clip = make_video(tmp_path / "c.mp4", frames=12)
    # test-chunky wants 9-frame chunks (4n+1) sharing 2; 6 is lowered to 5, overlap 1 fits.
    events = restore(clip.path, tmp_path / "out.mp4", engine="test-chunky",
                     engine_options={"chunk_length": 6, "overlap": 1})
    assert events[-1].stage == "done"
    # 12 frames in 5-frame chunks sharing 1: [0, 5), [4, 9), [8, 12) (padded to 5).
    assert pipeline_fakes.CALLS == [(0, 0, 5), (1, 4, 5), (2, 8, 4)]
    _, images = decode_video(tmp_path / "out.mp4")
    assert [frame_id(im) for im in images] == list(clip.ids)

    def caps(**options: object):
        job = RestoreJob(clip.path, tmp_path / "o.mp4", engine="test-chunky",
                         engine_options=options)
        return plan_job(job).caps

    assert (caps().chunk_length, caps().overlap) == (9, 2)  # the engine's own
    assert (caps(chunk_length=14, overlap=3).chunk_length, caps(overlap=3).chunk_length) == (13, 9)
    assert caps(chunk_length=5).overlap == 2  # default overlap kept where it fits ...
    assert (caps(chunk_length=3).chunk_length, caps(chunk_length=3).overlap) == (1, 0)  # ... shrunk
    assert plan_job(RestoreJob(clip.path, tmp_path / "o.mp4", engine="test-chunky",
                               engine_options={"chunk_length": 5, "overlap": 1})).chunk_count == 3
    for bad in ({"overlap": 5}, {"chunk_length": 5, "overlap": 3}, {"chunk_length": 0},
                {"chunk_length": "long"}, {"overlap": -1}, {"chunk_length": 4.5}):
        with pytest.raises(UserError):
            caps(**bad)


def test_engines_get_only_their_options() -> None:
    """Project settings carry generative options for every clip: a non-generative engine drops
    them, but a misspelt option is still refused."""
    from seedvr_desktop.engine.classic.engine import ClassicEngine
    from seedvr_desktop.engine.registry import create_engine, engine_options

    project_like = {"model": "m", "color_fix": "wavelet", "precision": "auto", "prompt": "p",
                    "chunk_length": 9, "overlap": 2, "strength": 0.5}
    engine = create_engine("classic", **project_like)
    assert isinstance(engine, ClassicEngine) and engine.denoise == 0.5
    assert engine_options("classic", project_like) == {"strength": 0.5}
    assert engine_options("none", project_like) == {"strength": 0.5}
    create_engine("none", **project_like)
    with pytest.raises(UserError, match="denoize"):
        create_engine("classic", denoize=1.0)
    with pytest.raises(UserError, match="bogus"):
        create_engine("none", bogus=1)
    # Generative engines keep their options (only the pipeline's chunk geometry is removed).
    assert engine_options("seedvr", project_like) == {
        k: v for k, v in project_like.items() if k not in ("chunk_length", "overlap")}


def test_classic_upscales_by_default(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "c.mp4", frames=4)  # 96x64
    plan = plan_job(RestoreJob(clip.path, tmp_path / "o.mp4", engine="classic"))
    assert plan.output_size == (192, 128)
    none = plan_job(RestoreJob(clip.path, tmp_path / "o.mp4", engine="none"))
    assert none.output_size == (96, 64)


class _OwnedChunky(pipeline_fakes.ChunkyEngine):
    """The chunky engine, counting close() calls and the chunk length it was shown."""

    def __init__(self) -> None:
        self.closed = 0
        self.seen_lengths: list[int] = []

    def restore_chunk(self, frames, context, cancel=None):  # type: ignore[no-untyped-def]
        self.seen_lengths.append(self.caps.chunk_length)
        return super().restore_chunk(frames, context, cancel)

    def close(self) -> None:
        self.closed += 1


def test_a_given_engine_is_used_and_left_open(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "c.mp4", frames=12)
    engine = _OwnedChunky()
    job = RestoreJob(clip.path, tmp_path / "out.mp4", engine="test-chunky",
                     engine_options={"chunk_length": 5, "overlap": 1})
    events = list(run_restore(job, engine=engine))
    assert events[-1].stage == "done"
    assert engine.closed == 0 and len(pipeline_fakes.CALLS) == 3
    # While the job ran the engine saw the job's chunk geometry; its own caps are back now.
    assert set(engine.seen_lengths) == {5} and engine.caps.chunk_length == 9
    assert "caps" not in engine.__dict__
    make_image(tmp_path / "a.png", index=4)
    image_job = RestoreJob(tmp_path / "a.png", tmp_path / "a_out.png", engine="test-chunky")
    assert list(run_restore(image_job, engine=engine))[-1].stage == "done"
    assert engine.closed == 0 and frame_id(read_image(tmp_path / "a_out.png")) == 4


def test_an_engine_the_pipeline_creates_is_closed(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from seedvr_desktop.engine import registry

    made: list[_OwnedChunky] = []

    def factory(**options: object) -> _OwnedChunky:
        made.append(_OwnedChunky())
        return made[-1]

    registry.engine_names()
    monkeypatch.setattr(registry, "_ENTRIES", dict(registry._ENTRIES))
    registry.register_engine("test-owned", factory, pipeline_fakes.CHUNKY_CAPS, priority=-50)
    clip = make_video(tmp_path / "c.mp4", frames=6)
    restore(clip.path, tmp_path / "out.mp4", engine="test-owned")
    make_image(tmp_path / "a.png", index=2)
    restore(tmp_path / "a.png", tmp_path / "a_out.png", engine="test-owned")
    assert [e.closed for e in made] == [1, 1]


def test_auto_ranking_asks_callable_priorities_when_ranking(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from seedvr_desktop.engine import registry

    registry.engine_names()
    monkeypatch.setattr(registry, "_ENTRIES", dict(registry._ENTRIES))
    asked: list[int] = []
    rank = [-1]

    def priority() -> int:
        asked.append(rank[0])
        return rank[0]

    registry.register_engine("test-lazy", lambda **o: pipeline_fakes.ChunkyEngine(),
                             pipeline_fakes.CHUNKY_CAPS, priority=priority)
    assert asked == []  # registering evaluates nothing
    assert registry.resolve_auto() != "test-lazy"
    rank[0] = 10_000
    assert registry.resolve_auto() == "test-lazy"
    assert registry.engine_names()[0] == "test-lazy" and len(asked) >= 2
