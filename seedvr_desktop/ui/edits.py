"""Turns gestures from the panels into undoable project commands.

Timeline, inspector, playhead marks and the importer all report *what the user asked for*; this
controller translates that into `project.commands` and pushes them through the session (which
shows a rejected edit as a message and changes nothing).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QWidget

from seedvr_desktop.errors import UserError
from seedvr_desktop.project import commands as cmd
from seedvr_desktop.project.captions import ImportedCaptions, import_caption_file
from seedvr_desktop.project.model import Caption, Clip, RestoreSettings
from seedvr_desktop.ui import dialogs
from seedvr_desktop.ui.media_import import ImportReport
from seedvr_desktop.ui.session import ProjectSession
from seedvr_desktop.ui.timeline_model import ClipSpan

NEW_CAPTION_SECONDS = 3.0
NEW_CAPTION_TEXT = "New caption"


class EditController(QObject):
    """Edit operations by name; `spans()` gives the current timeline layout."""

    def __init__(self, session: ProjectSession, spans: Callable[[], list[ClipSpan]],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self._spans = spans

    def _window(self) -> QWidget | None:
        """The window messages of this controller belong to (its parent, when a widget)."""
        parent = self.parent()
        return parent if isinstance(parent, QWidget) else None

    def _span(self, clip_id: str) -> ClipSpan | None:
        return next((s for s in self._spans() if s.clip_id == clip_id), None)

    # ---------------------------------------------------------------- media
    def add_imported(self, report: ImportReport) -> int:
        """One clip per imported file (re-dropping a known file adds another clip of it); the
        whole drop is one undo step, as the user made one gesture."""
        if not report.imported:
            return 0
        known = {str(m.path): m for m in self.session.project.media}
        added = 0
        count = len(report.imported)
        with self.session.undo.macro(f"Import {count} file{'s' if count != 1 else ''}"):
            for ref in report.imported:
                media = known.get(str(ref.path))
                clip = Clip(media_id=media.id if media else ref.id, name=ref.path.stem)
                if self.session.push(cmd.AddClip(clip, media=None if media else ref)):
                    known.setdefault(str(ref.path), ref)
                    added += 1
        if not added:  # every file was refused: leave no empty "Import" step behind
            self.session.undo.stack.undo()
        return added

    def move_clip(self, clip_id: str, delta: int) -> None:
        """Move a clip earlier (-1) or later (+1) on the timeline; no-op at either end."""
        if not clip_id:
            return
        index = self.session.project.clip_index(clip_id) + delta
        if 0 <= index < len(self.session.project.clips):
            self.session.push(cmd.MoveClip(clip_id, index))

    def move_clip_to(self, clip_id: str, index: int) -> None:
        """Put a clip at timeline position `index` (as dropped by a drag); one undo step."""
        project = self.session.project
        if clip_id and 0 <= index < len(project.clips) and project.clip_index(clip_id) != index:
            self.session.push(cmd.MoveClip(clip_id, index))

    def remove_clip(self, clip_id: str) -> None:
        if clip_id:
            self.session.push(cmd.RemoveClip(clip_id))

    def trim(self, clip_id: str, first: int, stop: int | None) -> None:
        self.session.push(cmd.TrimClip(clip_id, first, stop))

    def rename(self, clip_id: str, name: str) -> None:
        self.session.push(cmd.RenameClip(clip_id, name))

    def set_prompt(self, clip_id: str, prompt: str) -> None:
        self.session.push(cmd.SetClipPrompt(clip_id, prompt))

    def set_restore(self, settings: RestoreSettings, clip_id: str | None) -> None:
        """Project defaults, or (with `clip_id`) the fields where the clip differs from them."""
        project = self.session.project
        if clip_id:
            base = project.restore
            overrides = {f.name: getattr(settings, f.name) for f in dataclasses.fields(base)
                         if getattr(settings, f.name) != getattr(base, f.name)}
            if overrides != project.clip_by_id(clip_id).restore:
                self.session.push(cmd.SetClipRestore(clip_id, overrides))
        elif settings != project.restore:
            self.session.push(cmd.SetRestoreDefaults(settings))

    # ---------------------------------------------------------------- captions
    def add_caption(self, clip_id: str, t: float) -> tuple[str, float] | None:
        """A caption starting at timeline time `t`; returns (clip id, its timeline start)."""
        span = self._span(clip_id)
        if span is None:
            return None
        start = max(0.0, min(t - span.start, span.duration - 0.1))
        end = min(span.duration, start + NEW_CAPTION_SECONDS)
        if self.session.push(cmd.AddCaption(clip_id, Caption(start, end, NEW_CAPTION_TEXT))):
            return clip_id, span.start + start
        return None

    def edit_caption_text(self, clip_id: str, index: int, text: str) -> bool:
        """New text for a caption; empty text is refused with a message (nothing changes)."""
        old = self.session.project.clip_by_id(clip_id).captions[index]
        new = dataclasses.replace(old, text=text)
        try:
            new.validate_edit()
        except UserError as exc:
            dialogs.show_error(self._window(), "Edit caption", str(exc))
            return False
        return self.session.push(cmd.EditCaption(clip_id, index, new))

    def retime_caption(self, clip_id: str, index: int, start: float, end: float) -> None:
        """New timeline times for a caption (stored relative to the clip's in-point)."""
        span = self._span(clip_id)
        if span is None:
            return
        old = self.session.project.clip_by_id(clip_id).captions[index]
        rel_start = max(0.0, start - span.start)
        new = dataclasses.replace(old, start=rel_start, end=max(rel_start + 0.1, end - span.start))
        self.session.push(cmd.EditCaption(clip_id, index, new))

    def remove_caption(self, clip_id: str, index: int) -> None:
        self.session.push(cmd.RemoveCaption(clip_id, index))

    def import_captions(self, clip_id: str, path: Path) -> ImportedCaptions:
        """Every caption of a subtitle file (.srt, .vtt, .ass) into the clip's caption track,
        as one undo step; the same reader as `project caption --import`. Raises UserError
        for a file that is not usable (nothing is added then)."""
        span = self._span(clip_id)
        if span is None:
            raise UserError("select a clip to import the captions into")
        imported = import_caption_file(path, duration=span.duration or None)
        count = len(imported.captions)
        with self.session.undo.macro(f"Import {count} caption{'s' if count != 1 else ''}"):
            added = all(self.session.push(cmd.AddCaption(clip_id, caption))
                        for caption in imported.captions)
        if not added:  # one was refused (and shown): take back the ones before it too
            self.session.undo.stack.undo()
            return ImportedCaptions([], imported.problems)
        return imported

    def import_captions_dialog(self, parent: QWidget, clip_id: str) -> int:
        """Ask for a subtitle file and import it into `clip_id`; problems are shown in a
        message, nothing raises. Returns how many captions were added."""
        if not clip_id:
            dialogs.show_error(parent, "Import captions",
                               "Select a clip on the timeline to import the captions into.")
            return 0
        path = dialogs.ask_caption_file(parent)
        if path is None:
            return 0
        try:
            imported = self.import_captions(clip_id, path)
        except UserError as exc:
            dialogs.show_error(parent, "Captions not imported", str(exc))
            return 0
        if imported.captions and imported.problems:
            shown = imported.problems[:10]
            more = len(imported.problems) - len(shown)
            dialogs.show_info(parent, "Captions imported",
                              f"{len(imported.captions)} caption(s) imported from {path.name}; "
                              "some were left out or cut:\n" + "\n".join(shown)
                              + (f"\n... and {more} more" if more else ""))
        return len(imported.captions)
