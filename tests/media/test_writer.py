"""VideoWriter and the final mux: timing, codecs, colour tags, atomic output, audio copy."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from seedvr_desktop.errors import UserError
from seedvr_desktop.media.codecs import EncodeSettings, check_output
from seedvr_desktop.media.colors import ColorTags
from seedvr_desktop.media.encoder import time_base_for
from seedvr_desktop.media.probe import probe
from seedvr_desktop.media.writer import VideoWriter
from tests.clips import frame_id, frame_pattern, make_video
from tests.engine.pipeline_fakes import decode_video, packet_payloads

SIZE = (96, 64)
# Phone-style timing: uneven steps on a millisecond grid (Matroska stores milliseconds).
VFR_TIMES = [Fraction(t, 1000) for t in (0, 31, 69, 100, 135, 166, 204, 233, 270, 301)]


def _write(path: Path, settings: EncodeSettings | None = None, times=VFR_TIMES,
           **kwargs: object) -> VideoWriter:
    settings = settings or EncodeSettings()
    with VideoWriter(path, width=SIZE[0], height=SIZE[1], frame_rate=Fraction(30),
                     settings=settings, **kwargs) as writer:  # type: ignore[arg-type]
        for i, t in enumerate(times):
            writer.write(frame_pattern(i, SIZE).astype(np.float32) / 255.0, t)
    return writer


@pytest.mark.parametrize(("name", "codec", "bit_depth", "pix_fmt"), [
    ("out.mp4", "h264", 8, "yuv420p"),
    ("out.mov", "h265", 10, "yuv420p10le"),
    ("out.mov", "prores", 10, "yuv422p10le"),
    ("out.mkv", "ffv1", 8, "yuv444p"),
])
def test_codecs_keep_frames_and_timing(tmp_path: Path, name: str, codec: str, bit_depth: int,
                                       pix_fmt: str) -> None:
    out = tmp_path / name
    _write(out, EncodeSettings(codec=codec, bit_depth=bit_depth))
    times, images = decode_video(out)
    assert times == VFR_TIMES
    assert [frame_id(im) for im in images] == list(range(len(VFR_TIMES)))
    ref = frame_pattern(3, SIZE).astype(np.float64)
    err = np.abs(images[3].astype(np.float64) - ref).mean()
    assert err < 4.0  # lossy, but close to the picture written
    info = probe(out)
    assert info.video.pix_fmt == pix_fmt and info.video.frame_count == len(VFR_TIMES)
    assert list(tmp_path.iterdir()) == [out]  # no temporary files left


def test_ffv1_is_lossless_in_yuv(tmp_path: Path) -> None:
    out = tmp_path / "out.mkv"
    _write(out, EncodeSettings(codec="ffv1"))
    again = tmp_path / "again.mkv"
    _, images = decode_video(out)
    with VideoWriter(again, width=SIZE[0], height=SIZE[1], frame_rate=Fraction(30),
                     settings=EncodeSettings(codec="ffv1")) as writer:
        for image, t in zip(images, VFR_TIMES):
            writer.write(image, t)
    _, images2 = decode_video(again)
    # RGB -> YUV 4:4:4 -> RGB is not exactly lossless, but a second round trip changes little.
    assert max(np.abs(a.astype(int) - b).max() for a, b in zip(images, images2)) <= 2


def test_matroska_keeps_millisecond_timing(tmp_path: Path) -> None:
    out = tmp_path / "out.mkv"
    _write(out)
    times, _ = decode_video(out)
    assert times == VFR_TIMES


def test_colour_tags_are_written(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    tags = ColorTags("bt709", "bt709", "bt709", "tv")
    _write(out, color=tags)
    video = probe(out).video
    assert (video.color_primaries, video.color_transfer, video.color_matrix,
            video.color_range) == ("bt709", "bt709", "bt709", "tv")
    untagged = tmp_path / "sd.mp4"
    _write(untagged)  # an untagged SD picture is tagged as SD explicitly
    assert probe(untagged).video.color_matrix == "smpte170m"


def test_output_rules(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="prores"):
        check_output(tmp_path / "a.mp4", EncodeSettings(codec="prores"))
    with pytest.raises(UserError):
        check_output(tmp_path / "a.avi", EncodeSettings())
    with pytest.raises(UserError):
        check_output(tmp_path / "a.mp4", EncodeSettings(codec="mpeg2"))
    assert time_base_for(Fraction(30000, 1001), Fraction(1, 30000)) == Fraction(1, 30000)
    assert time_base_for(Fraction(15), Fraction(76, 999)) == Fraction(1, 1998)  # odd AVI base


def test_existing_file_is_kept_until_success(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    out.write_bytes(b"old")
    with pytest.raises(UserError, match="already exists"):
        _write(out)
    with pytest.raises(RuntimeError), VideoWriter(
            out, width=SIZE[0], height=SIZE[1], frame_rate=Fraction(30),
            settings=EncodeSettings(), overwrite=True) as writer:
        writer.write(frame_pattern(0, SIZE), Fraction(0))
        raise RuntimeError("failure half way")
    assert out.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]
    _write(out, overwrite=True)
    assert probe(out).video.frame_count == len(VFR_TIMES)


@pytest.mark.parametrize(("codec", "src", "dst"), [
    ("aac", ".mp4", ".mp4"), ("ac3", ".mkv", ".mp4"), ("ac3", ".mp4", ".mkv"),
    ("mp3", ".mp4", ".mkv"), ("pcm_s16le", ".mov", ".mov"),
    ("pcm_s16le", ".avi", ".mp4"),  # AVI leaves the channel layout unset; MP4 needs one
])
def test_audio_copy_is_bit_exact(tmp_path: Path, codec: str, src: str, dst: str) -> None:
    clip = make_video(tmp_path / f"src{src}", frames=10, audio=codec, audio_tracks=2,
                      fps=Fraction(30))
    out = tmp_path / f"out{dst}"
    writer = _write(out, audio_source=clip.path)
    assert writer.notices == []
    source = packet_payloads(clip.path)
    assert len(source) == 2 and all(source)
    assert packet_payloads(out) == source


def _damage_audio_packet(path: Path, number: int) -> None:
    """Overwrite the payload of the number-th audio packet with garbage, in place (found by
    content: Matroska's packet positions point at the block header, not the payload)."""
    with av.open(str(path)) as container:
        payloads = [bytes(p) for p in container.demux(audio=0) if p.size]
    data = bytearray(path.read_bytes())
    pos = data.find(payloads[number])
    assert pos >= 0 and data.find(payloads[number], pos + 1) < 0
    size = len(payloads[number])
    data[pos:pos + size] = bytes((i * 151 + 7) % 256 for i in range(size))
    path.write_bytes(bytes(data))


def test_damaged_audio_packet_copied_or_skipped_in_sync(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "src.mkv", frames=30, audio="ac3", fps=Fraction(30))
    _damage_audio_packet(clip.path, 10)
    copied = tmp_path / "copy.mkv"
    _write(copied, times=[Fraction(i, 30) for i in range(30)], audio_source=clip.path)
    assert packet_payloads(copied) == packet_payloads(clip.path)  # damage kept, nothing lost

    transcoded = tmp_path / "aac.mp4"
    writer = _write(transcoded, EncodeSettings(audio="transcode"),
                    times=[Fraction(i, 30) for i in range(30)], audio_source=clip.path)
    assert any("damaged" in n for n in writer.notices)
    with av.open(str(transcoded)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "aac"
        sound = np.concatenate([f.to_ndarray()[0] for f in container.decode(stream)])
    # The skipped packet (0.315 s to 0.347 s) became silence, so everything after it stays in
    # place and the track lasts exactly as long as the source's.
    assert abs(len(sound) / 48000 - probe(clip.path).audio[0].duration) < 0.005

    def rms(t0: float, t1: float) -> float:
        return float(np.sqrt(np.mean(sound[int(t0 * 48000):int(t1 * 48000)] ** 2)))

    assert rms(0.32, 0.34) < 0.05 * rms(0.1, 0.3)
    assert rms(0.4, 0.6) > 0.5 * rms(0.1, 0.3)


def test_audio_window_follows_trim(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "src.mp4", frames=60, audio="aac", fps=Fraction(30))
    out = tmp_path / "out.mp4"
    times = [Fraction(i, 30) for i in range(30)]  # 1 s of video, from source second 0.5
    _write(out, times=times, audio_source=clip.path, audio_start=0.5, audio_end=1.5)
    with av.open(str(out)) as container:
        stream = container.streams.audio[0]
        packets = [p for p in container.demux(stream) if p.size]
        first = float(packets[0].pts * stream.time_base)
        last = float((packets[-1].pts + packets[-1].duration) * stream.time_base)
    frame = 1024 / 48000
    assert -frame <= first <= frame and abs(last - 1.0) <= frame


def test_subtitles_copied_where_the_container_allows(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "src.mkv", frames=10, audio="aac", fps=Fraction(30),
                      subtitles=[(0.05, 0.2, "one"), (0.22, 0.3, "two")])
    out = tmp_path / "out.mkv"
    _write(out, audio_source=clip.path)
    assert packet_payloads(out, "subtitle") == packet_payloads(clip.path, "subtitle")
    mp4 = tmp_path / "out.mp4"
    writer = _write(mp4, audio_source=clip.path)  # SubRip does not fit in MP4
    assert any("subtitle" in n for n in writer.notices)
    assert packet_payloads(mp4) == packet_payloads(clip.path)


def test_copy_refused_while_writing_falls_back_to_transcode(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from seedvr_desktop.media import remux

    def refuse(self: object, packet: object) -> list:
        raise av.error.InvalidDataError(1094995529, "muxer refused the packet")

    monkeypatch.setattr(remux._CopyHandler, "handle", refuse)
    clip = make_video(tmp_path / "src.mkv", frames=10, audio="ac3", fps=Fraction(30))
    out = tmp_path / "out.mp4"
    writer = _write(out, audio_source=clip.path)
    assert any("transcoded instead" in n for n in writer.notices)
    assert [a.codec for a in probe(out).audio] == ["aac"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4", "src.mkv"]


def test_unwritable_folder_is_a_user_error(tmp_path: Path) -> None:
    """VideoWriter under a file: a one-line UserError, and no folder or temp file is made."""
    blocker = tmp_path / "blocker"
    blocker.write_text("in the way")
    with pytest.raises(UserError, match="cannot write to"):
        _write(blocker / "sub" / "out.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]
    # Missing parents that can be made are made, as before.
    _write(tmp_path / "new" / "deeper" / "out.mp4")
    assert (tmp_path / "new" / "deeper" / "out.mp4").is_file()
