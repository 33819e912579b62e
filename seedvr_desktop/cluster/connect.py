"""Joining (or starting) Ray and starting the worker actors, with one-line errors.

`local` starts a Ray instance on this machine with its CPUs and GPUs; `auto` joins the cluster
this machine belongs to (`ray start` was run here); `ray://host:port` connects a Ray client,
`host:port` joins a head node's GCS. An address that does not answer as one (nothing listening,
silence, another protocol) is refused within seconds by `check_address`, which opens an HTTP/2
connection as gRPC does, instead of going through Ray's connection retries (they never end for
a silent port).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from seedvr_desktop.cluster.worker import SegmentWorker, WorkerInfo
from seedvr_desktop.errors import UserError

log = logging.getLogger(__name__)

START_TIMEOUT = 120.0  # seconds for every worker to start (scheduling, imports)
_CONNECT_TIMEOUT = 3.0  # seconds for the check of an address


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UserError("rendering on a cluster (--cluster, or Settings > Render on) needs "
                        "Ray: install it with pip install 'seedvr-desktop[cluster]'") from None
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
    why = _grpc_problem(host.strip("[]"), int(port), _CONNECT_TIMEOUT)
    if why:
        raise UserError(f"cannot reach a Ray cluster at {text}: {why}")
    return text


# The start of an HTTP/2 connection (RFC 9113, 3.4): the client preface and an empty SETTINGS
# frame. A gRPC server (Ray's GCS, the Ray client server) answers with a SETTINGS frame.
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes(3) + b"\x04" + bytes(5)
_H2_SETTINGS = 0x04


def _grpc_problem(host: str, port: int, timeout: float) -> str:
    """Why `host:port` is not a gRPC server ("" when it is), within about `timeout` seconds.

    Ray itself retries a silent or foreign port forever (its GCS client waits for a cluster id,
    printing warnings); this check turns that into a one-line error.
    """
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((host, port), timeout) as conn:
            conn.sendall(_H2_PREFACE)
            header = b""
            while len(header) < 9:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                conn.settimeout(left)
                data = conn.recv(9 - len(header))
                if not data:
                    return "the port closed the connection (not a Ray head node)"
                header += data
    except TimeoutError:
        return f"no answer within {timeout:.0f} s (not a Ray head node, or a firewall)"
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    if header[3] != _H2_SETTINGS:
        return "something else answers on that port (not a Ray head node)"
    return ""


def _cpu_share(count: int) -> int:
    """CPUs for each of `count` CPU workers: on a one-machine cluster its cores shared out
    (`--cluster local --cluster-workers 1` on 8 cores: one worker computing on 8 threads, not
    1); across machines 1, as a worker cannot span nodes."""
    ray = _ray()
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    if len(nodes) != 1:
        return 1
    cpus = int(nodes[0].get("Resources", {}).get("CPU", 0))
    return max(1, cpus // max(count, 1))


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
    _cpu_share: int = field(default=1, init=False)  # CPUs (and threads) of each CPU worker

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
        # Ray's own INFO lines ("Connecting to existing Ray cluster...") are noise here: the
        # workers are listed in this app's log once they start.
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                   "logging_level": logging.WARNING}
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
            if not needs_gpu:
                self._cpu_share = _cpu_share(count)
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

        share = 1 if needs_gpu else self._cpu_share
        remote = ray.remote(num_cpus=share, num_gpus=1 if needs_gpu else 0,
                            max_restarts=0)(SegmentWorker)
        actors = [remote.remote(None if needs_gpu else share) for _ in range(count)]
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
