"""The synthetic media factories produce what they claim, checked with plain PyAV/OpenCV decoding
(independent of seedvr_desktop.media, which these clips are used to test)."""

from __future__ import annotations

import itertools
import os
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest

from seedvr_desktop.media.colors import ColorTags
from tests.clips import (
    frame_id,
    frame_pattern,
    make_corrupt,
    make_image,
    make_null_frame_avi,
    make_truncated,
    make_video,
)


def _decode(path) -> list[tuple[Fraction, np.ndarray, int]]:
    """(time, rgb, ccw rotation) of every decoded picture, errors skipped."""
    out = []
    with av.open(os.fspath(path)) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            try:
                for frame in packet.decode():
                    out.append((Fraction(frame.pts) * stream.time_base,
                                frame.to_ndarray(format="rgb24"), frame.rotation))
            except av.FFmpegError:
                pass
    return out


def test_frame_id_round_trips_through_pattern_scaling_and_rotation() -> None:
    for index in (0, 1, 77, 1000, 4095):
        img = frame_pattern(index, (96, 64))
        assert frame_id(img) == index
        small = cv2.resize(img, (48, 32), interpolation=cv2.INTER_AREA)
        assert frame_id(small) == index
        big = cv2.resize(img, (719, 481), interpolation=cv2.INTER_CUBIC)
        assert frame_id(big) == index
        turned = np.rot90(img, 1)
        with pytest.raises(ValueError):
            frame_id(turned)
        assert frame_id(turned, any_orientation=True) == index
    assert frame_id(frame_pattern(300, (96, 64), bit_depth=10)) == 300
    with pytest.raises(ValueError):
        frame_id(np.full((64, 96, 3), 128, np.uint8))


def test_neighbouring_frames_differ_below_the_code() -> None:
    a, b = frame_pattern(3, (96, 64)), frame_pattern(4, (96, 64))
    assert np.abs(a[16:].astype(int) - b[16:].astype(int)).mean() > 5
    s1 = frame_pattern(3, (96, 64), content="static")
    s2 = frame_pattern(4, (96, 64), content="static")
    assert np.array_equal(s1[16:], s2[16:])


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("h264.mp4", {}),
        ("mpeg4.avi", {"bframes": 2}),
        ("ffv1.mkv", {"codec": "ffv1", "size": (719, 481), "frames": 3}),
        ("vp9.webm", {"frames": 5}),
        ("ntsc.mov", {"fps": Fraction(30000, 1001), "frames": 10}),
    ],
)
def test_make_video_frames_ids_and_times(tmp_path, name, kwargs) -> None:
    clip = make_video(tmp_path / name, **kwargs)
    decoded = _decode(clip)
    assert [frame_id(img) for _, img, _ in decoded] == list(clip.ids)
    assert decoded[0][1].shape[:2] == (clip.size[1], clip.size[0])
    steps = {b - a for a, b in itertools.pairwise(clip.times)}
    assert steps == {1 / clip.fps}
    got = [t for t, _, _ in decoded]
    offset = got[0] - clip.times[0]  # AVI B-frame streams start one tick late
    tolerance = Fraction(1, 1000) if name.endswith((".mkv", ".webm")) else 0
    assert all(abs(g - offset - t) <= tolerance for g, t in zip(got, clip.times))


def test_vfr_jitter_and_explicit_pts(tmp_path) -> None:
    clip = make_video(tmp_path / "vfr.mkv", frames=30, vfr_jitter=True)
    got = [t for t, _, _ in _decode(clip)]
    assert got == list(clip.times)
    assert len({b - a for a, b in itertools.pairwise(got)}) > 3  # genuinely variable
    clip = make_video(tmp_path / "pts.mp4", pts_list=[0, 40, 80, 200, 240],
                      time_base=Fraction(1, 1000))
    assert [t for t, _, _ in _decode(clip)] == [Fraction(x, 1000) for x in (0, 40, 80, 200, 240)]


def test_rotation_is_a_display_matrix_over_a_turned_picture(tmp_path) -> None:
    clip = make_video(tmp_path / "phone.mp4", size=(96, 64), rotation=90, frames=4)
    decoded = _decode(clip)
    _, img, ccw = decoded[0]
    assert img.shape[:2] == (64, 96)  # stored landscape
    assert (-ccw) % 360 == 90  # FFmpeg reads counter-clockwise degrees
    upright = np.rot90(img, -1)  # apply the 90 degrees clockwise a player would
    assert frame_id(upright) == 0
    with pytest.raises(ValueError):
        frame_id(img)


def test_audio_tracks_and_subtitles(tmp_path) -> None:
    clip = make_video(tmp_path / "multi.mkv", audio="ac3", audio_tracks=2,
                      subtitles=[(0.1, 0.5, "hello")])
    with av.open(os.fspath(clip)) as c:
        assert [s.codec_context.name for s in c.streams.audio] == ["ac3", "ac3"]
        assert [s.metadata.get("language") for s in c.streams.audio] == ["eng", "fra"]
        sub = c.streams.subtitles[0]
        assert sub.codec_context.name in ("subrip", "srt")
        packets = [p for p in c.demux(sub) if p.size]
        assert b"hello" in bytes(packets[0])
        assert packets[0].pts * sub.time_base == Fraction(1, 10)
    for codec, ext in (("aac", "mp4"), ("mp3", "mp4"), ("pcm_s16le", "mov")):
        clip = make_video(tmp_path / f"a_{codec}.{ext}", audio=codec, frames=5)
        with av.open(os.fspath(clip)) as c:
            a = c.streams.audio[0]
            assert a.codec_context.name.startswith(codec[:3])
            samples = sum(f.samples for f in c.decode(a))
            assert samples >= 0.2 * a.codec_context.sample_rate - 2048


def test_ten_bit_sar_interlace_and_colour(tmp_path) -> None:
    clip = make_video(tmp_path / "deep.mkv", bit_depth=10, frames=3, interlaced="bb",
                      sar=Fraction(16, 15),
                      color=ColorTags("bt709", "bt709", "bt709", "tv"))
    with av.open(os.fspath(clip)) as c:
        s = c.streams.video[0]
        assert s.codec_context.pix_fmt == "yuv420p10le"
        assert s.codec_context.field_order == 3  # AV_FIELD_BB
        assert s.sample_aspect_ratio == Fraction(16, 15)
        frame = next(c.decode(s))
        assert frame.interlaced_frame
        assert ColorTags.from_av(frame) == ColorTags("bt709", "bt709", "bt709", "tv")
        deep = frame.to_ndarray(format="rgb48le")
        assert frame_id(deep) == 0
        assert np.any(deep % 257 != 0)  # finer than 8 bits


def test_null_frame_avi(tmp_path) -> None:
    clip = make_null_frame_avi(tmp_path / "drop.avi", slots=(0, 1, 5, 6, 11))
    with av.open(os.fspath(clip)) as c:
        assert c.streams.video[0].frames == 12  # header counts the empty chunks
    decoded = _decode(clip)
    assert [frame_id(img) for _, img, _ in decoded] == [0, 1, 5, 6, 11]
    assert [t for t, _, _ in decoded] == list(clip.times)


def test_truncated_and_corrupt(tmp_path) -> None:
    src = make_video(tmp_path / "src.avi", codec="mjpeg", frames=20)
    cut = make_truncated(src, tmp_path / "cut.avi", 0.5)
    assert cut.stat().st_size == src.path.stat().st_size // 2
    assert 3 < len(_decode(cut)) < 20
    bad = make_corrupt(src, tmp_path / "bad.avi", frames=[7, 8])
    assert bad.extra["damaged_times"] == [Fraction(7, 25), Fraction(8, 25)]
    decoded = _decode(bad)
    assert [t for t, _, _ in decoded] == list(bad.times)
    assert len(decoded) == 18


@pytest.mark.parametrize("ext", ["jpg", "png", "tif", "webp", "bmp"])
def test_make_image(tmp_path, ext) -> None:
    path = make_image(tmp_path / f"still.{ext}", (97, 65), index=42)
    img = cv2.imread(os.fspath(path), cv2.IMREAD_UNCHANGED)
    assert img.shape == (65, 97, 3)
    assert frame_id(img[..., ::-1]) == 42


def test_make_image_16_bit(tmp_path) -> None:
    img = cv2.imread(os.fspath(make_image(tmp_path / "deep.png", bit_depth=16, index=9)),
                     cv2.IMREAD_UNCHANGED)
    assert img.dtype == np.uint16
    assert frame_id(img) == 9
