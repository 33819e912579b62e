"""A driver stopped while workers have finished segments out of order: `--resume` keeps every
finished segment, restores only the one that was in flight, and writes the plain run's file."""

from __future__ import annotations

import itertools
import json
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from seedvr_desktop.cluster import scheduler as cluster_scheduler
from seedvr_desktop.cluster.connect import ClusterSession
from seedvr_desktop.cluster.run import ClusterVideoRun
from seedvr_desktop.cluster.units import plan_chunk_units
from seedvr_desktop.engine.chunking import plan_chunks
from seedvr_desktop.engine.job import RestoreJob
from seedvr_desktop.engine.journal import JOURNAL_FILE, work_dir_for
from seedvr_desktop.engine.pipeline import run_restore
from seedvr_desktop.engine.plan import plan_job
from tests.cluster.media import assert_same_output, make_cut_clip

pytestmark = pytest.mark.usefixtures("ray_local", "short_segments")

SHOTS = (30, 31, 35)
SLOW = 2  # the segment that is still being restored when the driver stops
FINGERPRINT = "identity-for-out-of-order-tests"


class SlowSegment:
    """Changes nothing; sleeps on the frames of one segment (sent to the workers by value)."""

    fingerprint = FINGERPRINT

    def __init__(self, start: int, stop: int, seconds: float) -> None:
        self.start, self.stop, self.seconds = start, stop, seconds

    def __call__(self, index: int, time_: Fraction, image: np.ndarray) -> np.ndarray:
        if self.start <= index < self.stop:
            time.sleep(self.seconds)
        return image


def _journal(output: Path) -> dict[str, Any]:
    try:
        data = json.loads((work_dir_for(output) / JOURNAL_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return dict(data)


def test_resume_restores_only_the_segment_in_flight(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    clip = make_cut_clip(tmp_path / "cuts.mp4", shots=SHOTS)
    want = tmp_path / "local.mp4"
    assert list(run_restore(RestoreJob(clip, want, engine="classic")))[-1].stage == "done"

    # The segments a run of this clip writes (its scene cuts are the shot boundaries).
    plain = plan_job(RestoreJob(clip, tmp_path / "unused.mp4", engine="classic"))
    caps = plain.caps
    chunks = plan_chunks(plain.frame_count, caps.chunk_length, caps.overlap,
                         temporal_multiple=caps.temporal_multiple,
                         cuts=list(itertools.accumulate(SHOTS))[:-1])
    units = plan_chunk_units(chunks, caps.overlap, max(caps.chunk_length, 10))
    assert len(units) == 5
    slow = units[SLOW]

    # One unit queued per worker: worker A gets 0 then the slow 2, worker B gets 1, 3, 4.
    monkeypatch.setattr(cluster_scheduler, "DEPTH", 1)
    out = tmp_path / "cluster.mp4"
    job = RestoreJob(clip, out, engine="classic",
                     frame_filter=SlowSegment(slow.frame_start, slow.frame_stop, 0.25))
    stopped = None
    with ClusterSession("local") as session:
        run = ClusterVideoRun(job, plan_job(job), threading.Event(), session)
        events = run.events()
        deadline = time.monotonic() + 60
        for _event in events:
            data = _journal(out)
            ahead = {a["number"] for a in data.get("ahead", [])}
            if len(data.get("segments", [])) == SLOW and ahead == {3, 4}:
                stopped = data
                break
            assert time.monotonic() < deadline, "the segments after the slow one never finished"
        events.close()  # the driver stops here; the journal on disk is what a kill leaves
    assert stopped is not None, "the run ended before the segments after the slow one finished"
    assert stopped["extra"]["cuts"] == list(itertools.accumulate(SHOTS))[:-1]
    assert not out.exists()

    resumed = RestoreJob(clip, out, engine="classic", resume=True,
                         frame_filter=SlowSegment(0, 0, 0.0))
    with ClusterSession("local") as session:
        run = ClusterVideoRun(resumed, plan_job(resumed), threading.Event(), session)
        events_list = list(run.events())
    assert events_list[-1].stage == "done", events_list[-1]
    assert any("2 segment(s) finished further on" in e.message for e in events_list)
    assert [u.number for u in run.units] == [SLOW]  # restored: only the one in flight
    assert run.reused == [3, 4]
    assert_same_output(out, want)
    assert not work_dir_for(out).exists()
