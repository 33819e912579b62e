"""A `--cluster` run writes the very file a plain run writes: same pictures, same packets.

Each clip has hard scene cuts (chunks restart there, without overlap) and an audio track, and
segments are short, so units start both after an overlap and after a cut.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from seedvr_desktop.cluster.connect import ClusterSession
from seedvr_desktop.cluster.run import ClusterVideoRun, cluster_restore
from seedvr_desktop.engine.job import RestoreJob, SizeRule
from seedvr_desktop.engine.pipeline import run_restore
from seedvr_desktop.engine.plan import plan_job
from tests.cluster.media import assert_same_output, make_cut_clip
from tests.engine.seedvr_tiny import write_tiny_model

pytestmark = pytest.mark.usefixtures("ray_local", "short_segments")


def _local_and_cluster(clip: Path, tmp_path: Path, **fields: object) -> tuple[Path, Path, list]:
    local, remote = tmp_path / "local.mp4", tmp_path / "cluster.mp4"
    stages = [e.stage for e in run_restore(RestoreJob(clip, local, **fields))]  # type: ignore[arg-type]
    assert stages[-1] == "done"
    job = RestoreJob(clip, remote, **fields)  # type: ignore[arg-type]
    with ClusterSession("local") as session:
        run = ClusterVideoRun(job, plan_job(job), threading.Event(), session)
        events = list(run.events())
    assert events[-1].stage == "done", events[-1]
    return local, remote, run.units


def test_classic_on_two_workers_is_identical(tmp_path: Path) -> None:
    clip = make_cut_clip(tmp_path / "cuts.mp4")
    local, remote, units = _local_and_cluster(clip, tmp_path, engine="classic")
    assert len(units) >= 3  # several segments, restored on both workers
    assert any(u.chunk_start > 0 for u in units)
    assert_same_output(remote, local)
    assert not list(tmp_path.glob(".*seedvr-work"))  # the work folder is gone


def test_none_engine_pass_through_is_identical(tmp_path: Path) -> None:
    clip = make_cut_clip(tmp_path / "cuts.mp4")
    local, remote, units = _local_and_cluster(clip, tmp_path, engine="none")
    assert len(units) >= 3 and all(u.passthrough for u in units)
    assert_same_output(remote, local)


def test_the_event_stream_ends_like_run_restore(tmp_path: Path) -> None:
    clip = make_cut_clip(tmp_path / "cuts.mp4", shots=(12, 14))
    with ClusterSession("local") as session:
        events = list(cluster_restore(RestoreJob(clip, tmp_path / "o.mp4", engine="classic"),
                                      session))
    stages = [e.stage for e in events]
    assert stages[0] == "probe" and stages[-2:] == ["finalize", "done"]
    assert "restore" in stages
    assert events[-1].frames_done == events[-1].frames_total == 26


@pytest.mark.slow  # about 25 s: a tiny SeedVR restored twice on two CPU cores
def test_tiny_seedvr_on_two_workers_is_identical(tmp_path: Path) -> None:
    models = write_tiny_model(tmp_path / "model")
    clip = make_cut_clip(tmp_path / "cuts.mp4", shots=(13, 9, 14), fps=10)
    local, remote, units = _local_and_cluster(
        clip, tmp_path, engine="seedvr", size=SizeRule(scale=1), seed=11,
        engine_options={"model_dir": str(models), "device": "cpu", "chunk_length": 9,
                        "overlap": 4})
    assert len(units) >= 3 and any(u.chunk_start > 0 for u in units)
    assert_same_output(remote, local)
