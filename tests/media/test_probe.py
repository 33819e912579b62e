"""probe(): measured frame counts and timing, stream facts, and one-line errors."""

from __future__ import annotations

import json
import os
import struct
from fractions import Fraction

import av
import numpy as np
import pytest

from seedvr_desktop.errors import MediaError
from seedvr_desktop.media.colors import ColorTags
from seedvr_desktop.media.probe import probe
from tests.clips import (
    make_image,
    make_null_frame_avi,
    make_text_file,
    make_truncated,
    reference_decode,
)


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("h264.mp4", {"bframes": 3}),
        ("divx.avi", {"codec": "mpeg4", "bframes": 2}),
        ("mjpeg.avi", {"codec": "mjpeg", "frames": 10}),
        ("ffv1.mkv", {"codec": "ffv1", "frames": 6}),
        ("vp9.webm", {"frames": 12}),
        ("hevc.mkv", {"codec": "libx265", "frames": 8}),
        ("prores.mov", {"codec": "prores_ks", "frames": 4}),
        ("ntsc.mp4", {"fps": Fraction(30000, 1001), "frames": 15}),
        ("ntsc.mkv", {"fps": Fraction(30000, 1001), "frames": 15}),
        ("pal.mov", {"fps": 50, "frames": 10}),
    ],
)
def test_count_rate_and_duration(clip_factory, name, kwargs) -> None:
    clip = clip_factory(name, **kwargs)
    info = probe(clip)
    v = info.video
    assert v is not None and not info.is_image
    assert v.frame_count == clip.frames == len(reference_decode(clip))
    assert v.frame_rate == clip.fps
    assert v.variable_frame_rate is False
    assert (v.width, v.height) == clip.size == (v.display_width, v.display_height)
    assert v.duration == pytest.approx(float(clip.frames / clip.fps), abs=0.002)
    assert info.duration == pytest.approx(v.duration, abs=0.05)
    assert v.pix_fmt == clip.extra["pix_fmt"]
    assert v.bit_depth == (10 if "10" in v.pix_fmt else 8)
    assert v.rotation == 0 and v.sample_aspect_ratio == 1
    assert info.audio == [] and info.subtitles == []


def test_container_names(clip_factory) -> None:
    assert probe(clip_factory("h264.mp4", frames=2)).container == "mp4"
    assert probe(clip_factory("a.mkv", frames=2)).container == "matroska"
    assert probe(clip_factory("a.avi", frames=2)).container == "avi"
    assert probe(clip_factory("a.mov", frames=2)).container == "mov"


def test_variable_frame_rate(clip_factory) -> None:
    for name in ("phone.mp4", "phone.mkv"):
        clip = clip_factory(name, frames=30, vfr_jitter=True)
        v = probe(clip).video
        assert v.variable_frame_rate is True
        assert v.frame_count == 30
        assert abs(v.frame_rate - 25) < 1


def test_explicit_gap_is_vfr(clip_factory) -> None:
    clip = clip_factory("gap.mp4", pts_list=[0, 40, 80, 400, 440], time_base=Fraction(1, 1000))
    v = probe(clip).video
    assert v.frame_count == 5
    assert v.variable_frame_rate is True


def test_null_frame_avi_counts_pictures_not_header_slots(tmp_path) -> None:
    clip = make_null_frame_avi(tmp_path / "capture.avi", slots=(0, 1, 2, 9, 10, 20, 21, 40))
    with av.open(os.fspath(clip)) as c:
        assert c.streams.video[0].frames == 41  # what the header claims
    v = probe(clip).video
    assert v.frame_count == 8
    assert v.frame_rate == 15
    assert v.variable_frame_rate is True
    assert v.duration == pytest.approx(41 / 15, abs=1e-6)


def test_nonsense_header_frame_count(tmp_path, clip_factory) -> None:
    src = clip_factory("liar.avi", codec="mjpeg", frames=7)
    data = bytearray(src.path.read_bytes())
    avih = data.index(b"avih") + 8
    struct.pack_into("<I", data, avih + 16, 0xFFFFFFF0)  # dwTotalFrames
    strh = data.index(b"strh") + 8
    struct.pack_into("<I", data, strh + 32, 0xFFFFFFF0)  # dwLength
    liar = tmp_path / "liar.avi"
    liar.write_bytes(bytes(data))
    with av.open(os.fspath(liar)) as c:
        assert c.streams.video[0].frames > 10**9  # the header now lies
    assert probe(liar).video.frame_count == 7


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation(clip_factory, rotation) -> None:
    v = probe(clip_factory("phone.mp4", frames=2, rotation=rotation)).video
    assert v.rotation == rotation
    assert (v.width, v.height) == (96, 64)
    turned = rotation in (90, 270)
    assert (v.display_width, v.display_height) == ((64, 96) if turned else (96, 64))


def test_sample_aspect_ratio(clip_factory) -> None:
    v = probe(clip_factory("dv.mkv", frames=2, size=(96, 64), sar=Fraction(16, 15))).video
    assert v.sample_aspect_ratio == Fraction(16, 15)
    assert (v.display_width, v.display_height) == (round(96 * 16 / 15), 64)
    v = probe(clip_factory("both.mov", frames=2, sar=Fraction(4, 3), rotation=90)).video
    assert (v.display_width, v.display_height) == (64, 128)


@pytest.mark.parametrize(("order", "name"), [("tt", "i.mkv"), ("bb", "i.mp4"), ("tt", "m.avi")])
def test_interlacing(clip_factory, order, name) -> None:
    codec = "mpeg4" if name.endswith(".avi") else "libx264"
    v = probe(clip_factory(name, frames=3, interlaced=order, codec=codec)).video
    assert v.interlaced is True
    if not name.endswith(".avi"):  # AVI has no field-order field; MPEG-4 hides it too
        assert v.field_order == order
    p = probe(clip_factory("prog.mkv", frames=2)).video
    assert (p.interlaced, p.field_order) == (False, "progressive")


def test_sd_dv_in_avi_is_bottom_field_first(clip_factory) -> None:
    """DV in AVI carries no field order; SD DV is bottom field first by the standard."""
    dv = clip_factory("dv.avi", frames=2, size=(720, 576), codec="dvvideo", interlaced="bb")
    v = probe(dv).video
    assert (v.codec, v.interlaced, v.field_order) == ("dvvideo", True, "bb")
    # The default is DV's own: another codec without a stored order stays "unknown".
    m = probe(clip_factory("m.avi", frames=3, interlaced="tt", codec="mpeg4")).video
    assert (m.interlaced, m.field_order) == (True, "unknown")


def test_bit_depth_and_colour(clip_factory) -> None:
    tags = ColorTags("bt2020", "smpte2084", "bt2020nc", "tv")
    v = probe(clip_factory("hdr.mkv", frames=2, bit_depth=10, color=tags)).video
    assert v.pix_fmt == "yuv420p10le" and v.bit_depth == 10
    assert v.color == tags
    v = probe(clip_factory("sd.mp4", frames=2, color=ColorTags("smpte170m", "bt709",
                                                                 "smpte170m", "tv"))).video
    assert (v.color_primaries, v.color_transfer, v.color_matrix, v.color_range) == (
        "smpte170m", "bt709", "smpte170m", "tv")
    plain = probe(clip_factory("plain.mp4", frames=2)).video
    assert plain.color_primaries is None and plain.color_matrix is None


def test_odd_size_and_one_frame(clip_factory) -> None:
    v = probe(clip_factory("odd.mkv", codec="ffv1", size=(719, 481), frames=2)).video
    assert (v.width, v.height) == (719, 481) and v.frame_count == 2
    one = probe(clip_factory("one.mp4", frames=1))
    assert one.video.frame_count == 1 and not one.is_image


def test_audio_and_subtitle_streams(clip_factory) -> None:
    clip = clip_factory("multi.mkv", frames=10, audio="ac3", audio_tracks=2,
                        subtitles=[(0.1, 0.3, "one"), (0.2, 0.35, "two")])
    info = probe(clip)
    assert [(a.codec, a.sample_rate, a.channels, a.layout, a.language) for a in info.audio] == [
        ("ac3", 48000, 2, "stereo", "eng"), ("ac3", 48000, 2, "stereo", "fra")]
    assert all(a.duration == pytest.approx(0.4, abs=0.05) for a in info.audio)
    assert all(a.bit_rate and a.bit_rate > 0 for a in info.audio)
    assert [(s.codec, s.language) for s in info.subtitles] == [("subrip", "eng")]
    assert [s.index for s in info.subtitles] == [3]
    info = probe(clip_factory("mp3.mp4", frames=10, audio="mp3", subtitles=[(0, 0.2, "x")]))
    assert [a.codec for a in info.audio] == ["mp3"]
    assert [s.codec for s in info.subtitles] == ["mov_text"]
    info = probe(clip_factory("pcm.mov", frames=10, audio="pcm_s16le"))
    assert info.audio[0].codec == "pcm_s16le" and info.audio[0].sample_rate == 48000


def test_audio_only_file(tmp_path) -> None:
    path = tmp_path / "song.m4a"
    with av.open(os.fspath(path), "w") as c:
        s = c.add_stream("aac", rate=44100)
        s.codec_context.layout = "mono"

        for k in range(10):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                               layout="mono")
            frame.sample_rate = 44100
            frame.pts = k * 1024
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    info = probe(path)
    assert info.video is None
    assert info.audio[0].codec == "aac" and info.audio[0].channels == 1


@pytest.mark.parametrize("ext", ["jpg", "png", "tif", "webp", "bmp"])
def test_images_probe_as_one_frame(tmp_path, ext) -> None:
    info = probe(make_image(tmp_path / f"still.{ext}", (97, 65)))
    assert info.is_image is True
    assert info.video.frame_count == 1
    assert (info.video.width, info.video.height) == (97, 65)
    assert info.audio == [] and info.duration is None


def test_image_exif_rotation(tmp_path) -> None:
    v = probe(make_image(tmp_path / "portrait.jpg", (64, 96), exif_orientation=6)).video
    assert (v.width, v.height) == (96, 64)  # stored sideways
    assert v.rotation == 90
    assert (v.display_width, v.display_height) == (64, 96)


def test_sixteen_bit_png(tmp_path) -> None:
    v = probe(make_image(tmp_path / "deep.png", bit_depth=16)).video
    assert v.bit_depth == 16


def _assert_one_line(exc: pytest.ExceptionInfo, *words: str) -> None:
    msg = str(exc.value)
    assert "\n" not in msg and msg
    for word in words:
        assert word in msg


def test_errors_are_one_line_media_errors(tmp_path) -> None:
    with pytest.raises(MediaError) as exc:
        probe(tmp_path / "missing.mp4")
    _assert_one_line(exc, "not found", "missing.mp4")
    with pytest.raises(MediaError) as exc:
        probe(tmp_path)
    _assert_one_line(exc, "folder")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(MediaError) as exc:
        probe(tmp_path / "empty.mp4")
    _assert_one_line(exc, "empty")
    for name in ("notes.txt", "fake.mp4", "fake.png", "fake.avi"):
        make_text_file(tmp_path / name, "this is not a video at all\n" * 20)
        with pytest.raises(MediaError) as exc:
            probe(tmp_path / name)
        _assert_one_line(exc, name)
    (tmp_path / "noise.mkv").write_bytes(os.urandom(5000))
    with pytest.raises(MediaError):
        probe(tmp_path / "noise.mkv")


def test_mp4_cut_before_its_index_says_incomplete(tmp_path, clip_factory) -> None:
    """A recording or download cut off before the index (written last) is reported as
    incomplete, not as "not a video"; a damaged file with its index keeps the general text."""
    full = clip_factory("moov_last.mp4", frames=12).path
    cut = make_truncated(full, tmp_path / "cut.mp4", 0.5)
    with pytest.raises(MediaError) as exc:
        probe(cut)
    _assert_one_line(exc, "cut.mp4", "incomplete")
    text = tmp_path / "notes.mp4"
    make_text_file(text, "ftyp is mentioned here but this is text\n" * 20)
    with pytest.raises(MediaError) as exc:
        probe(text)
    assert "incomplete" not in str(exc.value)


def test_to_dict_is_json(clip_factory) -> None:
    clip = clip_factory("json.mkv", frames=3, audio="aac", fps=Fraction(30000, 1001))
    data = json.loads(json.dumps(probe(clip).to_dict()))
    assert data["video"]["frame_rate"] == "30000/1001"
    assert data["video"]["time_base"] == "1/1000"
    assert data["path"] == os.fspath(clip)
    assert data["audio"][0]["codec"] == "aac"


def test_probe_is_cached_but_notices_changes(tmp_path, clip_factory) -> None:
    from tests.clips import make_video

    path = tmp_path / "changing.mp4"
    make_video(path, frames=5)
    assert probe(path).video.frame_count == 5
    assert probe(path) is probe(path)
    os.utime(path, ns=(1, 1))
    make_video(path, frames=7)
    assert probe(path).video.frame_count == 7
