"""Joining (or starting) Ray and starting the worker actors, with one-line errors.

`local` starts a Ray instance on this machine with its CPUs and GPUs; `auto` joins the cluster
this machine belongs to (`ray start` was run here); `ray://host:port` connects a Ray client,
`host:port` joins a head node's GCS. An address that does not answer is refused after a short
TCP check instead of Ray's long connection retries.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from seedvr_desktop.cluster.worker import SegmentWorker, WorkerInfo
from seedvr_desktop.errors import UserError

log = logging.getLogger(__name__)

START_TIMEOUT = 120.0  # seconds for every worker to start (scheduling, imports)
_CONNECT_TIMEOUT = 3.0  # seconds for the TCP check of an address


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UserError("--cluster needs Ray: install it with "
                        "pip install 'seedvr-desktop[cluster]'") from None
    return ray


def check_address(address: str) -> str:
    """The address as Ray takes it; UserError for one that is malformed or does not answer."""
    text = address.strip()
    if text in ("local", "auto"):
        return text
    rest = text.removeprefix("ray://")
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"--cluster {address!r}: give local, auto, ray://HOST:PORT or "
                        "HOST:PORT")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), _CONNECT_TIMEOUT):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UserError(f"cannot reach a Ray cluster at {text}: {reason}") from None
    return text


@dataclass
class WorkerHandle:
    """A started worker actor and who it is."""

    actor: Any
    info: WorkerInfo
    number: int

    @property
    def label(self) -> str:
        return f"worker {self.number} on {self.info.node}"


@dataclass
class ClusterSession:
    """A Ray connection and its workers, kept for a series of jobs (the clips of a project).

    Use as a context manager. A Ray already initialised in this process (tests, notebooks) is
    used as it is and left running; one started or joined here is shut down at the end.
    """

    address: str
    max_workers: int | None = None
    _owned: bool = field(default=False, init=False)
    _workers: dict[bool, list[WorkerHandle]] = field(default_factory=dict, init=False)
    _started: int = field(default=0, init=False)

    def __enter__(self) -> ClusterSession:
        self.connect()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def connect(self) -> None:
        ray = _ray()
        address = check_address(self.address)  # even with Ray up: a bad address is an error
        if ray.is_initialized():
            return
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        try:
            if address == "local":
                ray.init(num_cpus=os.cpu_count() or 1, **options)
            else:
                ray.init(address=address, **options)
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
            text = str(exc).strip().splitlines()
            raise UserError(f"cannot join the Ray cluster at {address}: "
                            f"{text[0] if text else type(exc).__name__}") from None
        self._owned = True

    def close(self) -> None:
        ray = _ray()
        for handles in self._workers.values():
            for handle in handles:
                self._kill(handle)
        self._workers.clear()
        if self._owned and ray.is_initialized():
            ray.shutdown()
        self._owned = False

    def _kill(self, handle: WorkerHandle) -> None:
        ray = _ray()
        try:
            ray.kill(handle.actor)
        except Exception:  # already gone with its node: nothing to free
            log.debug("could not stop %s", handle.label, exc_info=True)

    # ---------------------------------------------------------------- workers

    def slots(self, needs_gpu: bool) -> int:
        """How many workers this cluster holds for an engine (one per GPU, or per CPU)."""
        resources = _ray().cluster_resources()
        gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 0))
        if needs_gpu and gpus == 0:
            raise UserError(f"the Ray cluster at {self.address} has no GPUs, and this engine "
                            "needs one per worker; add GPU nodes or restore on the CPU "
                            "(--device cpu, or engine classic)")
        count = gpus if needs_gpu else cpus
        if count < 1:
            raise UserError(f"the Ray cluster at {self.address} offers no CPU for a worker")
        return min(count, self.max_workers) if self.max_workers else count

    def workers(self, needs_gpu: bool) -> list[WorkerHandle]:
        """The started workers for GPU (or CPU) engines, started on the first call."""
        if needs_gpu not in self._workers:
            count = self.slots(needs_gpu)
            self._workers[needs_gpu] = self._start(needs_gpu, count)
        return list(self._workers[needs_gpu])

    def replace(self, dead: WorkerHandle, needs_gpu: bool) -> WorkerHandle | None:
        """A new worker in place of one that died, or None when none can start now."""
        handles = self._workers.get(needs_gpu, [])
        if dead in handles:
            handles.remove(dead)
        try:
            new = self._start(needs_gpu, 1, timeout=30.0)
        except UserError as exc:
            log.warning("no replacement for %s: %s", dead.label, exc)
            return None
        handles.extend(new)
        return new[0]

    def _start(self, needs_gpu: bool, count: int, timeout: float = START_TIMEOUT
               ) -> list[WorkerHandle]:
        ray = _ray()
        from seedvr_desktop import __version__

        remote = ray.remote(num_cpus=1, num_gpus=1 if needs_gpu else 0,
                            max_restarts=0)(SegmentWorker)
        actors = [remote.remote(None if needs_gpu else 1) for _ in range(count)]
        try:
            infos = ray.get([a.hello.remote() for a in actors], timeout=timeout)
        except ray.exceptions.GetTimeoutError:
            for actor in actors:
                ray.kill(actor)
            raise UserError(f"the workers did not start within {timeout:.0f} s: the cluster "
                            "has no free slot for them (or a node cannot import "
                            "seedvr-desktop)") from None
        except ray.exceptions.RayError as exc:
            for actor in actors:
                ray.kill(actor)
            text = str(exc).strip().splitlines()
            raise UserError(f"a worker failed to start: {text[-1] if text else exc}") from None
        handles = []
        for actor, info in zip(actors, infos, strict=True):
            self._started += 1
            handles.append(WorkerHandle(actor, info, self._started))
        for handle in handles:
            if handle.info.version != __version__:
                for h in handles:
                    self._kill(h)
                raise UserError(f"node {handle.info.node} runs seedvr-desktop "
                                f"{handle.info.version} but this computer runs {__version__}: "
                                "install the same version on every node")
        log.info("cluster: %s", ", ".join(h.label for h in handles))
        return handles
