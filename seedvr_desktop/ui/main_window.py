"""The main window: creates the panels and controllers and connects them. No logic of its own.

Panels live in `widgets/`, behaviour in controllers (`playback`, `preview`, `exports`,
`session`), threads in `worker` and `frame_source`. Everything heavy is imported lazily so the
window shows before torch or PyAV are loaded.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QByteArray, Qt, QTimer
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QDialog, QDockWidget, QFileDialog, QMainWindow

from seedvr_desktop.engine.registry import BUILTIN_ENGINES
from seedvr_desktop.project import commands as cmd
from seedvr_desktop.settings import config_dir, load_settings, save_settings
from seedvr_desktop.ui import dialogs
from seedvr_desktop.ui.edits import EditController
from seedvr_desktop.ui.exports import ExportController
from seedvr_desktop.ui.frame_source import FrameSource
from seedvr_desktop.ui.image import qimage_from_array
from seedvr_desktop.ui.media_import import ImportReport, MediaImporter
from seedvr_desktop.ui.menus import MenuBar
from seedvr_desktop.ui.playback import PlaybackController
from seedvr_desktop.ui.preview import PreviewController
from seedvr_desktop.ui.session import FILE_FILTER, ProjectSession
from seedvr_desktop.ui.shortcuts import HOLD_COMPARE_KEY, KeyController
from seedvr_desktop.ui.timeline_model import layout
from seedvr_desktop.ui.widgets.inspector import InspectorWidget
from seedvr_desktop.ui.widgets.media_bin import ICON_SIZE, BinEntry, MediaBinWidget, local_paths
from seedvr_desktop.ui.widgets.queue_panel import QueuePanel
from seedvr_desktop.ui.widgets.timeline import THUMB_H, TimelineWidget
from seedvr_desktop.ui.widgets.viewer import CompareMode
from seedvr_desktop.ui.widgets.viewer_panel import ViewerPanel
from seedvr_desktop.ui.worker import WorkerHost

log = logging.getLogger(__name__)
APP_TITLE = "SeedVR Desktop"


class MainWindow(QMainWindow):
    """Docks: media bin, viewer, timeline, inspector and queue."""

    def __init__(self, settings_dir: Path | None = None) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.settings_dir = Path(settings_dir) if settings_dir else config_dir()
        self.settings = load_settings(self.settings_dir)
        self.frames = FrameSource(self)
        self.host = WorkerHost(self, settings=lambda: self.settings)
        self.session = ProjectSession(self.settings, self.settings_dir, self)
        self.importer = MediaImporter(self)
        self.selected_clip = ""
        self._shut_down = False
        # Bin thumbnails already asked for (per project generation): a refresh after every
        # edit must not ask again for every media file, which made big imports quadratic.
        self._bin_thumbs: tuple[int, set[str]] = (-1, set())

        self.media_bin = MediaBinWidget()
        self.viewer_panel = ViewerPanel()
        self.viewer = self.viewer_panel.viewer
        self.timeline = TimelineWidget()
        self.inspector = InspectorWidget()
        self.queue_panel = QueuePanel()
        self._build_docks()

        self.preview = PreviewController(self.host, lambda: self.session.project, self)
        self.playback = PlaybackController(self.viewer, self.timeline, self.frames,
                                           self.preview.restored, self)
        self.exports = ExportController(self.host, self.session, self.queue_panel, self)
        self.edits = EditController(self.session, lambda: self.playback.clips, self)
        self._engine_names = ["auto", *BUILTIN_ENGINES]
        self.menus = MenuBar(self, self._menu_handlers())
        self.menus.add_dock_toggles(self)
        self.menus.set_recent(self.settings.recent_projects)
        self.keys = KeyController(self)
        self._bind_keys()
        self._connect()
        self.setAcceptDrops(True)
        self._restore_layout()
        self._refresh_all()
        threading.Thread(target=self._list_engines, daemon=True).start()
        # Quitting the application without closing the window (session logout) still joins
        # the threads; a QThread destroyed while running would abort the process.
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)
        # Transport keys work at once: focus starts on the timeline, not on a text field.
        self.timeline.setFocus()
        QTimer.singleShot(0, self.session.offer_untitled_recovery)

    # ---------------------------------------------------------------- construction
    def _build_docks(self) -> None:
        self.setDockNestingEnabled(True)
        docks = {}
        for key, title, widget in (("bin", "Media", self.media_bin),
                                   ("viewer", "Viewer", self.viewer_panel),
                                   ("inspector", "Inspector", self.inspector),
                                   ("timeline", "Timeline", self.timeline),
                                   ("queue", "Queue", self.queue_panel)):
            dock = QDockWidget(title, self)
            dock.setObjectName(f"{key}Dock")
            dock.setWidget(widget)
            docks[key] = dock
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, docks["bin"])
        self.splitDockWidget(docks["bin"], docks["viewer"], Qt.Orientation.Horizontal)
        self.splitDockWidget(docks["viewer"], docks["inspector"], Qt.Orientation.Horizontal)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, docks["timeline"])
        self.splitDockWidget(docks["timeline"], docks["queue"], Qt.Orientation.Horizontal)
        self.resizeDocks([docks["bin"], docks["viewer"], docks["inspector"]], [260, 900, 300],
                         Qt.Orientation.Horizontal)
        self.resizeDocks([docks["timeline"], docks["queue"]], [1000, 460],
                         Qt.Orientation.Horizontal)
        self.resizeDocks([docks["viewer"], docks["timeline"]], [700, 180], Qt.Orientation.Vertical)
        self.docks = docks
        self.resize(1500, 920)

    def _menu_handlers(self) -> dict:
        pb, v = self.playback, self.viewer
        return {
            "new": self.new_project, "open": self.open_project_dialog,
            "open_recent": self.open_project, "save": self.session.save,
            "save_as": self.session.save_as, "import": self._import_dialog,
            "export": self.export, "settings": self._settings_dialog,
            "undo_action": lambda: self.session.undo.stack.createUndoAction(self, "&Undo"),
            "redo_action": lambda: self.session.undo.stack.createRedoAction(self, "&Redo"),
            "add_caption": self.add_caption_at_playhead,
            "import_captions": lambda: self.edits.import_captions_dialog(self,
                                                                         self.selected_clip),
            "remove_clip": lambda: self.edits.remove_clip(self.selected_clip),
            "clip_earlier": lambda: self.edits.move_clip(self.selected_clip, -1),
            "clip_later": lambda: self.edits.move_clip(self.selected_clip, 1),
            "mark_in": pb.mark_in, "mark_out": pb.mark_out, "play": pb.toggle_play,
            "shuttle_back": lambda: pb.shuttle(-1), "stop": lambda: pb.shuttle(0),
            "shuttle_fwd": lambda: pb.shuttle(1), "prev": lambda: pb.step(-1),
            "next": lambda: pb.step(1), "preview": self.request_preview,
            "mode_split": lambda: v.set_mode(CompareMode.SPLIT),
            "mode_side": lambda: v.set_mode(CompareMode.SIDE_BY_SIDE),
            "mode_toggle": lambda: v.set_mode(CompareMode.TOGGLE),
            "mode_original": lambda: v.set_mode(CompareMode.ORIGINAL),
            "fit": v.fit, "actual": v.actual_size, "timeline_fit": self.timeline.zoom_to_fit,
        }

    def _bind_keys(self) -> None:
        k, pb, v = self.keys, self.playback, self.viewer
        for key, action in (
            (Qt.Key.Key_Space, pb.toggle_play), (Qt.Key.Key_K, lambda: pb.shuttle(0)),
            (Qt.Key.Key_J, lambda: pb.shuttle(-1)), (Qt.Key.Key_L, lambda: pb.shuttle(1)),
            (Qt.Key.Key_Left, lambda: pb.step(-1)), (Qt.Key.Key_Right, lambda: pb.step(1)),
            (Qt.Key.Key_I, pb.mark_in), (Qt.Key.Key_O, pb.mark_out),
            (Qt.Key.Key_F, v.fit), (Qt.Key.Key_1, v.actual_size),
            (Qt.Key.Key_C, self.add_caption_at_playhead), (Qt.Key.Key_P, self.request_preview),
        ):
            k.on_press(key, action)
        k.on_hold(HOLD_COMPARE_KEY, v.set_show_original)
        k.install()

    def _connect(self) -> None:
        s, tl, e = self.session, self.timeline, self.edits
        s.changed.connect(self._on_session_changed)
        s.modified_changed.connect(lambda _m: self._update_title())
        s.recent_changed.connect(self.menus.set_recent)
        self.importer.batch_finished.connect(self._on_importer_batch_finished)
        self.media_bin.files_dropped.connect(self.open_media)
        self.media_bin.media_activated.connect(self._on_media_bin_media_activated)
        self.frames.thumbnail_ready.connect(self._on_frames_thumbnail_ready)
        self.viewer.display_size_changed.connect(self.frames.set_display_size)
        tl.thumbnail_needed.connect(lambda p, i: self.frames.request_thumbnail(p, i, THUMB_H))
        tl.clip_selected.connect(self._select_clip)
        tl.clip_move_requested.connect(e.move_clip_to)
        tl.caption_add_requested.connect(self.add_caption_at)
        tl.caption_text_edited.connect(e.edit_caption_text)
        tl.caption_retimed.connect(e.retime_caption)
        tl.caption_delete_requested.connect(e.remove_caption)
        self.playback.trim_requested.connect(e.trim)
        self.playback.clip_changed.connect(self._select_clip)
        self.inspector.clip_renamed.connect(e.rename)
        self.inspector.prompt_changed.connect(e.set_prompt)
        self.inspector.restore_edited.connect(
            lambda settings, own: e.set_restore(settings, self.selected_clip if own else None))
        self.viewer_panel.preview_requested.connect(self.request_preview)
        self.preview.ranges_changed.connect(self._on_preview_ranges_changed)
        self.preview.preview_failed.connect(
            lambda m: dialogs.show_error(self, "Preview failed", m))
        self.preview.busy_changed.connect(self.viewer_panel.set_busy)
        self.queue_panel.export_requested.connect(self.export)

    # ---------------------------------------------------------------- public API
    def open_media(self, paths: Sequence[str | Path]) -> None:
        """Import files or folders (same as dropping them); probing runs in the background."""
        if paths:
            self.statusBar().showMessage(f"Importing {len(paths)} item(s)…", 3000)
            self.importer.import_paths([str(p) for p in paths], self.session.generation)

    def open_project(self, path: str | Path) -> bool:
        if not self.session.confirm_discard("opening another project"):
            return False
        return self.session.open(path)

    def open_project_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open project", "", FILE_FILTER)
        if path:
            self.open_project(path)

    def new_project(self) -> None:
        if self.session.confirm_discard("starting a new project"):
            self.session.new()

    def export(self) -> list[str]:
        return self.exports.open_dialog(self.selected_clip or None)

    def request_preview(self) -> str | None:
        clip, frame = self.playback.current()
        if clip is None:
            dialogs.show_error(self, "Nothing to preview", "Add a clip and place the playhead.")
            return None
        try:
            return self.preview.request(clip.clip_id, frame, clip.out_frame)
        except Exception as exc:
            dialogs.show_error(self, "Preview failed", str(exc))
            return None

    def add_caption_at_playhead(self) -> None:
        self.add_caption_at(self.playback.position)

    def add_caption_at(self, t: float) -> None:
        """Add a caption at timeline time `t` and open its text for typing."""
        clip = self.playback.clip_at(t)
        added = self.edits.add_caption(clip.clip_id, t) if clip else None
        if added is not None:
            match = [c for c in self.timeline.captions
                     if c.clip_id == added[0] and abs(c.start - added[1]) < 1e-6]
            if match:
                self.timeline.caption_track.edit_caption(match[0])

    # ---------------------------------------------------------------- refresh
    def _refresh_all(self) -> None:
        self._refresh_bin()
        self._refresh_timeline()
        self._refresh_inspector()
        self._update_title()

    def _refresh_bin(self) -> None:
        generation, requested = self._bin_thumbs
        if generation != self.session.generation:
            requested = set()
        present = {str(ref.path) for ref in self.session.project.media if not ref.missing}
        requested &= present  # media removed (e.g. undone) gets a fresh icon when it returns
        self._bin_thumbs = (self.session.generation, requested)
        entries = []
        for ref in self.session.project.media:
            p = ref.probe
            entries.append(BinEntry(ref.id, str(ref.path), p.duration, p.width, p.height,
                                    p.video_codec, p.is_image, ref.missing))
            if not ref.missing and str(ref.path) not in requested:
                requested.add(str(ref.path))
                count = p.frame_count or 1
                self.frames.request_thumbnail(str(ref.path), count // 10, ICON_SIZE.height())
            if p.width and p.height:
                self.timeline.set_aspect(str(ref.path), p.width / p.height)
        self.media_bin.set_entries(entries)

    def _refresh_timeline(self) -> None:
        clips, captions = layout(self.session.project)
        self.timeline.set_items(clips, captions)
        self.playback.set_clips(clips)
        if clips and self.selected_clip not in {c.clip_id for c in clips}:
            self._select_clip(clips[0].clip_id)
        self._on_preview_ranges_changed()

    def _refresh_inspector(self) -> None:
        project = self.session.project
        clip = next((c for c in project.clips if c.id == self.selected_clip), None)
        effective = project.effective_restore(clip) if clip else project.restore
        text = "—"
        if clip is not None:
            first, stop = project.clip_frame_range(clip)
            text = f"frames {first}–{stop}" if stop is not None else f"from frame {first}"
        self.inspector.set_clip(clip, project.restore, effective,
                                overridden=bool(clip and clip.restore), range_text=text)

    def _update_title(self) -> None:
        self.setWindowTitle(f"{self.session.display_name()}[*] — {APP_TITLE}")
        self.setWindowModified(self.session.is_modified())

    def _select_clip(self, clip_id: str) -> None:
        if clip_id != self.selected_clip:
            self.selected_clip = clip_id
            self.timeline.set_selected_clip(clip_id)
            self._refresh_inspector()

    # ---------------------------------------------------------------- slots
    def _on_session_changed(self, event: cmd.ChangeEvent) -> None:
        if event.kind in ("project", "media", "clips"):
            self._refresh_bin()
        if event.kind != "settings":
            self._refresh_timeline()
        if event.kind in ("settings", "clip", "project"):
            self.preview.invalidate_stale()
            self._on_preview_ranges_changed()
        self._refresh_inspector()
        self._update_title()

    def _on_importer_batch_finished(self, report: ImportReport) -> None:
        if report.generation != self.session.generation:
            # Dropped into a project that has since been closed: adding the clips to the
            # project now open would put them where the user never dropped them.
            log.info("ignoring an import that finished after its project was closed")
            self.statusBar().showMessage("Import dropped: its project was closed", 4000)
            return
        added = self.edits.add_imported(report)
        if report.skipped:
            dialogs.show_error(self, "Some files were not imported", report.message())
        self.statusBar().showMessage(f"Imported {added} file(s)", 4000)

    def _on_media_bin_media_activated(self, media_id: str) -> None:
        for clip in self.session.project.clips:
            if clip.media_id == media_id:
                self.playback.seek_frame(clip.id, clip.in_frame)
                return

    def _on_frames_thumbnail_ready(self, path: str, index: int, image) -> None:
        qimg = qimage_from_array(image)
        if image.shape[0] == THUMB_H:
            self.timeline.add_thumbnail(path, index, qimg)
        if image.shape[0] == ICON_SIZE.height():
            self.media_bin.set_thumbnail(path, qimg)

    def _on_preview_ranges_changed(self) -> None:
        ranges = []
        for span in self.playback.clips:
            for start, stop in self.preview.ranges(span.clip_id):
                lo, hi = max(start, span.in_frame), min(stop, span.out_frame)
                if lo < hi:
                    ranges.append((span.time_of(lo), span.time_of(hi)))
        self.timeline.set_preview_ranges(ranges)
        self.playback.refresh_restored()

    def _import_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Import media")
        self.open_media(paths)

    def _settings_dialog(self) -> None:
        from seedvr_desktop.ui.widgets.settings_dialog import SettingsDialog

        dialog = SettingsDialog(self.settings, self._engine_names, self)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.settings = dialog.result_settings()
            self.session.settings = self.settings
            self._save_settings()

    def _list_engines(self) -> None:
        """Background thread: the registry may import engine plug-ins (and torch) when asked."""
        try:
            from seedvr_desktop.engine.registry import engine_names

            self._engine_names = ["auto", *engine_names()]
            self.host.mailbox.post(self.inspector.set_engines, self._engine_names)
        except Exception:  # the list is cosmetic; never fail the window over it
            log.warning("could not list engines", exc_info=True)

    # ---------------------------------------------------------------- drag and drop, close
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if local_paths(event):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = local_paths(event)
        if paths:
            event.acceptProposedAction()
            self.open_media(paths)

    def closeEvent(self, event: QCloseEvent) -> None:
        running = self.exports.running_jobs()
        if running and not dialogs.ask_yes_no(
            self, "Exports are running", f"{len(running)} export(s) are not finished. "
            "Cancel them and quit?"):
            event.ignore()
            return
        if not self.session.confirm_discard("closing"):
            event.ignore()
            return
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """Stop every thread (cancelling jobs) and remember the layout; safe to call twice."""
        if self._shut_down:
            return
        self._shut_down = True
        self.keys.uninstall()
        self.playback.pause()
        self.host.shutdown()
        self.frames.close()
        self.importer.close()
        self.session.close()
        self.settings.window_geometry = base64.b64encode(self.saveGeometry().data()).decode()
        self.settings.window_state = base64.b64encode(self.saveState().data()).decode()
        self._save_settings()

    def _restore_layout(self) -> None:
        for value, restore in ((self.settings.window_geometry, self.restoreGeometry),
                               (self.settings.window_state, self.restoreState)):
            if value:
                try:
                    restore(QByteArray(base64.b64decode(value)))
                except ValueError:
                    log.warning("ignoring a damaged saved window layout")

    def _save_settings(self) -> None:
        try:
            save_settings(self.settings, self.settings_dir)
        except OSError as exc:
            log.warning("cannot save settings: %s", exc)

