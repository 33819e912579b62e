"""Workers and drivers die: the job still ends with the file a plain run writes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from seedvr_desktop.cluster.connect import ClusterSession
from seedvr_desktop.cluster.run import ClusterVideoRun
from seedvr_desktop.engine.job import RestoreJob
from seedvr_desktop.engine.journal import JOURNAL_FILE, work_dir_for
from seedvr_desktop.engine.pipeline import run_restore
from seedvr_desktop.engine.plan import plan_job
from tests.cluster.media import assert_same_output, make_cut_clip
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.usefixtures("ray_local", "short_segments")


class IdentityFilter:
    """A frame filter that changes nothing; its fingerprint matches the slow one the killed
    driver used, so the resumed job is the same job."""

    fingerprint = "identity-for-cluster-tests"

    def __call__(self, index: int, time: Fraction, image: np.ndarray) -> np.ndarray:
        return image


def test_a_killed_worker_s_segment_is_restored_by_another(tmp_path: Path) -> None:
    import ray

    clip = make_cut_clip(tmp_path / "cuts.mp4", shots=(40, 31, 45))
    want = tmp_path / "local.mp4"
    assert [e.stage for e in run_restore(RestoreJob(clip, want, engine="classic"))][-1] == "done"
    job = RestoreJob(clip, tmp_path / "cluster.mp4", engine="classic")
    killed: list[int] = []
    seen = None
    with ClusterSession("local") as session:
        run = ClusterVideoRun(job, plan_job(job), threading.Event(), session)
        for event in run.events():
            scheduler = run.scheduler
            seen = scheduler or seen
            if not killed and scheduler is not None and scheduler.running and \
                    event.message.startswith("segment"):
                _unit, worker = next(iter(scheduler.running.values()))
                ray.kill(worker.actor)  # mid-segment: the worker is restoring one now
                killed.append(worker.number)
            last = event
    assert killed, "no worker was busy to kill"
    assert last.stage == "done"
    assert seen is not None and seen.retried >= 1  # the killed worker's unit, given again
    assert_same_output(job.output_path, want)


_DRIVER = textwrap.dedent("""
    import sys, time
    from fractions import Fraction
    from pathlib import Path
    import ray
    from seedvr_desktop.cluster.connect import ClusterSession
    from seedvr_desktop.cluster.run import cluster_restore
    from seedvr_desktop.engine import plan as job_planning
    from seedvr_desktop.engine.job import RestoreJob

    class SlowIdentity:  # sent to the workers by value: slows every frame down
        fingerprint = "identity-for-cluster-tests"
        def __call__(self, index, t, image):
            time.sleep(0.03)
            return image

    job_planning.SEGMENT_SECONDS = 0.4
    ray.init(address=sys.argv[1], log_to_driver=False)
    job = RestoreJob(Path(sys.argv[2]), Path(sys.argv[3]), engine="classic",
                     frame_filter=SlowIdentity())
    with ClusterSession("auto") as session:
        for event in cluster_restore(job, session):
            pass
""")


def _segments(output: Path) -> int:
    try:
        data = json.loads((work_dir_for(output) / JOURNAL_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0
    return len(data.get("segments", []))


@pytest.mark.slow  # about 15 s: a second driver process, killed, then resumed here
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX only")
def test_a_killed_driver_resumes_with_the_finished_segments(ray_local: str,
                                                            tmp_path: Path) -> None:
    clip = make_cut_clip(tmp_path / "cuts.mp4", shots=(40, 31, 45))
    want = tmp_path / "local.mp4"
    assert [e.stage for e in run_restore(RestoreJob(clip, want, engine="classic"))][-1] == "done"
    out = tmp_path / "cluster.mp4"
    script = tmp_path / "driver.py"
    script.write_text(_DRIVER, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen([sys.executable, str(script), ray_local, str(clip), str(out)],
                            cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while _segments(out) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "the driver ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    kept = _segments(out)
    assert kept >= 2 and not out.exists()

    job = RestoreJob(clip, out, engine="classic", resume=True, frame_filter=IdentityFilter())
    with ClusterSession("local") as session:
        run = ClusterVideoRun(job, plan_job(job), threading.Event(), session)
        events = list(run.events())
    assert any("resuming after" in e.message for e in events)
    assert events[-1].stage == "done"
    # Neither the finished prefix nor the segments finished out of order were redone.
    restored = [u.number for u in run.units]
    assert all(n >= kept for n in restored)
    assert sorted(restored + run.reused) == list(range(kept, kept + len(restored + run.reused)))
    assert_same_output(out, want)
