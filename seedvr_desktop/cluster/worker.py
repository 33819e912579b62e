"""The worker actor: one per GPU (or CPU slot), loads the engine once, restores units.

The class is plain Python; `connect.py` wraps it with `ray.remote` and the resources of one
slot. Every method returns its failure as a value (a one-line message naming the node) rather
than raising, so the driver tells a user error on one node (no model files there) from a worker
that died (an actor error from Ray, retried elsewhere).
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seedvr_desktop.cluster.unit_restore import PROBE_FILE, JobContext, restore_unit
from seedvr_desktop.cluster.units import WorkUnit
from seedvr_desktop.errors import UserError

log = logging.getLogger(__name__)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass(frozen=True)
class WorkerInfo:
    """Who a worker is: shown in errors and progress, compared with the driver's version."""

    version: str
    host: str
    address: str
    pid: int

    @property
    def node(self) -> str:
        return f"{self.host} ({self.address})" if self.address != self.host else self.host


@dataclass(frozen=True)
class JobView:
    """What a worker found when a job was opened on it."""

    error: str = ""  # a one-line user error ("" when ready)
    sees_source: bool = False
    sees_work_folder: bool = False


@dataclass
class UnitResult:
    """A finished unit (or its one-line error), as the driver commits it."""

    number: int
    frames: int = 0
    damaged: int = 0
    tail: dict[str, Any] | None = None
    data: bytes | None = None  # the segment file, when the work folder is not shared
    seconds: float = 0.0
    error: str = ""


class SegmentWorker:
    """Restores work units of the jobs it is given; keeps its engine loaded between jobs."""

    def __init__(self, cpu_threads: int | None = None) -> None:
        import ray

        if cpu_threads:
            # A CPU slot's worker computes on its share of cores only (Ray already sets
            # OMP_NUM_THREADS, which torch follows; OpenCV keeps its own pool). The encoder keeps
            # its own thread count: x264's bitstream depends on it, and must match a local run.
            import cv2

            cv2.setNumThreads(cpu_threads)

        from seedvr_desktop import __version__

        address = ray.util.get_node_ip_address()
        self.info = WorkerInfo(__version__, socket.gethostname(), address, os.getpid())
        self._engine: Any = None
        self._engine_key: tuple[str, str] | None = None
        self._jobs: dict[str, tuple[JobContext, Path]] = {}
        self._scratch = Path(tempfile.mkdtemp(prefix="seedvr-worker-"))

    def hello(self) -> WorkerInfo:
        return self.info

    def open_job(self, ctx: JobContext, source_data: bytes | None = None) -> JobView:
        """Check what this node sees and load the engine; call before `restore`."""
        try:
            return self._open_job(ctx, source_data)
        except UserError as exc:
            return JobView(error=f"node {self.info.node}: {_first_line(exc)}")
        except Exception as exc:
            log.exception("opening job on %s failed", self.info.node)
            return JobView(error=f"node {self.info.node}: {_first_line(exc)}")

    def _open_job(self, ctx: JobContext, source_data: bytes | None) -> JobView:
        source = Path(ctx.plan.input_path)
        if source_data is not None:
            source = self._scratch / f"source-{ctx.key}{source.suffix}"
            source.write_bytes(source_data)
        sees_source = _same_file(source, ctx.source_size, ctx.source_mtime_ns, source_data)
        probe = Path(ctx.work_folder) / PROBE_FILE
        try:
            sees_work = probe.read_text(encoding="utf-8") == ctx.token
        except OSError:
            sees_work = False
        if not sees_source:
            return JobView(sees_source=False, sees_work_folder=sees_work)
        self._load_engine(ctx)
        self._jobs = {ctx.key: (ctx, source)}  # one job at a time: drop older ones
        return JobView(sees_source=True, sees_work_folder=sees_work)

    def _load_engine(self, ctx: JobContext) -> None:
        if ctx.fast:
            return
        from seedvr_desktop.engine import registry
        from seedvr_desktop.engine.plan import engine_geometry

        if self._engine_key != ctx.engine_key:
            self.close()
            self._engine = registry.create_engine(ctx.plan.engine, **ctx.engine_options)
            self._engine_key = ctx.engine_key
        with engine_geometry(self._engine, ctx.plan.caps):  # as a local run: caps first
            self._engine.prepare(ctx.source, ctx.plan.output_size)

    def restore(self, key: str, unit: WorkUnit, shared: bool) -> UnitResult:
        """Restore one unit of an opened job; the segment goes into the work folder when
        `shared`, else it comes back as bytes."""
        started = time.monotonic()
        try:
            ctx, source = self._jobs[key]
            folder = Path(ctx.work_folder) if shared else self._scratch
            target = folder / ctx.segment_name(unit)
            out = self._restore(ctx, source, unit, target)
            data = None
            if not shared:
                data = target.read_bytes()
                target.unlink()
        except (UserError, OSError) as exc:
            return UnitResult(unit.number, error=f"node {self.info.node}: {_first_line(exc)}")
        except Exception as exc:
            log.exception("segment %d on %s failed", unit.number, self.info.node)
            return UnitResult(unit.number, error=f"node {self.info.node}: segment "
                              f"{unit.number} failed: {_first_line(exc)}")
        return UnitResult(unit.number, out.frames, out.damaged, out.tail, data,
                          time.monotonic() - started)

    def _restore(self, ctx: JobContext, source: Path, unit: WorkUnit, target: Path) -> Any:
        from seedvr_desktop.engine.plan import engine_geometry

        if self._engine is None:
            return restore_unit(None, ctx, source, unit, target)
        with engine_geometry(self._engine, ctx.plan.caps):
            return restore_unit(self._engine, ctx, source, unit, target)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
        self._engine, self._engine_key = None, None


def _same_file(path: Path, size: int, mtime_ns: int, uploaded: bytes | None) -> bool:
    """Whether `path` is the driver's source: same size and modification time (a copy that
    was uploaded has no meaningful time: its size is checked)."""
    try:
        st = path.stat()
    except OSError:
        return False
    if uploaded is not None:
        return st.st_size == size
    return st.st_size == size and st.st_mtime_ns == mtime_ns
