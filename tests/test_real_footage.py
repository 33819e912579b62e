"""End to end: `seedvr-desktop restore` on the kinds of old footage people drop on the app.

Each test makes a tiny file of a real-world kind with PyAV (DivX-era AVI with B-frames and AC-3,
Cinepak with capture "null" frames, MS-MPEG4 with MP3, phone clips with variable frame rate and a
rotation, interlaced anamorphic DV-like video, MKV with two audio tracks and subtitles, MPEG-PS
camcorder files, damaged and truncated files), restores it through the real command line and
checks the result against the *source file*, read independently with plain PyAV:
- one output picture per source picture, at the source picture's own time (within one tick);
- the picture content is the right one (every synthetic frame carries its number, `frame_id`);
- audio packets copied bit-exact and the sound as long as before (within one audio frame);
- subtitles kept, rotation applied (output upright, no display matrix left);
- bad input: exit status 1 and a single line on stderr; no temporary files left behind.
Ctrl-C is tested with a real SIGINT to a child process.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from seedvr_desktop import cli
from tests.clips import frame_id as _frame_id
from tests.clips import (
    make_corrupt,
    make_image,
    make_null_frame_avi,
    make_text_file,
    make_truncated,
    make_video,
)
from tests.conftest import REPO_ROOT

SIZE = (96, 64)


@pytest.fixture(autouse=True)
def _log_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Logs go to a temporary folder; the CLI's log handlers are removed after each test."""
    folder = tmp_path / "logs"
    monkeypatch.setenv("SEEDVR_DESKTOP_LOG_DIR", str(folder))
    yield folder
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_seedvr", False)]:
        root.removeHandler(handler)
        handler.close()


# ------------------------------------------------------------------------------- measuring


def restore(capsys: pytest.CaptureFixture[str], src: Path, out: Path, *args: str
            ) -> tuple[int, str]:
    """Run `seedvr-desktop restore SRC -o OUT ARGS` in-process; (exit status, stderr)."""
    code = cli.main(["restore", str(src), "-o", str(out), *args])
    return code, capsys.readouterr().err


def frame_id(image: np.ndarray) -> int | None:
    """The frame number drawn into an upright picture, None for garbage (damaged decode)."""
    try:
        return _frame_id(image)
    except ValueError:
        return None


def source_timeline(path: Path) -> list[Fraction]:
    """Presentation time (s) of every stored picture: the sorted pts of the video packets.

    Damaged packets count too (the output keeps their slot); capture null frames (empty
    packets) do not."""
    with av.open(os.fspath(path)) as container:
        stream = container.streams.video[0]
        tb = stream.time_base
        return sorted(p.pts * tb for p in container.demux(stream)
                      if p.size and p.pts is not None)


def decoded(path: Path) -> list[tuple[Fraction, int | None]]:
    """(time, frame number) of every picture a plain PyAV decode yields, sorted by time;
    undecodable packets are skipped. The yardstick the app is measured against."""
    out = []
    with av.open(os.fspath(path)) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.FFmpegError:
                continue
            out.extend((f.pts * f.time_base, frame_id(f.to_ndarray(format="rgb24")))
                       for f in frames)
    return sorted(out, key=lambda item: item[0])


def expected_ids(src: Path) -> list[int | None]:
    """Frame number each output slot must show: the picture decoded for that time, or for a
    picture that does not decode, the last one before it. None (not checked) where that is
    concealment garbage without a readable number, or nothing decoded before it."""
    pictures = dict(decoded(src))
    ids: list[int | None] = []
    last = None
    for t in source_timeline(src):
        if t in pictures:
            last = pictures[t]
        ids.append(last)
    return ids


def output_video(path: Path) -> tuple[list[Fraction], list[int | None], Fraction, dict]:
    """(times, frame numbers, time base, facts) of an output file's video stream."""
    pics = decoded(path)
    with av.open(os.fspath(path)) as container:
        stream = container.streams.video[0]
        first = next(container.decode(stream))
        facts = {"size": (stream.codec_context.width, stream.codec_context.height),
                 "codec": stream.codec_context.name, "rotation": first.rotation}
        tb = stream.time_base
    return [t for t, _ in pics], [i for _, i in pics], tb, facts


def audio_tracks(path: Path) -> list[dict]:
    """Per audio stream: codec, payloads in order, start and end time (s), frame duration."""
    with av.open(os.fspath(path)) as container:
        streams = list(container.streams.audio)
        packets: dict[int, list] = {s.index: [] for s in streams}
        if streams:
            for p in container.demux(*streams):
                if p.size and p.pts is not None:
                    packets[p.stream.index].append(
                        (p.pts * p.time_base, (p.duration or 0) * p.time_base, bytes(p)))
        tracks = []
        for s in streams:
            pk = packets[s.index]
            tracks.append({
                "codec": s.codec_context.name,
                "language": s.metadata.get("language"),
                "payloads": [b for _, _, b in pk],
                "start": min(t for t, _, _ in pk),
                "end": max(t + d for t, d, _ in pk),
                "frame": max(d for _, d, _ in pk),
            })
        return tracks


def subtitle_texts(path: Path) -> list[bytes]:
    with av.open(os.fspath(path)) as container:
        if not container.streams.subtitles:
            return []
        return [bytes(p) for p in container.demux(*container.streams.subtitles) if p.size]


def hidden_leftovers(folder: Path) -> list[str]:
    """Temporary files or work folders the app may have left next to its output."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def assert_same_timing(src: Path, out: Path) -> None:
    """Output picture i is shown at the time of source picture i (within one output tick)."""
    want = source_timeline(src)
    got, _, tb, _ = output_video(out)
    assert len(got) == len(want), f"{len(got)} frames written, source has {len(want)}"
    worst = max(abs(a - b) for a, b in zip(got, want, strict=True))
    assert worst <= tb, f"frame times differ by up to {float(worst) * 1000:.3f} ms"


def assert_same_pictures(src: Path, out: Path) -> None:
    want = expected_ids(src)
    _, got, _, _ = output_video(out)
    assert len(got) == len(want)
    wrong = [(i, w, g) for i, (w, g) in enumerate(zip(want, got, strict=True))
             if w is not None and w != g]
    assert not wrong, f"(slot, expected frame, shown frame): {wrong[:6]}"


def _family(codec: str) -> str:
    """MP4 labels every MPEG-1/2 audio layer "mp3" when read back; the bytes are what count."""
    return "mpeg-audio" if codec in ("mp2", "mp3", "mp2float", "mp3float") else codec


def assert_audio_copied(src: Path, out: Path) -> None:
    """Every audio track present, packets bit-exact, starting and ending where they did."""
    a, b = audio_tracks(src), audio_tracks(out)
    assert [_family(t["codec"]) for t in b] == [_family(t["codec"]) for t in a]
    for s, o in zip(a, b, strict=True):
        assert o["payloads"] == s["payloads"], "audio packets were changed"
        assert abs(o["start"] - s["start"]) <= Fraction(1, 1000)
        assert abs(o["end"] - s["end"]) <= s["frame"], (float(s["end"]), float(o["end"]))


# ------------------------------------------------------------------------------- clip makers


def two_audio_mkv(folder: Path) -> Path:
    """MKV with an AC-3 (eng) and an AAC (fra) track and SubRip subtitles, as rippers make."""
    a = make_video(folder / "a.mkv", frames=20, size=SIZE, audio="ac3",
                   subtitles=[(0.1, 0.4, "hello"), (0.5, 0.7, "world")])
    b = make_video(folder / "b.mkv", frames=20, size=SIZE, audio="aac")
    out = folder / "two_audio.mkv"
    with av.open(os.fspath(a.path)) as ina, av.open(os.fspath(b.path)) as inb, \
            av.open(os.fspath(out), "w") as dst:
        v = dst.add_stream_from_template(ina.streams.video[0])
        ac3 = dst.add_stream_from_template(ina.streams.audio[0])
        aac = dst.add_stream_from_template(inb.streams.audio[0])
        sub = dst.add_stream_from_template(ina.streams.subtitles[0])
        ac3.metadata["language"] = "eng"
        aac.metadata["language"] = "fra"
        routes = {0: v, 1: ac3, 2: sub}
        for packet in ina.demux():
            if packet.size:
                packet.stream = routes[packet.stream.index]
                dst.mux(packet)
        for packet in inb.demux(inb.streams.audio[0]):
            if packet.size:
                packet.stream = aac
                dst.mux(packet)
    return out


# ------------------------------------------------------------------------------- good footage

# (name, factory kwargs, restore arguments)
FOOTAGE = [
    ("divx_bframes_ac3.avi", dict(codec="mpeg4", bframes=2, gop=8, audio="ac3"),
     ["--engine", "none"], ".mp4"),
    ("divx_bframes_ac3_classic.avi", dict(codec="mpeg4", bframes=2, gop=8, audio="ac3"),
     ["--engine", "classic", "--codec", "ffv1"], ".mkv"),
    ("cinepak_pcm.avi", dict(codec="cinepak", audio="pcm_s16le", fps=15),
     ["--engine", "none", "--codec", "prores"], ".mov"),
    ("msmpeg4v3_mp3.avi", dict(codec="msmpeg4v3", audio="libmp3lame",
                               fps=Fraction(30000, 1001)),
     ["--engine", "none", "--codec", "h265"], ".mkv"),
    ("msmpeg4v2_mp3.avi", dict(codec="msmpeg4v2", audio="libmp3lame"),
     ["--engine", "classic", "--short-side", "96"], ".mp4"),
    ("h264_aac.mp4", dict(audio="aac", bframes=3, fps=Fraction(30000, 1001)),
     ["--engine", "classic", "--scale", "2"], ".mp4"),
    ("h264_mp3.mp4", dict(audio="libmp3lame"), ["--engine", "none"], ".mp4"),
    ("odd_97x65.mkv", dict(size=(97, 65), audio="aac"), ["--engine", "none"], ".mkv"),
    ("avchd_ac3.mts", dict(audio="ac3", bframes=2), ["--engine", "none"], ".mp4"),
]


@pytest.mark.parametrize(("name", "kwargs", "args", "ext"), FOOTAGE,
                         ids=[f[0] for f in FOOTAGE])
def test_old_footage_keeps_frames_timing_and_sound(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, kwargs: dict,
        args: list[str], ext: str) -> None:
    kw = {"frames": 16, "size": SIZE, **kwargs}
    src = make_video(tmp_path / name, **kw).path
    out = tmp_path / "out" / f"restored{ext}"
    out.parent.mkdir()
    code, err = restore(capsys, src, out, *args)
    assert code == 0, err
    assert_same_timing(src, out)
    assert_same_pictures(src, out)
    assert_audio_copied(src, out)
    assert hidden_leftovers(out.parent) == []


def _nvop(increment_bits: int) -> bytes:
    """An MPEG-4 "not coded" VOP: the placeholder DivX 5 stores after a packed P+B chunk."""
    bits = "01" + "0" + "1" + "0" * increment_bits + "1" + "0"  # P, no time step, not coded
    bits += "0" + "1" * (-(len(bits) + 1) % 8)  # stuffing up to the byte boundary
    return b"\x00\x00\x01\xb6" + int(bits, 2).to_bytes(len(bits) // 8, "big")


def packed_bframes_avi(folder: Path, frames: int = 16, fps: int = 25) -> Path:
    """A DivX-5 style AVI: each P-frame and the B-frame after it (in decode order) share one
    chunk, followed by a tiny N-VOP chunk; the DivX user data marks the stream as packed."""
    plain = make_video(folder / "plain.avi", frames=frames, size=SIZE, codec="mpeg4",
                       bframes=1, gop=8, fps=fps).path
    vop = b"\x00\x00\x01\xb6"
    with av.open(os.fspath(plain)) as src:
        stream = src.streams.video[0]
        packets = [(bytes(p), p.is_keyframe) for p in src.demux(stream) if p.size]
        out = folder / "packed.avi"
        with av.open(os.fspath(out), "w", format="avi") as dst:
            vout = dst.add_stream_from_template(stream)
            chunks: list[tuple[bytes, bool]] = []
            i = 0
            while i < len(packets):
                data, key = packets[i]
                kind = data[data.find(vop) + 4] >> 6  # 0 I, 1 P, 2 B
                nxt = packets[i + 1][0] if i + 1 < len(packets) else None
                if nxt is not None and kind < 2 and nxt[nxt.find(vop) + 4] >> 6 == 2:
                    chunks += [(data + nxt, key), (_nvop((fps - 1).bit_length()), False)]
                    i += 2
                else:
                    chunks.append((data, key))
                    i += 1
            first, key = chunks[0]
            user = first.find(b"\x00\x00\x01\xb2")  # the encoder's own user data string
            assert user >= 0, "expected the encoder's user data in the first key frame"
            end = first.find(b"\x00\x00\x01", user + 4)
            chunks[0] = (first[:user + 4] + b"DivX503b1393p" + first[end:], key)
            for n, (data, key) in enumerate(chunks):
                packet = av.Packet(data)
                packet.stream = vout
                packet.time_base = vout.time_base
                packet.pts = packet.dts = n
                packet.is_keyframe = key
                dst.mux(packet)
    return out


def test_packed_bframes_divx_avi(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Packed B-frames: decode order and timestamps disagree with display order; every picture
    must still come out once, in display order, on the source's timeline."""
    src = packed_bframes_avi(tmp_path)
    pictures = decoded(src)
    assert [i for _, i in pictures] != sorted(i for _, i in pictures) or \
        len({t for t, _ in pictures}) < len(pictures), "the file is not packed as intended"
    out = tmp_path / "unpacked.mp4"
    code, err = restore(capsys, src, out, "--engine", "classic", "--scale", "1")
    assert code == 0, err
    _, ids, _, _ = output_video(out)
    assert ids == list(range(16))
    assert_same_timing(src, out)


def test_capture_null_frames_keep_their_gaps(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Cinepak capture with dropped frames: 10 pictures over 30 frame slots stay 2 s long."""
    clip = make_null_frame_avi(tmp_path / "capture.avi", codec="cinepak")
    out = tmp_path / "capture.mp4"
    code, err = restore(capsys, clip.path, out, "--engine", "classic", "--codec", "h265")
    assert code == 0, err
    times, ids, _, _ = output_video(out)
    assert ids == list(clip.ids)
    assert_same_timing(clip.path, out)
    assert times[-1] - times[0] == clip.times[-1] - clip.times[0]


@pytest.mark.parametrize(("rotation", "engine"), [(90, "none"), (90, "classic"),
                                                  (270, "none"), (180, "none")])
def test_phone_clip_variable_rate_and_rotation(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str],
                                               rotation: int, engine: str) -> None:
    """Phone clip stored turned with a display matrix, jittery timestamps, AAC."""
    clip = make_video(tmp_path / "phone.mp4", frames=20, size=(96, 54), vfr_jitter=True,
                      rotation=rotation, audio="aac", seed=4)
    out = tmp_path / ("upright.mp4" if engine == "none" else "upright.mkv")
    code, err = restore(capsys, clip.path, out, "--engine", engine)
    assert code == 0, err
    _, ids, _, facts = output_video(out)
    assert facts["rotation"] == 0, "the output must be stored upright"
    w, h = facts["size"]
    assert (h > w) == (rotation != 180), f"{rotation} degree clip came out {w}x{h}"
    assert ids == list(clip.ids)  # read upright, without trying other orientations
    assert_same_timing(clip.path, out)
    assert_audio_copied(clip.path, out)


def test_interlaced_anamorphic_dv_like(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """Bottom-field-first MPEG-2 with a 64:45 sample aspect and PCM, deinterlaced by classic."""
    src = make_video(tmp_path / "dv.mov", frames=12, size=(180, 144), codec="mpeg2video",
                     interlaced="bb", sar=Fraction(64, 45), audio="pcm_s16le").path
    out = tmp_path / "dv_restored.mp4"
    code, err = restore(capsys, src, out, "--engine", "classic", "--scale", "1")
    assert code == 0, err
    _, _, _, facts = output_video(out)
    assert facts["size"] == (256, 144)  # 180 * 64/45 = 256: square pixels, same picture shape
    assert_same_timing(src, out)
    assert_same_pictures(src, out)
    assert_audio_copied(src, out)


def test_mkv_two_audio_tracks_and_subtitles(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    src = two_audio_mkv(tmp_path)
    out = tmp_path / "out.mkv"
    code, err = restore(capsys, src, out, "--engine", "none")
    assert code == 0, err
    assert_same_timing(src, out)
    assert_audio_copied(src, out)
    assert [t["language"] for t in audio_tracks(out)] == ["eng", "fra"]
    texts = subtitle_texts(out)
    assert len(texts) == 2 and b"hello" in texts[0] and b"world" in texts[1]


def test_trimmed_restore_keeps_sound_in_step(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """--start/--end: the pictures on screen in the window, audio cut within one frame."""
    src = make_video(tmp_path / "long.mp4", frames=50, size=SIZE, audio="aac").path
    out = tmp_path / "cut.mp4"
    code, err = restore(capsys, src, out, "--engine", "none", "--start", "0.5", "--end", "1.5")
    assert code == 0, err
    times, ids, tb, _ = output_video(out)
    assert ids == list(range(12, 38))  # 25 fps: frame 12 (0.48 s) is on screen at 0.5 s
    assert all(abs(t - (i * Fraction(1, 25))) <= tb for i, t in enumerate(times))
    (track,) = audio_tracks(out)
    video_end = Fraction(26, 25)
    assert -track["frame"] <= track["start"] <= 0
    assert abs(track["end"] - video_end) <= track["frame"]


# ------------------------------------------------------------------------------- damaged


def test_corrupt_frames_mid_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = make_video(tmp_path / "divx.avi", frames=24, size=SIZE, codec="mpeg4", bframes=2,
                     gop=8, audio="ac3").path
    bad = make_corrupt(src, tmp_path / "divx_damaged.avi", count=3).path
    out = tmp_path / "fixed.mp4"
    code, err = restore(capsys, bad, out, "--engine", "none")
    assert code == 0, err
    assert "damaged" in err
    assert_same_timing(bad, out)
    assert_same_pictures(bad, out)
    assert_audio_copied(bad, out)


def test_damaged_first_keyframe_does_not_shift_the_rest(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A broken first I-frame in a B-frame AVI: the decoder repeats a timestamp once; every
    later picture must still land on its own slot (else sound and picture drift apart)."""
    src = make_video(tmp_path / "divx.avi", frames=24, size=SIZE, codec="mpeg4", bframes=2,
                     gop=12).path
    bad = make_corrupt(src, tmp_path / "bad_start.avi", frames=[0]).path
    out = tmp_path / "fixed.mkv"
    code, err = restore(capsys, bad, out, "--engine", "none")
    assert code == 0, err
    assert_same_timing(bad, out)
    assert_same_pictures(bad, out)


def test_damaged_tail_keeps_the_pictures_that_decode(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Corrupt packets near the end of an H.264 file: pictures a plain decode still recovers
    after them must not be replaced by repeats."""
    src = make_video(tmp_path / "h264.mp4", frames=24, size=SIZE, bframes=3).path
    bad = make_corrupt(src, tmp_path / "bad_end.mp4", frames=[21, 22, 23]).path
    out = tmp_path / "fixed.mkv"
    code, err = restore(capsys, bad, out, "--engine", "none")
    assert code == 0, err
    assert_same_timing(bad, out)
    assert_same_pictures(bad, out)


@pytest.mark.parametrize("ext", [".mkv", ".avi"])
def test_truncated_download(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                            ext: str) -> None:
    codec = "mpeg4" if ext == ".avi" else None
    src = make_video(tmp_path / f"full{ext}", frames=24, size=SIZE, codec=codec,
                     audio="ac3").path
    cut = make_truncated(src, tmp_path / f"cut{ext}", 0.6)
    out = tmp_path / "fixed.mp4"
    code, err = restore(capsys, cut, out, "--engine", "none")
    assert code == 0, err
    n = len(source_timeline(cut))
    assert 0 < n < 24
    assert_same_timing(cut, out)
    assert_same_pictures(cut, out)


# ------------------------------------------------------------------------------- audio codecs


def test_mpeg_ps_camcorder_audio_is_copied(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """DVD camcorder style MPEG-PS (MPEG-2 video, MP2 sound, 90 kHz clock): MP4 carries MP2,
    so the sound must be copied, not re-encoded."""
    src = make_video(tmp_path / "cam.mpg", frames=20, size=SIZE, codec="mpeg2video",
                     audio="mp2").path
    out = tmp_path / "cam.mp4"
    code, err = restore(capsys, src, out, "--engine", "none")
    assert code == 0, err
    assert_same_timing(src, out)
    assert_audio_copied(src, out)


def test_pcm_avi_sound_transcodes_into_mp4(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """AVI PCM has no channel layout ("2 channels"); transcoding it to AAC must still work."""
    src = make_video(tmp_path / "digicam.avi", frames=20, size=SIZE, codec="mjpeg",
                     audio="pcm_s16le").path
    out = tmp_path / "digicam.mp4"
    code, err = restore(capsys, src, out, "--engine", "none", "--audio", "transcode")
    assert code == 0, err
    tracks = audio_tracks(out)
    assert [t["codec"] for t in tracks] == ["aac"], err
    (before,) = audio_tracks(src)
    assert abs((tracks[0]["end"] - tracks[0]["start"]) - (before["end"] - before["start"])) \
        <= tracks[0]["frame"]


# ------------------------------------------------------------------------------- tiny inputs


def test_one_frame_video_and_stills(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one = make_video(tmp_path / "one.mp4", frames=1, size=SIZE, audio="aac").path
    out = tmp_path / "one_out.mp4"
    code, err = restore(capsys, one, out, "--engine", "classic")
    assert code == 0, err
    _, ids, _, facts = output_video(out)
    assert ids == [0] and facts["size"] == (192, 128)
    assert_audio_copied(one, out)

    for ext in (".jpg", ".png"):
        still = make_image(tmp_path / f"photo{ext}", SIZE, index=7)
        restored = tmp_path / f"photo_restored{ext}"
        code, err = restore(capsys, still, restored, "--engine", "classic")
        assert code == 0, err
        with av.open(os.fspath(restored)) as container:
            picture = next(container.decode(video=0))
            assert container.format.name.endswith(("jpeg_pipe", "png_pipe", "image2"))
        assert (picture.width, picture.height) == (192, 128)
        assert frame_id(picture.to_ndarray(format="rgb24")) == 7
    assert hidden_leftovers(tmp_path) == []


# ------------------------------------------------------------------------------- bad input


def _moov_last_mp4(tmp_path: Path) -> Path:
    """An MP4 download cut short: its index (written last) is missing, nothing is readable."""
    full = make_video(tmp_path / "full.mp4", frames=12, size=SIZE).path
    return make_truncated(full, tmp_path / "cut.mp4", 0.5)


BAD_INPUTS = {
    "text_renamed": lambda d: make_text_file(d / "notes.mp4", "shopping list\n" * 20),
    "empty": lambda d: make_text_file(d / "empty.mp4", ""),
    "truncated_mp4_without_index": _moov_last_mp4,
    "missing": lambda d: d / "nowhere.avi",
}


@pytest.mark.parametrize("kind", list(BAD_INPUTS))
def test_bad_input_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  kind: str) -> None:
    src = BAD_INPUTS[kind](tmp_path)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code, err = restore(capsys, src, out_dir / "x.mp4", "--engine", "none")
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    assert list(out_dir.iterdir()) == []


def test_unwritable_output_folder_is_a_user_error(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """An output folder that cannot be created or written (here: a file is in the way; for
    users: a read-only card or disc) is the user's mistake: exit 1 and one line, not 2."""
    src = make_video(tmp_path / "c.mp4", frames=4, size=SIZE).path
    blocker = make_text_file(tmp_path / "blocker")
    code, err = restore(capsys, src, blocker / "x.mp4", "--engine", "none")
    assert code == 1, err
    assert err.strip().splitlines()[-1].startswith("error: ") and "Traceback" not in err


# ------------------------------------------------------------------------------- Ctrl-C


def test_ctrl_c_cancels_cleanly(tmp_path: Path) -> None:
    """A real SIGINT to a running restore: exit 130, no output, an existing output untouched,
    nothing hidden left behind (no segment had finished, so nothing is kept for --resume)."""
    src = make_video(tmp_path / "long.mp4", frames=150, size=(160, 120), audio="aac").path
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    old = out_dir / "old.mp4"
    old.write_bytes(b"an earlier export the user wants to keep")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "seedvr_desktop", "restore", str(src), "-o", str(old),
           "--engine", "classic", "--overwrite"]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "starting" in line:
            break
    proc.send_signal(signal.SIGINT)
    try:
        rest = proc.communicate(timeout=60)[1]
    finally:
        proc.kill()
    err = "".join(seen) + rest
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert time.monotonic() - started < 60
    assert old.read_bytes() == b"an earlier export the user wants to keep"
    assert sorted(p.name for p in out_dir.iterdir()) == ["old.mp4"]
