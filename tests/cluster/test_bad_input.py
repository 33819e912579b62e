"""Bad cluster input: one clear line (a UserError, which the CLI prints and exits 1 on),
nothing at the output path, no work folder left, and the cluster still usable."""

from __future__ import annotations

import argparse
import socket
import threading
import time
from pathlib import Path

import pytest

import seedvr_desktop
from seedvr_desktop.cluster import run as cluster_run
from seedvr_desktop.cluster import scheduler as cluster_scheduler
from seedvr_desktop.cluster.cli_options import add_cluster_argument, cluster_runner
from seedvr_desktop.cluster.connect import ClusterSession
from seedvr_desktop.cluster.run import ClusterVideoRun, cluster_restore
from seedvr_desktop.engine.job import RestoreJob, SizeRule
from seedvr_desktop.engine.pipeline import run_restore
from seedvr_desktop.engine.plan import plan_job
from seedvr_desktop.errors import UserError
from tests.cluster.media import assert_same_output, make_cut_clip
from tests.engine.seedvr_tiny import write_tiny_model


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _nothing_written(folder: Path, output: Path) -> None:
    assert not output.exists()
    assert not list(folder.glob(".*seedvr-work"))


def _one_line(exc: pytest.ExceptionInfo[UserError]) -> str:
    text = str(exc.value)
    assert text and "\n" not in text
    return text


def test_an_unreachable_address_is_one_line_at_once(tmp_path: Path) -> None:
    clip = make_cut_clip(tmp_path / "c.mp4", shots=(8, 8))
    out = tmp_path / "o.mp4"
    parser = argparse.ArgumentParser()
    add_cluster_argument(parser)
    for address in (f"127.0.0.1:{_free_port()}", f"ray://127.0.0.1:{_free_port()}"):
        args = parser.parse_args(["--cluster", address])
        started = time.monotonic()
        with pytest.raises(UserError) as exc, cluster_runner(args) as run:
            list(run(RestoreJob(clip, out, engine="classic"), None))
        assert time.monotonic() - started < 10
        assert f"cannot reach a Ray cluster at {address}" in _one_line(exc)
    with pytest.raises(UserError, match="give local, auto"), \
            cluster_runner(parser.parse_args(["--cluster", "nowhere"])):
        pass
    _nothing_written(tmp_path, out)


@pytest.mark.usefixtures("ray_local", "short_segments")
class TestOnACluster:
    def test_a_gpu_engine_on_a_cluster_without_gpus(self, tmp_path: Path) -> None:
        models = write_tiny_model(tmp_path / "model")
        clip = make_cut_clip(tmp_path / "c.mp4", shots=(8, 8))
        out = tmp_path / "o.mp4"
        job = RestoreJob(clip, out, engine="seedvr", size=SizeRule(scale=1),
                         engine_options={"model_dir": str(models)})
        with ClusterSession("local") as session, pytest.raises(UserError) as exc:
            list(cluster_restore(job, session))
        assert "has no GPUs" in _one_line(exc)
        _nothing_written(tmp_path, out)

    def test_a_node_without_the_model_is_named(self, tmp_path: Path) -> None:
        models = write_tiny_model(tmp_path / "model")
        clip = make_cut_clip(tmp_path / "c.mp4", shots=(8, 8))
        out = tmp_path / "o.mp4"
        job = RestoreJob(clip, out, engine="seedvr", size=SizeRule(scale=1),
                         engine_options={"model_dir": str(models), "device": "cpu"})
        plan = plan_job(job)  # the driver sees the model; the workers are then denied it
        for path in models.iterdir():
            path.unlink()
        with ClusterSession("local") as session, pytest.raises(UserError) as exc:
            list(ClusterVideoRun(job, plan, threading.Event(), session).events())
        line = _one_line(exc)
        assert line.startswith(f"node {socket.gethostname()}"), line
        assert str(models) in line or "model" in line, line
        _nothing_written(tmp_path, out)

    def test_a_worker_of_another_version_is_refused(self, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
        clip = make_cut_clip(tmp_path / "c.mp4", shots=(8, 8))
        out = tmp_path / "o.mp4"
        real = seedvr_desktop.__version__
        monkeypatch.setattr(seedvr_desktop, "__version__", "99.0-driver")
        with ClusterSession("local") as session, pytest.raises(UserError) as exc:
            list(cluster_restore(RestoreJob(clip, out, engine="classic"), session))
        line = _one_line(exc)
        assert f"runs seedvr-desktop {real} but this computer runs 99.0-driver" in line
        _nothing_written(tmp_path, out)

    def test_paths_the_workers_cannot_see_travel_through_ray(
            self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        # Relative paths from another folder: the workers (started in the first folder) see
        # neither the source nor the work folder, as on a cluster without shared storage.
        clip = make_cut_clip(tmp_path / "c.mp4", shots=(30, 25))
        want = tmp_path / "local.mp4"
        assert list(run_restore(RestoreJob(clip, want, engine="classic")))[-1].stage == "done"
        monkeypatch.chdir(tmp_path)
        uploads: list[object] = []
        returned: list[object] = []
        source_ref = cluster_scheduler.Scheduler._source_ref
        write = cluster_run.atomic_write_bytes

        def counted_upload(self: cluster_scheduler.Scheduler, handle: object) -> object:
            uploads.append(handle)
            return source_ref(self, handle)  # type: ignore[arg-type]

        def counted_write(path: Path, data: bytes) -> None:
            returned.append(path)
            write(path, data)

        monkeypatch.setattr(cluster_scheduler.Scheduler, "_source_ref", counted_upload)
        monkeypatch.setattr(cluster_run, "atomic_write_bytes", counted_write)
        job = RestoreJob(Path("c.mp4"), Path("o.mp4"), engine="classic")
        with ClusterSession("local") as session:
            run = ClusterVideoRun(job, plan_job(job), threading.Event(), session)
            assert list(run.events())[-1].stage == "done"
        assert len(uploads) == 2  # each worker was sent the source
        assert len(returned) == len(run.units) >= 2  # every segment came back through Ray
        assert_same_output(tmp_path / "o.mp4", want)

        monkeypatch.setattr(cluster_scheduler, "UPLOAD_LIMIT", 10)
        with ClusterSession("local") as session, pytest.raises(UserError) as exc:
            list(cluster_restore(RestoreJob(Path("c.mp4"), Path("p.mp4"), engine="classic"),
                                 session))
        assert "cannot see the source" in _one_line(exc)
        _nothing_written(tmp_path, tmp_path / "p.mp4")
