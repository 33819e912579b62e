"""Settings > "Render on": stored in Settings, edited in the settings dialog, obeyed by the
worker (the cluster runner of `--cluster`), and a cluster job's workers shown in the queue."""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from seedvr_desktop.cluster.progress import ClusterProgressEvent, WorkerProgress
from seedvr_desktop.engine.base import ProgressEvent
from seedvr_desktop.engine.job import RestoreJob
from seedvr_desktop.settings import (
    RENDER_ON,
    SETTINGS_FILE,
    Settings,
    load_settings,
    save_settings,
)
from seedvr_desktop.ui.worker import WorkerHost
from tests.ui.conftest import INVERT, wait_until
from tests.ui.test_worker import Recorder

pytestmark = pytest.mark.gui


# ------------------------------------------------------------------ settings


def test_render_on_round_trips_and_old_files_still_load(tmp_path: Path) -> None:
    save_settings(Settings(render_on="cluster", cluster_address="ray://head:10001"), tmp_path)
    loaded = load_settings(tmp_path)
    assert (loaded.render_on, loaded.cluster_address) == ("cluster", "ray://head:10001")

    (tmp_path / SETTINGS_FILE).write_text(json.dumps({"device": "cpu"}), encoding="utf-8")
    old = load_settings(tmp_path)  # written before "Render on" existed
    assert (old.device, old.render_on, old.cluster_address) == ("cpu", "local", "")

    (tmp_path / SETTINGS_FILE).write_text(json.dumps({"render_on": "moon"}), encoding="utf-8")
    assert load_settings(tmp_path).render_on == "local"


# ------------------------------------------------------------------ dialog


def test_the_dialog_edits_render_on_and_the_address(qtbot, tmp_path: Path) -> None:
    from seedvr_desktop.ui.widgets.settings_dialog import RENDER_ON_LABELS, SettingsDialog

    original = Settings(models_dir=str(tmp_path / "models"))
    dialog = SettingsDialog(original, ["auto", "classic"])
    qtbot.addWidget(dialog)
    combo = dialog.render_combo
    assert [combo.itemData(i) for i in range(combo.count())] == list(RENDER_ON)
    assert [combo.itemText(i) for i in range(combo.count())] == [
        "This computer", "All GPUs here", "Ray cluster at …"]
    assert set(RENDER_ON_LABELS) == set(RENDER_ON)
    assert dialog.render_on() == "local" and not dialog.address_edit.isEnabled()

    combo.setCurrentIndex(combo.findData("gpus"))
    assert not dialog.address_edit.isEnabled()
    assert dialog.result_settings().render_on == "gpus"

    combo.setCurrentIndex(combo.findData("cluster"))
    assert dialog.address_edit.isEnabled()
    dialog.address_edit.setText("  ray://head:10001 ")
    result = dialog.result_settings()
    assert (result.render_on, result.cluster_address) == ("cluster", "ray://head:10001")
    assert original.render_on == "local", "the caller's settings change only when it saves"

    again = SettingsDialog(result, ["auto"])  # opens with what was stored
    qtbot.addWidget(again)
    assert again.render_on() == "cluster" and again.address_edit.isEnabled()
    assert again.address_edit.text() == "ray://head:10001"


# ------------------------------------------------------------------ queue


def _event(done: int, *workers: WorkerProgress) -> ClusterProgressEvent:
    return ClusterProgressEvent("restore", done, 100, fps=20.0, workers=workers)


def test_the_queue_shows_a_row_per_cluster_worker(qtbot, tmp_path: Path) -> None:
    from seedvr_desktop.ui.widgets.queue_panel import QueuePanel

    panel = QueuePanel()
    qtbot.addWidget(panel)
    panel.add_job("j1", "clip.mp4", tmp_path / "out.mp4")
    panel.add_job("j2", "local.mp4", tmp_path / "out2.mp4")
    panel.update_progress("j2", ProgressEvent("restore", 10, 100, fps=5.0))
    assert panel.worker_rows("j2") == []  # a job on this computer: no worker rows

    a, b = "worker 1 on node-a", "worker 2 on node-b"
    panel.update_progress("j1", _event(0, WorkerProgress(a, 0, 0.0, 0),
                                       WorkerProgress(b, 1, 0.0, 0)))
    assert panel.worker_rows("j1") == [(a, "segment 1", ""), (b, "segment 2", "")]
    assert panel.entries["j1"].status == "running"

    panel.update_progress("j1", _event(40, WorkerProgress(a, 2, 31.5, 1),
                                       WorkerProgress(b, None, 12.25, 1)))
    assert panel.worker_rows("j1") == [(a, "segment 3", "31.5 fps"),
                                       (b, "waiting", "12.2 fps")]

    c = "worker 3 on node-b"  # worker 2 died and was replaced
    panel.update_progress("j1", _event(60, WorkerProgress(a, 3, 30.0, 2),
                                       WorkerProgress(c, 4, 0.0, 0)))
    assert [row[0] for row in panel.worker_rows("j1")] == [a, c]
    item = panel._items["j1"]
    panel.tree.setCurrentItem(item.child(0))
    assert panel.selected_job() == "j1"  # a worker row acts on its job

    panel.set_status("j1", "done")
    assert panel.worker_rows("j1") == []


# ------------------------------------------------------------------ worker


class FakeRunner:
    """Stands in for the cluster runner: records the jobs, writes nothing."""

    made: ClassVar[list[FakeRunner]] = []

    def __init__(self, address: str) -> None:
        self.address = address
        self.jobs: list[RestoreJob] = []
        self.closed = False
        FakeRunner.made.append(self)

    def __call__(self, job: RestoreJob, cancel: threading.Event | None = None
                 ) -> Iterator[ProgressEvent]:
        self.jobs.append(job)
        yield ClusterProgressEvent("restore", 5, 10, workers=(
            WorkerProgress("worker 1 on here", 1, 9.0, 1),))
        yield ProgressEvent("done", 10, 10, message="wrote it")

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def settings_now() -> dict[str, Settings]:
    return {"now": Settings()}


@pytest.fixture
def host(qtbot, test_engines, settings_now: dict[str, Settings]) -> Iterator[WorkerHost]:
    FakeRunner.made = []
    h = WorkerHost(settings=lambda: settings_now["now"])
    yield h
    assert h.shutdown(5000)


def test_the_worker_takes_the_cluster_path_when_told(host: WorkerHost, qtbot, small_clip: Path,
                                                     tmp_path: Path,
                                                     settings_now: dict[str, Settings]) -> None:
    host.worker.cluster_runner_factory = FakeRunner
    rec = Recorder(host)
    settings_now["now"] = Settings(render_on="cluster", cluster_address="ray://head:10001")
    first = host.submit(RestoreJob(small_clip, tmp_path / "a.mp4", engine=INVERT))
    second = host.submit(RestoreJob(small_clip, tmp_path / "b.mp4", engine=INVERT))
    wait_until(qtbot, lambda: rec.ended(first) and rec.ended(second))
    assert rec.of("finished", first) and rec.of("finished", second)
    (runner,) = FakeRunner.made  # one connection kept for both exports
    assert runner.address == "ray://head:10001"
    assert [j.output_path.name for j in runner.jobs] == ["a.mp4", "b.mp4"]
    assert host.worker.engine_loads == 0  # nothing restored on this computer
    assert any(isinstance(e, ClusterProgressEvent) for _j, e in rec.of("progressed", first))

    settings_now["now"] = Settings(render_on="gpus")  # every GPU here: --cluster local
    third = host.submit(RestoreJob(small_clip, tmp_path / "c.mp4", engine=INVERT))
    wait_until(qtbot, lambda: rec.ended(third))
    assert runner.closed and FakeRunner.made[-1].address == "local"

    settings_now["now"] = Settings(render_on="local")
    fourth = host.submit(RestoreJob(small_clip, tmp_path / "d.mp4", engine=INVERT))
    wait_until(qtbot, lambda: rec.ended(fourth))
    assert rec.of("finished", fourth) and (tmp_path / "d.mp4").is_file()
    assert host.worker.engine_loads == 1 and FakeRunner.made[-1].closed
    assert not (tmp_path / "a.mp4").exists()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("case", ["unreachable", "no address", "no ray"])
def test_a_cluster_that_cannot_be_used_fails_the_job_with_one_line(
        host: WorkerHost, qtbot, small_clip: Path, tmp_path: Path, case: str,
        settings_now: dict[str, Settings], monkeypatch: pytest.MonkeyPatch) -> None:
    address = {"unreachable": f"127.0.0.1:{_closed_port()}", "no address": " "}.get(case, "auto")
    if case == "no ray":
        monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails as if not installed
    settings_now["now"] = Settings(render_on="cluster", cluster_address=address)
    rec = Recorder(host)
    job = host.submit(RestoreJob(small_clip, tmp_path / "o.mp4", engine=INVERT))
    wait_until(qtbot, lambda: rec.ended(job))
    ((_, message),) = rec.of("failed", job)
    assert "\n" not in message
    expected = {"unreachable": f"cannot reach a Ray cluster at {address}",
                "no address": "no address is given",
                "no ray": "needs Ray: install it"}[case]
    assert expected in message, message
    assert not (tmp_path / "o.mp4").exists() and host.worker.engine_loads == 0
