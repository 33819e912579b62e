"""`--cluster ADDRESS` for `restore` and `render`: the option and the job runner it selects.

The CLI adds the option with `add_cluster_argument` and runs its jobs through the runner that
`cluster_runner(args)` yields: `run_restore` itself without `--cluster`, else a function with
the same signature and the same ProgressEvent stream that restores on the cluster. One Ray
connection (and one set of workers, models loaded once) serves every job of the command.
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from seedvr_desktop.engine.base import ProgressEvent
from seedvr_desktop.engine.job import RestoreJob
from seedvr_desktop.errors import UserError

Runner = Callable[[RestoreJob, "threading.Event | None"], Iterator[ProgressEvent]]

HELP = ("restore on a Ray cluster: 'local' (every GPU, or CPU core for classic/none, of this "
        "computer), 'auto' (the cluster this computer joined with 'ray start'), "
        "'ray://HOST:PORT' or 'HOST:PORT' (a head node)")


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("needs at least 1 worker")
    return value


def add_cluster_argument(parser: argparse.ArgumentParser) -> None:
    """Add `--cluster ADDRESS` and `--cluster-workers N` to a command's parser."""
    parser.add_argument("--cluster", metavar="ADDRESS", default=None, help=HELP)
    parser.add_argument("--cluster-workers", metavar="N", type=_workers, default=None,
                        help="with --cluster: use at most N workers (default: one per GPU, "
                        "or per CPU core for engines that run on the CPU)")


def _local(job: RestoreJob, cancel: threading.Event | None = None) -> Iterator[ProgressEvent]:
    from seedvr_desktop.engine.pipeline import run_restore

    return run_restore(job, cancel)


@contextmanager
def cluster_runner(args: argparse.Namespace) -> Iterator[Runner]:
    """The job runner for the parsed command line (see the module docstring).

    Connecting happens here, before any job starts: a bad address is one UserError line and
    nothing is written. The cluster connection (if this made one) ends with the block.
    """
    address = getattr(args, "cluster", None)
    if not address:
        if getattr(args, "cluster_workers", None):
            raise UserError("--cluster-workers needs --cluster")
        yield _local
        return
    from seedvr_desktop.cluster.connect import ClusterSession
    from seedvr_desktop.cluster.run import cluster_restore

    with ClusterSession(address, getattr(args, "cluster_workers", None)) as session:

        def run(job: RestoreJob, cancel: threading.Event | None = None
                ) -> Iterator[ProgressEvent]:
            return cluster_restore(job, session, cancel)

        yield run


def settings_address(render_on: str, cluster_address: str) -> str | None:
    """The `--cluster` address for the GUI's "Render on" setting (settings.RENDER_ON), or
    None for this computer; UserError for the cluster choice without an address."""
    if render_on == "gpus":
        return "local"
    if render_on == "cluster":
        address = cluster_address.strip()
        if not address:
            raise UserError("Settings: 'Render on' is a Ray cluster, but no address is given "
                            "(ray://HOST:PORT, HOST:PORT or auto)")
        return address
    return None


class KeptRunner:
    """The cluster runner of `--cluster ADDRESS` for a caller that runs jobs now and then (the
    GUI worker): connects on the first job and keeps the connection and the workers (models
    loaded) for the next ones, until `close`. Not thread-safe: one job at a time."""

    def __init__(self, address: str, max_workers: int | None = None) -> None:
        self.address = address
        self.max_workers = max_workers
        self._session: Any = None

    def __call__(self, job: RestoreJob, cancel: threading.Event | None = None
                 ) -> Iterator[ProgressEvent]:
        from seedvr_desktop.cluster.run import cluster_restore

        return cluster_restore(job, self.session(), cancel)

    def session(self) -> Any:
        """The connected ClusterSession; UserError when Ray is missing or the address does not
        answer (nothing is kept then: the next job tries again)."""
        if self._session is None:
            from seedvr_desktop.cluster.connect import ClusterSession

            session = ClusterSession(self.address, self.max_workers)
            session.connect()
            self._session = session
        return self._session

    def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            session.close()


def run_jobs(jobs: list[RestoreJob], address: str, *, max_workers: int | None = None,
             cancel: threading.Event | None = None) -> Iterator[tuple[RestoreJob, ProgressEvent]]:
    """Every job on one cluster session, for callers without a command line (the GUI)."""
    from seedvr_desktop.cluster.connect import ClusterSession
    from seedvr_desktop.cluster.run import cluster_restore

    with ClusterSession(address, max_workers) as session:
        for job in jobs:
            for event in cluster_restore(job, session, cancel):
                yield job, event
                if event.stage == "cancelled":
                    return
