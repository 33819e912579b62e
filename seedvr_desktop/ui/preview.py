"""The Preview action: restore one engine chunk around the playhead and keep it for scrubbing.

The chunk is computed by the worker (same engine instance as exports, model kept loaded), cached
under the clip's settings key, and marked on the timeline. A settings change makes the key differ,
so stale previews disappear from view at once and are dropped from memory.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal

from seedvr_desktop.engine.job import SizeRule
from seedvr_desktop.engine.preview import PreviewRequest
from seedvr_desktop.project.model import Project
from seedvr_desktop.ui.preview_cache import PreviewCache
from seedvr_desktop.ui.timeline_model import restore_key
from seedvr_desktop.ui.worker import WorkerHost

log = logging.getLogger(__name__)


def preview_request(project: Project, clip_id: str, center: int, stop: int) -> PreviewRequest:
    """The worker request for `clip_id` with the same engine options an export would use."""
    from seedvr_desktop.render import project as render

    clip = project.clip_by_id(clip_id)
    media = project.media_by_id(clip.media_id)
    # The project renderer owns the settings -> engine options mapping; previews must match it.
    engine, size, seed, options = render._engine_options(project, clip)
    return PreviewRequest(path=Path(media.path), center=center, first=clip.in_frame, stop=stop,
                          engine=engine, engine_options=dict(options),
                          size=size if isinstance(size, SizeRule) else SizeRule(), seed=seed)


class PreviewController(QObject):
    """Submits preview jobs and answers "is frame N of this clip restored?"."""

    ranges_changed = Signal()
    preview_failed = Signal(str)
    busy_changed = Signal(bool)

    def __init__(self, host: WorkerHost, project: Callable[[], Project],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.host = host
        self._project = project
        self.cache = PreviewCache()
        self._jobs: dict[str, tuple[str, str]] = {}  # job id -> (media path, settings key)
        worker = host.worker
        worker.chunk_ready.connect(self._on_worker_chunk_ready)
        worker.failed.connect(self._on_worker_failed)
        worker.finished.connect(self._on_worker_done)
        worker.cancelled.connect(self._on_worker_done)

    def is_preview_job(self, job_id: str) -> bool:
        return job_id in self._jobs

    def busy(self) -> bool:
        return bool(self._jobs)

    def request(self, clip_id: str, frame: int, stop: int) -> str:
        project = self._project()
        clip = project.clip_by_id(clip_id)
        key = restore_key(project, clip)
        path = str(project.media_by_id(clip.media_id).path)
        job_id = self.host.submit(preview_request(project, clip_id, frame, stop))
        self._jobs[job_id] = (path, key)
        self.busy_changed.emit(True)
        return job_id

    def restored(self, clip_id: str, path: str, index: int) -> np.ndarray | None:
        project = self._project()
        try:
            key = restore_key(project, project.clip_by_id(clip_id))
        except Exception:  # the clip was removed meanwhile
            return None
        return self.cache.lookup(path, key, index)

    def ranges(self, clip_id: str) -> list[tuple[int, int]]:
        project = self._project()
        clip = project.clip_by_id(clip_id)
        path = str(project.media_by_id(clip.media_id).path)
        return self.cache.ranges(path, restore_key(project, clip))

    def invalidate_stale(self) -> None:
        """Drop chunks whose settings no longer match their clip (after any project change)."""
        project = self._project()
        valid = set()
        for clip in project.clips:
            try:
                path = str(project.media_by_id(clip.media_id).path)
                valid.add((path, restore_key(project, clip)))
            except Exception:
                continue
        if self.cache.retain(valid):
            self.ranges_changed.emit()

    def _on_worker_chunk_ready(self, job_id: str, first: int, frames: np.ndarray) -> None:
        if job_id in self._jobs:
            path, key = self._jobs[job_id]
            self.cache.add(path, key, first, frames)
            self.ranges_changed.emit()

    def _on_worker_failed(self, job_id: str, message: str) -> None:
        if self._jobs.pop(job_id, None) is not None:
            self.preview_failed.emit(message)
            self.busy_changed.emit(self.busy())

    def _on_worker_done(self, job_id: str, *_: object) -> None:
        if self._jobs.pop(job_id, None) is not None:
            self.busy_changed.emit(self.busy())
