"""Container timestamps that disagree with the decoder's output order (issue 14, item 1).

Some MP4 files (wrong composition offsets from a muxer, or an H.264 stream whose first IDR is
damaged) carry packet timestamps that, sorted, do not give the order the decoder outputs the
pictures in, although that output order is the right one (the motion is smooth). The reader must
keep every picture the decoder returns, in the decoder's order, and re-time them from the
container's timeline; nothing may be marked damaged. Frame content is checked through the frame
number drawn into every picture (tests.clips.frame_id).
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from seedvr_desktop.media.reader import VideoReader, _Ledger, _locate
from tests.clips import Clip, frame_id, make_corrupt, make_video

# Output position within each group of 8 -> slot whose timestamp the picture is given: the
# pattern of the reported file (pts 0, 101, 67, 134, 34, 234, 201, ... ms at 30 fps), which made
# the old reader freeze 3 of every 8 pictures.
SCRAMBLE = (0, 3, 2, 4, 1, 7, 6, 5)


def scramble_pts(src: Clip, out: Path, pattern: Sequence[int] = SCRAMBLE) -> Path:
    """Remux `src` (PyAV, packets copied) giving the picture shown at slot s the timestamp of
    slot (s // 8) * 8 + pattern[s % 8]: the set of timestamps is unchanged, their order is not.

    Decode timestamps move back by one group so every packet keeps pts >= dts (MP4 requires
    it); the muxer's edit list keeps the first picture at time 0.
    """
    with av.open(os.fspath(src)) as inp:
        ist = inp.streams.video[0]
        packets = [p for p in inp.demux(ist) if p.size]
        ordered = sorted(p.pts for p in packets)
        slot = {t: i for i, t in enumerate(ordered)}
        step = ordered[1] - ordered[0]
        group = len(pattern)
        with av.open(os.fspath(out), "w") as dst:
            ost = dst.add_stream_from_template(ist)
            for packet in packets:
                s = slot[packet.pts]
                target = (s // group) * group + pattern[s % group]
                if target < len(ordered):
                    packet.pts = ordered[target]
                packet.dts -= group * step
                packet.stream = ost
                dst.mux(packet)
    return out


def _scrambled(tmp_path: Path, frames: int = 48) -> tuple[Clip, Path]:
    # High profile, B-frames, closed GOPs of 24 (a multiple of the pattern, so key frames keep
    # their own timestamps and seeking still lands where the timeline says).
    src = make_video(tmp_path / "src.mp4", frames=frames, gop=24, bframes=3,
                     options={"profile": "high"})
    return src, scramble_pts(src, tmp_path / "scrambled.mp4")


def _decoder_order(path: Path) -> list[tuple[int, Fraction]]:
    """(frame number, container time) of each picture in plain PyAV decoder output order."""
    with av.open(os.fspath(path)) as container:
        stream = container.streams.video[0]
        return [(frame_id(f.to_ndarray(format="rgb24")), f.pts * stream.time_base)
                for f in container.decode(stream)]


def test_scrambled_timestamps_keep_every_picture_in_decoder_order(tmp_path: Path) -> None:
    src, path = _scrambled(tmp_path)
    plain = _decoder_order(path)
    # The premise: the decoder returns every picture in the right order, while the container's
    # timestamps, sorted, would scramble it (picture 4 carries the time of slot 1).
    assert [i for i, _ in plain] == list(range(src.frames))
    assert [t for _, t in plain] != sorted(t for _, t in plain)
    with VideoReader(path) as reader:
        frames = list(reader.frames())
        assert reader.frame_count == src.frames
        assert [frame_id(f.image) for f in frames] == list(range(src.frames))
        assert [f.index for f in frames] == list(range(src.frames))
        assert not any(f.damaged for f in frames) and reader.damaged_frames == 0
        # Re-timed from the container's timeline: the sorted timestamps, i.e. the source's.
        assert [f.time for f in frames] == list(src.times) == reader.frame_times()


def test_random_access_matches_the_full_decode_on_scrambled_timestamps(tmp_path: Path) -> None:
    src, path = _scrambled(tmp_path)
    with VideoReader(path) as reader:
        full = list(reader.frames())
    picks = list(range(src.frames))
    random.Random(3).shuffle(picks)
    picks += [0, 1, 4, 5, 6, 7, 30, 31]  # sequential hops served by the open decoder
    with VideoReader(path) as reader:
        for i in picks:
            got = reader.read(i)
            assert got.index == i and got.time == full[i].time
            assert frame_id(got.image) == i, f"frame {i}"
            assert np.array_equal(got.image, full[i].image), f"frame {i}"
            assert not got.damaged
        assert reader.damaged_frames == 0


def test_late_picture_with_an_owed_timestamp_takes_the_next_slot() -> None:
    pts = (0, 10, 20, 30, 40)
    # Slot 1 went to a picture stamped 30, so 10 is owed: its picture is late, not pre-roll.
    assert _locate(pts, 10, 4, placed=True, owed={10}) == 4
    assert _locate(pts, 10, 4, placed=True) == -1  # without the debt: pre-roll, dropped
    assert _locate(pts, 10, 4, placed=False, owed={10}) == -1  # nothing placed yet: pre-roll


def test_ledger_balances_swapped_timestamps() -> None:
    ledger = _Ledger()
    ledger.place(10, 30)  # slot 10 took the picture stamped 30
    assert ledger.owed[10] == 1 and ledger.ahead[30] == 1
    ledger.place(20, 20)
    ledger.place(30, 10)  # slot 30 (carried early) takes the late picture stamped 10
    ledger.forget_before(0)
    assert not ledger.owed and not ledger.ahead
    ledger.place(40, 50)
    ledger.forget_before(45)  # a debt older than any reordering is forgotten
    assert not ledger.owed and ledger.ahead[50] == 1


def _slice_decoder_ids(path: Path) -> list[int]:
    """Frame numbers of the pictures a plain slice-threaded PyAV decode returns, in its order,
    skipping packets it rejects: every picture the decoder can produce."""
    out = []
    with av.open(os.fspath(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_type = "SLICE"
        for packet in container.demux(stream):
            try:
                out += [frame_id(f.to_ndarray(format="rgb24")) for f in packet.decode()]
            except av.FFmpegError:
                continue
    return out


@pytest.mark.parametrize("wrecked", [20, 47])  # a packet mid-file; the last packet
def test_damage_in_scrambled_file_only_marks_what_the_decoder_lacks(tmp_path: Path,
                                                                  wrecked: int) -> None:
    """Only pictures the decoder cannot produce count as damaged: every picture it returns is
    kept, in its order, also with frame threads, which lose the queued pictures at a damaged
    end unless the tail is decoded again."""
    src, path = _scrambled(tmp_path)
    bad = make_corrupt(path, tmp_path / "bad.mp4", frames=[wrecked])
    decodable = _slice_decoder_ids(bad.path)
    assert len(decodable) < src.frames  # the premise: the wrecked packet loses a picture
    with VideoReader(bad, threads=4) as reader:
        frames = list(reader.frames())
    assert len(frames) == src.frames
    assert [f.time for f in frames] == list(src.times)
    assert [frame_id(f.image) for f in frames if not f.damaged] == decodable
    assert reader.damaged_frames == src.frames - len(decodable)


def test_frame_threads_keep_pictures_queued_at_a_quietly_damaged_end(tmp_path: Path) -> None:
    """A wrecked last packet of a B-frame H.264 file: frame threads end the stream without an
    error and without the pictures they still held; those must not become repeats."""
    src = make_video(tmp_path / "tail.mp4", frames=48, gop=24, bframes=3)
    bad = make_corrupt(src, tmp_path / "bad_tail.mp4", frames=[47])
    decodable = _slice_decoder_ids(bad.path)
    with VideoReader(bad, threads=4) as reader:
        frames = list(reader.frames())
    assert [frame_id(f.image) for f in frames if not f.damaged] == decodable
    assert reader.damaged_frames == src.frames - len(decodable) >= 1
