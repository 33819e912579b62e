"""Segments finished out of order (cluster workers): journaled durably, kept by a resume, moved
into the finished prefix in order, replaced by a local run that writes the same segment."""

from __future__ import annotations

import json
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from seedvr_desktop.engine.journal import (
    JOURNAL_FILE,
    Journal,
    SegmentRecord,
    work_dir_for,
)

FRAMES = 4  # pictures in each test segment


def _segment(journal: Journal, number: int) -> str:
    """A complete segment file of FRAMES pictures in the work folder; returns its name."""
    path = journal.segment_path(number, "mov")
    with av.open(os.fspath(path), "w", format="mov") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 16, "yuv420p"
        for i in range(FRAMES):
            frame = av.VideoFrame.from_ndarray(np.full((16, 32, 3), 40 * i, np.uint8), "rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 25)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path.name


def _record(name: str, number: int, damaged: int = 0) -> SegmentRecord:
    done = (number + 1) * FRAMES
    return SegmentRecord(name, FRAMES, number + 1, done, damaged)


def _tail(number: int) -> dict[str, object]:
    return {"version": 1, "next_index": number, "tail": np.full((2, 2), number, np.float32)}


def _fresh(tmp_path: Path) -> tuple[Path, Journal]:
    out = tmp_path / "out.mp4"
    journal, _ = Journal.open(out, "fp", resume=False)
    return out, journal


def test_a_segment_ahead_survives_a_restart_and_is_promoted_in_order(tmp_path: Path) -> None:
    out, journal = _fresh(tmp_path)
    journal.commit(_record(_segment(journal, 0), 0, damaged=1), _tail(0))
    journal.record_ahead(2, _record(_segment(journal, 2), 2, damaged=3), _tail(2))
    on_disk = json.loads((journal.folder / JOURNAL_FILE).read_text(encoding="utf-8"))
    assert [a["number"] for a in on_disk["ahead"]] == [2]  # saved at once, not at its turn
    journal.close()  # a killed driver: nothing more is written

    resumed, note = Journal.open(out, "fp", resume=True)
    assert note == f"resuming after {FRAMES} finished frames and 1 segment(s) finished further on"
    assert [s.file for s in resumed.segments] == ["seg_00000.mov"]
    assert sorted(resumed.ahead) == [2]
    assert (resumed.folder / "seg_00002.mov").is_file()  # not dropped as a stray file
    assert (resumed.folder / "tail_00002.npz").is_file()
    resumed.commit(_record(_segment(resumed, 1), 1, damaged=1 + 0), _tail(1))
    record = resumed.promote(damaged_before=resumed.segments[-1].damaged)
    assert record.file == "seg_00002.mov" and record.damaged == 1 + 3
    assert [s.file for s in resumed.segments] == [f"seg_0000{i}.mov" for i in range(3)]
    assert not resumed.ahead
    assert resumed.tail_state() is not None  # segment 2's blender tail, as a commit keeps it
    resumed.remove()


def test_only_segments_ahead_are_still_resumed(tmp_path: Path) -> None:
    out, journal = _fresh(tmp_path)  # segment 0 never finished, 1 did
    journal.record_ahead(1, _record(_segment(journal, 1), 1), None)
    journal.close()
    resumed, note = Journal.open(out, "fp", resume=True)
    assert not resumed.segments and sorted(resumed.ahead) == [1]
    assert "1 segment(s) finished further on" in note
    resumed.remove()


def test_a_damaged_segment_ahead_is_dropped_and_the_prefix_kept(tmp_path: Path) -> None:
    out, journal = _fresh(tmp_path)
    journal.commit(_record(_segment(journal, 0), 0), None)
    name = _segment(journal, 2)
    journal.record_ahead(2, _record(name, 2), None)
    journal.record_ahead(3, _record(_segment(journal, 3), 3), None)
    (journal.folder / name).write_bytes(b"cut short")
    journal.close()
    resumed, _ = Journal.open(out, "fp", resume=True)
    assert len(resumed.segments) == 1 and sorted(resumed.ahead) == [3]
    assert not (resumed.folder / name).exists()
    resumed.remove()


def test_a_local_run_replaces_the_segment_ahead_it_writes(tmp_path: Path) -> None:
    _out, journal = _fresh(tmp_path)
    journal.record_ahead(1, _record(_segment(journal, 1), 1), _tail(1))
    journal.commit(_record(_segment(journal, 0), 0), _tail(0))
    journal.commit(_record(_segment(journal, 1), 1), _tail(1))  # in order, as a local run does
    assert not journal.ahead and len(journal.segments) == 2
    with pytest.raises(ValueError):
        journal.record_ahead(0, _record("seg_00000.mov", 0), None)
    journal.remove()


def test_a_journal_without_segments_ahead_still_loads(tmp_path: Path) -> None:
    out, journal = _fresh(tmp_path)
    journal.commit(_record(_segment(journal, 0), 0), None)
    journal.close()
    path = work_dir_for(out) / JOURNAL_FILE
    data = json.loads(path.read_text(encoding="utf-8"))
    del data["ahead"]  # a journal written before segments could finish out of order
    path.write_text(json.dumps(data), encoding="utf-8")
    resumed, note = Journal.open(out, "fp", resume=True)
    assert note == f"resuming after {FRAMES} finished frames"
    assert len(resumed.segments) == 1 and not resumed.ahead
    resumed.remove()
