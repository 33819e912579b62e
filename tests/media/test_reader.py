"""VideoReader: frames, timing, accurate seeks, damage handling, and flat memory.

The yardsticks are independent of the reader: the frame number drawn into every picture
(tests.clips.frame_id), the timestamps the factories wrote, and a plain PyAV decode.
"""

from __future__ import annotations

import gc
import os
import random
import weakref
from fractions import Fraction

import numpy as np
import pytest

from seedvr_desktop.errors import MediaError
from seedvr_desktop.media.probe import probe
from seedvr_desktop.media.reader import VideoFrame, VideoReader, time_to_frame_index
from tests.clips import (
    frame_id,
    frame_pattern,
    make_corrupt,
    make_image,
    make_null_frame_avi,
    make_truncated,
    make_video,
    reference_decode,
)


def _all(reader: VideoReader) -> list[VideoFrame]:
    return list(reader.frames())


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("h264.mp4", {"bframes": 3, "audio": "aac"}),
        ("divx.avi", {"codec": "mpeg4", "bframes": 2}),
        ("ffv1.mkv", {"codec": "ffv1", "frames": 8}),
        ("vp9.webm", {"frames": 12}),
        ("ntsc.mov", {"fps": Fraction(30000, 1001), "frames": 15}),
        ("prores.mov", {"codec": "prores_ks", "frames": 4}),
        ("mpeg2.m2ts", {"codec": "mpeg2video", "bframes": 2, "gop": 12}),
    ],
)
def test_full_decode_ids_and_times(clip_factory, name, kwargs) -> None:
    clip = clip_factory(name, **kwargs)
    with VideoReader(clip) as reader:
        frames = _all(reader)
        assert reader.frame_count == clip.frames
        assert [f.index for f in frames] == list(range(clip.frames))
        assert [frame_id(f.image) for f in frames] == list(clip.ids)
        assert not any(f.damaged for f in frames) and reader.damaged_frames == 0
        times = [f.time for f in frames]
        assert times == reader.frame_times()
        # Timing round trip: the written timestamps, up to a constant start offset (AVI delays
        # B-frame streams by one tick) and Matroska's millisecond rounding.
        offset = times[0] - clip.times[0]
        tol = Fraction(1, 1000) if name.endswith((".mkv", ".webm")) else 0
        assert all(abs(t - offset - c) <= tol for t, c in zip(times, clip.times))
        assert frames[0].image.shape == (64, 96, 3) and frames[0].image.dtype == np.uint8
        assert (reader.width, reader.height) == (96, 64)


def test_pixels_match_plain_pyav(clip_factory) -> None:
    clip = clip_factory("h264.mp4", bframes=3, audio="aac")
    ref = reference_decode(clip)
    with VideoReader(clip) as reader:
        for frame, (_, img) in zip(reader.frames(), ref, strict=True):
            assert np.array_equal(frame.image, img)


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("longgop.mp4", {"frames": 90, "gop": 250, "bframes": 3}),
        ("shortgop.mkv", {"frames": 60, "gop": 12, "bframes": 2}),
        ("divx.avi", {"frames": 40, "codec": "mpeg4", "bframes": 2, "gop": 15}),
        ("vfr.mkv", {"frames": 40, "vfr_jitter": True, "gop": 10}),
        ("vp9.webm", {"frames": 30, "gop": 10}),
        ("mpeg2.mpg", {"frames": 40, "codec": "mpeg2video", "bframes": 2, "gop": 12}),
        ("mpeg2.ts", {"frames": 40, "codec": "mpeg2video", "bframes": 2, "gop": 12}),
        ("h264.ts", {"frames": 40, "bframes": 3, "gop": 12}),
        ("dvd.vob", {"frames": 60, "codec": "mpeg2video", "bframes": 2, "audio": "ac3"}),
        ("msclock.avi", {"frames": 30, "codec": "mpeg4", "vfr_jitter": True, "gop": 12}),
    ],
)
def test_read_equals_full_decode(clip_factory, name, kwargs) -> None:
    clip = clip_factory(name, **kwargs)
    with VideoReader(clip) as reader:
        full = _all(reader)
    # Every index in a shuffled order (fresh seeks, short forward hops, backward jumps), then a
    # sequential run that the reader serves from its open decoder.
    picks = list(range(clip.frames))
    random.Random(7).shuffle(picks)
    picks += [0, 1, 2, 3, 5, 8]
    with VideoReader(clip) as reader:
        for i in picks:
            got = reader.read(i)
            assert got.index == i and got.time == full[i].time
            assert np.array_equal(got.image, full[i].image), f"frame {i}"
            assert frame_id(got.image) == clip.ids[i]


def test_frames_slices(clip_factory) -> None:
    clip = clip_factory("longgop.mp4", frames=90, gop=250, bframes=3)
    with VideoReader(clip) as reader:
        part = list(reader.frames(37, 45))
        assert [f.index for f in part] == list(range(37, 45))
        assert [frame_id(f.image) for f in part] == list(range(37, 45))
        assert [f.index for f in reader.frames(89, 500)] == [89]
        assert list(reader.frames(90)) == []
        with pytest.raises(IndexError):
            reader.frames(91)
        with pytest.raises(IndexError):
            reader.read(90)
        with pytest.raises(IndexError):
            reader.read(-1)


def test_variable_frame_rate_keeps_times(clip_factory) -> None:
    clip = clip_factory("phone.mp4", frames=30, vfr_jitter=True)
    with VideoReader(clip) as reader:
        assert [f.time for f in reader.frames()] == list(clip.times)
        assert reader.frame_times() == list(clip.times)


def test_null_frame_avi_keeps_times(tmp_path) -> None:
    clip = make_null_frame_avi(tmp_path / "capture.avi", slots=(0, 1, 2, 9, 10, 20, 21, 40))
    with VideoReader(clip) as reader:
        frames = _all(reader)
    assert [frame_id(f.image) for f in frames] == [0, 1, 2, 9, 10, 20, 21, 40]
    assert [f.time for f in frames] == [Fraction(s, 15) for s in (0, 1, 2, 9, 10, 20, 21, 40)]
    assert not any(f.damaged for f in frames)


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_applied_on_request(clip_factory, rotation) -> None:
    clip = clip_factory("phone.mov", frames=3, rotation=rotation)
    with VideoReader(clip) as reader:
        img = reader.read(2).image
        turned = rotation in (90, 270)
        assert (reader.width, reader.height) == ((64, 96) if turned else (96, 64))
        assert img.shape == (reader.height, reader.width, 3)
        assert frame_id(img) == 2  # upright: the code strip is on top
    with VideoReader(clip, apply_rotation=False) as reader:
        raw = reader.read(2).image
        assert raw.shape == (64, 96, 3)
        with pytest.raises(ValueError):
            frame_id(raw)


def test_sample_aspect_ratio_applied_on_request(clip_factory) -> None:
    clip = clip_factory("dv.mkv", frames=2, sar=Fraction(4, 3))
    with VideoReader(clip) as reader:
        assert reader.read(0).image.shape == (64, 96, 3)
    with VideoReader(clip, apply_sar=True) as reader:
        img = reader.read(1).image
        assert (reader.width, reader.height) == (128, 64)
        assert img.shape == (64, 128, 3)
        assert frame_id(img) == 1
    clip = clip_factory("both.mp4", frames=2, sar=Fraction(4, 3), rotation=90)
    with VideoReader(clip, apply_sar=True) as reader:
        v = probe(clip).video
        assert (reader.width, reader.height) == (v.display_width, v.display_height) == (64, 128)
        assert frame_id(reader.read(0).image) == 0


def test_ten_bit_source(clip_factory) -> None:
    clip = clip_factory("deep.mkv", frames=4, bit_depth=10)
    with VideoReader(clip, high_bit_depth=True) as reader:
        frames = _all(reader)
    assert all(f.image.dtype == np.uint16 for f in frames)
    assert [frame_id(f.image) for f in frames] == [0, 1, 2, 3]
    assert np.any(frames[1].image % 257 != 0)  # more than 8 bits of information
    ref = reference_decode(clip, "rgb48le")
    assert np.array_equal(frames[1].image, ref[1][1])
    with VideoReader(clip) as reader:
        assert reader.read(1).image.dtype == np.uint8
    eight = clip_factory("eight.mp4", frames=2)
    with VideoReader(eight, high_bit_depth=True) as reader:
        assert reader.read(0).image.dtype == np.uint8


@pytest.mark.parametrize("name", ["odd.mkv", "odd_rgb.mkv", "odd_png.mov"])
def test_odd_size(clip_factory, name) -> None:
    codec = {"odd.mkv": "ffv1", "odd_rgb.mkv": "libx264rgb", "odd_png.mov": "png"}[name]
    clip = clip_factory(name, codec=codec, size=(719, 481), frames=3)
    with VideoReader(clip) as reader:
        frames = _all(reader)
    assert [f.image.shape for f in frames] == [(481, 719, 3)] * 3
    assert [frame_id(f.image) for f in frames] == [0, 1, 2]


def test_one_frame_video_and_image(clip_factory, tmp_path) -> None:
    clip = clip_factory("one.mp4", frames=1)
    with VideoReader(clip) as reader:
        assert [frame_id(f.image) for f in reader.frames()] == [0]
        assert frame_id(reader.read(0).image) == 0
    still = make_image(tmp_path / "still.png", (97, 65), index=12)
    with VideoReader(still) as reader:
        assert reader.info.is_image and reader.frame_count == 1
        assert frame_id(reader.read(0).image) == 12
        assert reader.read(0).image.shape == (65, 97, 3)


def test_not_a_video(tmp_path) -> None:
    (tmp_path / "a.mp4").write_text("hello")
    with pytest.raises(MediaError):
        VideoReader(tmp_path / "a.mp4")
    with pytest.raises(MediaError):
        VideoReader(tmp_path / "nothing.mp4")


def test_truncated_file_yields_what_decodes(clip_factory, tmp_path) -> None:
    for name, kw in (("cut.mkv", {}), ("cut.avi", {"codec": "mjpeg"})):
        src = clip_factory(name, frames=40, **kw)
        cut = make_truncated(src, tmp_path / f"half_{name}", 0.5)
        with VideoReader(cut) as reader:
            frames = _all(reader)
            assert len(frames) == reader.frame_count
            assert 10 < len(frames) < 40
            good = [f for f in frames if not f.damaged]
            assert [frame_id(f.image) for f in good] == [f.index for f in good]
            assert reader.damaged_frames <= 2


def test_corrupt_frames_repeat_last_good_and_keep_timing(clip_factory, tmp_path) -> None:
    src = clip_factory("intra.avi", codec="mjpeg", frames=20)
    bad = make_corrupt(src, tmp_path / "bad.avi", frames=[7, 8, 15])
    with VideoReader(bad) as reader:
        frames = _all(reader)
        assert reader.frame_count == 20
        assert [f.index for f in frames] == list(range(20))
        assert [f.time for f in frames] == [Fraction(i, 25) for i in range(20)]
        assert [f.index for f in frames if f.damaged] == [7, 8, 15]
        assert reader.damaged_frames == 3 and reader.damaged_indices == [7, 8, 15]
        ids = [frame_id(f.image) for f in frames]
        assert ids[6:10] == [6, 6, 6, 9] and ids[15] == 14
        # Seeking straight to a damaged picture gives the same repeat as the full decode.
        assert np.array_equal(reader.read(8).image, frames[8].image)
        assert reader.read(8).damaged


def test_corrupt_first_frame_uses_first_good(clip_factory, tmp_path) -> None:
    src = clip_factory("intra.avi", codec="mjpeg", frames=20)
    bad = make_corrupt(src, tmp_path / "bad0.avi", frames=[0, 1])
    with VideoReader(bad) as reader:
        frames = _all(reader)
        assert [frame_id(f.image) for f in frames[:3]] == [2, 2, 2]
        assert [f.damaged for f in frames[:3]] == [True, True, False]
        assert frame_id(reader.read(1).image) == 2


def test_corrupt_h264_keeps_count_and_timing(clip_factory, tmp_path) -> None:
    src = clip_factory("inter.mp4", frames=30, bframes=2)
    bad = make_corrupt(src, tmp_path / "bad.mp4", count=3)
    with VideoReader(bad) as reader:
        frames = _all(reader)
        assert len(frames) == 30
        assert [f.time for f in frames] == list(src.times)
        assert reader.damaged_frames >= 3  # at least the pictures whose packets were wrecked
        assert {f.time for f in frames if f.damaged} >= set(bad.extra["damaged_times"])


def _single_thread_ids(path) -> dict[Fraction, int | None]:
    """Frame number per picture time from a plain one-thread PyAV decode, skipping errors;
    the later picture wins where a timestamp repeats (the decoder's own final answer)."""
    import av

    out: dict[Fraction, int | None] = {}
    with av.open(os.fspath(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.FFmpegError:
                continue
            for f in frames:
                try:
                    out[f.pts * f.time_base] = frame_id(f.to_ndarray(format="rgb24"))
                except ValueError:
                    out[f.pts * f.time_base] = None
    return out


def test_damage_at_the_end_keeps_pictures_frame_threads_had_queued(clip_factory,
                                                                   tmp_path) -> None:
    """Wrecked last packets of an H.264 file: draining a frame-threaded decoder fails and the
    pictures it still held are gone; the reader must re-decode them, not repeat frame 18."""
    src = clip_factory("tail.mp4", frames=24, bframes=3)
    bad = make_corrupt(src, tmp_path / "bad_tail.mp4", frames=[21, 22, 23])
    want = _single_thread_ids(bad)
    assert want.get(Fraction(19, 25)) == 19 and want.get(Fraction(20, 25)) == 20  # premise
    with VideoReader(bad, threads=4) as reader:
        frames = _all(reader)
    assert [f.time for f in frames] == list(src.times)
    good = [f for f in frames if not f.damaged]
    assert {f.time: frame_id(f.image) for f in good} == {t: want[t] for t in want}
    ids = [frame_id(f.image) for f in frames]
    assert ids[:21] == list(range(21)) and ids[21:] == [20, 20, 20]
    assert reader.damaged_indices == [21, 22, 23]


def test_clean_files_are_decoded_once(clip_factory, monkeypatch) -> None:
    """The tail re-decode is for damaged files only: a clean file opens one decoder."""
    clip = clip_factory("h264.mp4", bframes=3, audio="aac")
    opened = []
    original = VideoReader._open

    def counting(self, *args, **kwargs):
        opened.append(args or kwargs)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(VideoReader, "_open", counting)
    with VideoReader(clip, threads=4) as reader:
        assert len(_all(reader)) == clip.frames
    assert len(opened) == 1


def test_damaged_first_key_frame_does_not_shift_later_pictures(clip_factory,
                                                               tmp_path) -> None:
    """MPEG-4 Part 2 with B-frames and a wrecked first I-frame: the decoder emits a stray
    picture carrying a timestamp it repeats a moment later. Every picture after the next key
    frame must land on its own slot, not one late."""
    src = clip_factory("divx_gop12.avi", frames=24, codec="mpeg4", bframes=2, gop=12)
    bad = make_corrupt(src, tmp_path / "bad_key.avi", frames=[0])
    with VideoReader(bad) as reader:
        frames = _all(reader)
    assert len(frames) == 24
    assert [frame_id(f.image) for f in frames[12:]] == list(range(12, 24))
    assert not any(f.damaged for f in frames[12:])


def test_nothing_decodes_is_a_media_error(clip_factory, tmp_path) -> None:
    src = clip_factory("intra.avi", codec="mjpeg", frames=20)
    dead = make_corrupt(src, tmp_path / "dead.avi", frames=list(range(1, 20)))
    # Probing needs one good picture, so open the reader first, then wreck picture 0 as well
    # (same size and mtime, so the probe cache still applies).
    reader = VideoReader(dead)
    st = dead.path.stat()
    make_corrupt(src, dead.path, frames=list(range(20)))
    os.utime(dead.path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert reference_decode(dead) == []
    with pytest.raises(MediaError):
        _all(reader)
    reader.close()


def test_frames_are_not_retained(clip_factory) -> None:
    clip = clip_factory("stream.mp4", frames=120, size=(160, 96))
    refs = []
    with VideoReader(clip) as reader:
        for frame in reader.frames():
            refs.append(weakref.ref(frame.image))
            refs.append(weakref.ref(frame))
            del frame
        gc.collect()
        alive = sum(r() is not None for r in refs)
    assert alive <= 4, f"{alive} decoded pictures still alive after streaming"


def test_time_to_frame_index() -> None:
    times = [Fraction(i, 25) for i in range(10)]
    assert time_to_frame_index(times, 0.0) == 0
    assert time_to_frame_index(times, 0.12) == 3  # exactly frame 3's time, float-rounded
    assert time_to_frame_index(times, 0.13) == 3
    assert time_to_frame_index(times, -1) == 0
    assert time_to_frame_index(times, 99) == 9
    with pytest.raises(ValueError):
        time_to_frame_index([], 1.0)


def test_reader_shares_the_probe_scan(tmp_path) -> None:
    clip = make_video(tmp_path / "c.mkv", frames=5)
    with VideoReader(clip) as reader:
        assert reader.info is probe(clip)


def test_locate_places_pictures_on_the_timeline() -> None:
    from seedvr_desktop.media.reader import _locate

    pts = (0, 10, 20, 30, 40)
    assert _locate(pts, 20, 0) == 2  # 0 and 10 never decoded: a hole before it
    assert _locate(pts, 20, 2) == 2
    assert _locate(pts, 5, 2) == -1  # earlier than the previous slot: pre-roll, dropped
    assert _locate(pts, 10, 2, placed=False) == -1  # nothing placed yet: still pre-roll
    assert _locate(pts, 10, 2) == 2  # repeated timestamp: decoder order wins
    assert _locate(pts, 15, 2) == 2  # stepped back a little: decoder order wins
    assert _locate(pts, 30, 2, upcoming=[20, 40]) == 2  # swapped with the next one: no hole
    assert _locate(pts, 30, 2, upcoming=[40, None]) == 3  # genuine hole at slot 2
    assert _locate(pts, None, 3) == 3  # no timestamp: next picture
    assert _locate(pts, 35, 3) == 3  # unknown timestamp: next picture
    assert _locate(pts, 40, 5) == 5


def test_swapped_timestamps_keep_decoder_order(clip_factory) -> None:
    """FFmpeg's MPEG-PS muxer writes repeated/swapped timestamps for the trailing B-frames of
    this clip (a plain decode shows pts ..., 171000, 174600, 171000, 174600, ...); sorting by
    timestamp would swap pictures, trusting it blindly would drop them."""
    clip = clip_factory("mpeg2.mpg", frames=40, codec="mpeg2video", bframes=2, gop=12)
    ref = [pts for pts, _ in reference_decode(clip)]
    assert len(ref) != len(set(ref))  # the premise: this file repeats timestamps
    with VideoReader(clip) as reader:
        frames = _all(reader)
        assert [frame_id(f.image) for f in frames] == list(range(40))
        assert reader.damaged_frames == 0


def test_untagged_hd_uses_bt709_like_players(clip_factory) -> None:
    """Untagged HD video is BT.709 in practice (cameras, players, our writer); swscale alone
    would decode it as BT.601 and shift the colours. SD stays BT.601."""
    for size in ((1280, 720), (640, 480)):
        clip = clip_factory(f"untagged_{size[1]}.mkv", size=size, frames=2)
        assert probe(clip).video.color_matrix is None
        original = frame_pattern(1, size).astype(np.float32)
        with VideoReader(clip) as reader:
            err = np.abs(reader.read(1).image - original).mean()
        plain = np.abs(reference_decode(clip)[1][1] - original).mean()  # swscale default
        assert err < 2.5
        if size[1] >= 720:
            assert plain > 2 * err
        else:
            assert plain == pytest.approx(err)
