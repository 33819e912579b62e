"""From the Export button to files on disk: dialog, render items, worker jobs, queue rows.

`project.render.build_render_items` builds the very same `RestoreJob`s the CLI's `render`
command runs (settings merge, trimming, captions, audio), so a GUI export and a headless render
of the same project produce the same files.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from PySide6.QtCore import QObject, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QDialog, QWidget

from seedvr_desktop.engine.base import ProgressEvent
from seedvr_desktop.errors import UserError
from seedvr_desktop.project.commands import SetExportSettings
from seedvr_desktop.ui import dialogs
from seedvr_desktop.ui.session import ProjectSession
from seedvr_desktop.ui.widgets.export_dialog import ExportDialog
from seedvr_desktop.ui.widgets.queue_panel import QueuePanel
from seedvr_desktop.ui.worker import WorkerHost

log = logging.getLogger(__name__)


class ExportController(QObject):
    """Queues export jobs on the worker and mirrors their state in the queue panel."""

    def __init__(self, host: WorkerHost, session: ProjectSession, panel: QueuePanel,
                 window: QWidget) -> None:
        super().__init__(window)
        self.host, self.session, self.panel, self._window = host, session, panel, window
        self._jobs: set[str] = set()
        worker = host.worker
        worker.started.connect(self._on_worker_started)
        worker.progressed.connect(self._on_worker_progressed)
        worker.finished.connect(self._on_worker_finished)
        worker.failed.connect(self._on_worker_failed)
        worker.cancelled.connect(self._on_worker_cancelled)
        panel.pause_requested.connect(self._on_panel_pause_requested)
        panel.resume_requested.connect(self._on_panel_resume_requested)
        panel.cancel_requested.connect(self.cancel)
        panel.open_folder_requested.connect(self._on_panel_open_folder_requested)

    def running_jobs(self) -> list[str]:
        return [j for j in self.panel.active_jobs() if j in self._jobs]

    # ---------------------------------------------------------------- queueing
    def open_dialog(self, selected_clip: str | None) -> list[str]:
        project = self.session.project
        if not project.clips:
            dialogs.show_error(self._window, "Nothing to export", "Add a clip to the project.")
            return []
        dialog = ExportDialog(self._default_settings(), has_selection=bool(selected_clip),
                              parent=self._window)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return []
        settings = dialog.settings()
        if settings != project.export and not self.session.push(SetExportSettings(settings)):
            return []
        numbers = None
        if not dialog.export_all() and selected_clip:
            numbers = [project.clip_index(selected_clip) + 1]
        return self.queue(numbers)

    def _default_settings(self):
        """Project export settings; an unsaved project exports beside its first media file,
        because a relative folder would otherwise land in the process's working folder."""
        project = self.session.project
        settings = project.export
        folder = Path(settings.output_folder).expanduser()
        if project.path is None and not folder.is_absolute() and project.media:
            base = project.media_by_id(project.clips[0].media_id).path.parent
            settings = dataclasses.replace(settings, output_folder=str(base / folder))
        return settings

    def queue(self, clip_numbers: list[int] | None = None) -> list[str]:
        """Queue exports of the given 1-based clips (None: all); returns the job ids."""
        from seedvr_desktop.render.project import build_render_items

        project = self.session.project
        try:
            items = build_render_items(project, clips=clip_numbers)
            existing = [i.job.output_path for i in items if i.job.output_path.exists()]
            if existing:
                names = ", ".join(p.name for p in existing[:4])
                if not dialogs.ask_yes_no(self._window, "Replace files?",
                                          f"{len(existing)} output file(s) exist ({names}). "
                                          "Replace them?"):
                    return []
                items = build_render_items(project, clips=clip_numbers, overwrite=True)
        except (UserError, OSError) as exc:
            dialogs.show_error(self._window, "Cannot export", str(exc))
            return []
        ids = []
        for item in items:
            job_id = self.host.submit(item.job)
            self._jobs.add(job_id)
            name = f"{item.number}. {item.clip.name or item.media.path.name}"
            self.panel.add_job(job_id, name, item.job.output_path)
            ids.append(job_id)
        return ids

    # ---------------------------------------------------------------- controls
    def cancel(self, job_id: str) -> None:
        if job_id in self._jobs:
            self.host.cancel(job_id)

    def _on_panel_pause_requested(self, job_id: str) -> None:
        if job_id in self._jobs and self.host.pause(job_id):
            self.panel.set_status(job_id, "paused")

    def _on_panel_resume_requested(self, job_id: str) -> None:
        if job_id in self._jobs and self.host.resume(job_id):
            self.panel.set_status(job_id, "running")

    def _on_panel_open_folder_requested(self, folder: str) -> None:
        if Path(folder).is_dir():
            QDesktopServices.openUrl(QUrl.fromLocalFile(folder))
        else:
            dialogs.show_error(self._window, "Folder not found", f"{folder} does not exist yet.")

    # ---------------------------------------------------------------- worker signals
    def _on_worker_started(self, job_id: str) -> None:
        if job_id in self._jobs and self.panel.entries[job_id].status == "queued":
            self.panel.set_status(job_id, "running")

    def _on_worker_progressed(self, job_id: str, event: ProgressEvent) -> None:
        if job_id in self._jobs:
            self.panel.update_progress(job_id, event)

    def _on_worker_finished(self, job_id: str, output: str) -> None:
        if job_id in self._jobs:
            self.panel.set_status(job_id, "done")

    def _on_worker_failed(self, job_id: str, message: str) -> None:
        if job_id in self._jobs:
            self.panel.set_status(job_id, "failed", message)

    def _on_worker_cancelled(self, job_id: str) -> None:
        if job_id in self._jobs:
            self.panel.set_status(job_id, "cancelled")
