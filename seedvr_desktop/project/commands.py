"""Every edit of a project as an undoable command.

Plain Python so the CLI and tests share it with the GUI; `document.ProjectDocument` runs them
and holds the one undo history. Each step emits exactly one `ChangeEvent`, which is what views
refresh on.

Commands validate before they mutate: a rejected edit raises ProjectError and changes nothing.
"""

from __future__ import annotations

import dataclasses
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seedvr_desktop.project.model import (
    Caption,
    Clip,
    ExportSettings,
    MediaRef,
    Project,
    ProjectError,
    RestoreSettings,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChangeEvent:
    """What changed, so a view can refresh only that part.

    kind: "clips" (added/removed/reordered), "clip" (one clip's range, name, prompt or
    overrides), "captions" (one clip's captions), "settings" (project defaults), "media"
    (relinked), "project" (name, or a whole new project loaded).
    """

    kind: str
    clip_id: str | None = None
    text: str = ""  # the command's user-visible description
    undone: bool = False


Listener = Callable[[ChangeEvent], None]


class Command(ABC):
    """One undoable edit; `redo` is also the first application."""

    text = "Edit"

    @abstractmethod
    def redo(self, project: Project) -> ChangeEvent: ...

    @abstractmethod
    def undo(self, project: Project) -> ChangeEvent: ...

    def merge_with(self, other: Command) -> bool:
        """Absorb `other` (already applied) into self, e.g. many trims from one slider drag."""
        return False


# ----------------------------------------------------------------------------- clips


class AddClip(Command):
    """Insert a clip (and its media entry when the project does not have it yet)."""

    def __init__(self, clip: Clip, index: int | None = None, media: MediaRef | None = None):
        self.clip = clip
        self.index = index
        self.media = media
        self._added_media = False
        self.text = f"Add clip {clip.name or clip.id}"

    def redo(self, project: Project) -> ChangeEvent:
        known = {m.id for m in project.media}
        needs_media = self.clip.media_id not in known
        if needs_media and (self.media is None or self.media.id != self.clip.media_id):
            raise ProjectError(f"clip {self.clip.name or self.clip.id} refers to unknown media")
        if any(c.id == self.clip.id for c in project.clips):
            raise ProjectError(f"the project already has clip {self.clip.id}")
        ref = self.media if needs_media else project.media_by_id(self.clip.media_id)
        assert ref is not None
        self.clip.validate(ref.probe.frame_count)
        if needs_media:
            project.media.append(ref)
        self._added_media = needs_media
        index = len(project.clips) if self.index is None else self.index
        project.clips.insert(max(0, min(index, len(project.clips))), self.clip)
        return ChangeEvent("clips", self.clip.id, self.text)

    def undo(self, project: Project) -> ChangeEvent:
        project.clips.remove(self.clip)
        if self._added_media:
            project.media = [m for m in project.media if m.id != self.clip.media_id]
        return ChangeEvent("clips", self.clip.id, self.text, undone=True)


class RemoveClip(Command):
    def __init__(self, clip_id: str) -> None:
        self.clip_id = clip_id
        self._clip: Clip | None = None
        self._index = 0
        self.text = "Remove clip"

    def redo(self, project: Project) -> ChangeEvent:
        self._index = project.clip_index(self.clip_id)
        self._clip = project.clips.pop(self._index)
        return ChangeEvent("clips", self.clip_id, self.text)

    def undo(self, project: Project) -> ChangeEvent:
        assert self._clip is not None
        project.clips.insert(self._index, self._clip)
        return ChangeEvent("clips", self.clip_id, self.text, undone=True)


class MoveClip(Command):
    """Move a clip to position `new_index` of the timeline (after removal from its old place)."""

    def __init__(self, clip_id: str, new_index: int) -> None:
        self.clip_id = clip_id
        self.new_index = new_index
        self._old_index = 0
        self.text = "Reorder clips"

    def redo(self, project: Project) -> ChangeEvent:
        if not 0 <= self.new_index < len(project.clips):
            raise ProjectError(f"clip position {self.new_index + 1} is outside the timeline")
        self._old_index = project.clip_index(self.clip_id)
        project.clips.insert(self.new_index, project.clips.pop(self._old_index))
        return ChangeEvent("clips", self.clip_id, self.text)

    def undo(self, project: Project) -> ChangeEvent:
        index = project.clip_index(self.clip_id)
        project.clips.insert(self._old_index, project.clips.pop(index))
        return ChangeEvent("clips", self.clip_id, self.text, undone=True)


class _SetClipFields(Command):
    """Replace some attributes of one clip; the old values are kept for undo."""

    kind = "clip"

    def __init__(self, clip_id: str, **values: Any) -> None:
        self.clip_id = clip_id
        self.values = values
        self._old: dict[str, Any] = {}

    def _check(self, project: Project, clip: Clip) -> None:
        trial = dataclasses.replace(clip, **self.values)
        trial.validate(project.media_by_id(clip.media_id).probe.frame_count)
        project.restore.with_overrides(trial.restore)

    def redo(self, project: Project) -> ChangeEvent:
        clip = project.clip_by_id(self.clip_id)
        self._check(project, clip)
        self._old = {name: getattr(clip, name) for name in self.values}
        for name, value in self.values.items():
            setattr(clip, name, value)
        return ChangeEvent(self.kind, self.clip_id, self.text)

    def undo(self, project: Project) -> ChangeEvent:
        clip = project.clip_by_id(self.clip_id)
        for name, value in self._old.items():
            setattr(clip, name, value)
        return ChangeEvent(self.kind, self.clip_id, self.text, undone=True)

    def merge_with(self, other: Command) -> bool:
        if type(other) is not type(self) or other.clip_id != self.clip_id:
            return False
        self.values = dict(other.values)
        return True


class TrimClip(_SetClipFields):
    def __init__(self, clip_id: str, in_frame: int, out_frame: int | None) -> None:
        super().__init__(clip_id, in_frame=in_frame, out_frame=out_frame)
        self.text = "Trim clip"


class RenameClip(_SetClipFields):
    def __init__(self, clip_id: str, name: str) -> None:
        super().__init__(clip_id, name=name)
        self.text = "Rename clip"


class SetClipPrompt(_SetClipFields):
    def __init__(self, clip_id: str, prompt: str) -> None:
        super().__init__(clip_id, prompt=prompt)
        self.text = "Edit prompt"


class SetClipRestore(_SetClipFields):
    """Replace a clip's setting overrides (an empty dict means: use the project defaults)."""

    def __init__(self, clip_id: str, overrides: dict[str, Any]) -> None:
        super().__init__(clip_id, restore=dict(overrides))
        self.text = "Change clip settings"


# ----------------------------------------------------------------------------- captions


class _CaptionCommand(Command):
    def __init__(self, clip_id: str) -> None:
        self.clip_id = clip_id
        self._before: list[Caption] = []

    def _apply(self, project: Project, captions: list[Caption]) -> ChangeEvent:
        for caption in captions:
            caption.validate()
        clip = project.clip_by_id(self.clip_id)
        self._before = list(clip.captions)
        clip.captions = captions
        return ChangeEvent("captions", self.clip_id, self.text)

    def undo(self, project: Project) -> ChangeEvent:
        project.clip_by_id(self.clip_id).captions = list(self._before)
        return ChangeEvent("captions", self.clip_id, self.text, undone=True)


def _insert_sorted(captions: list[Caption], caption: Caption) -> list[Caption]:
    index = sum(1 for c in captions if c.start <= caption.start)
    return [*captions[:index], caption, *captions[index:]]


class AddCaption(_CaptionCommand):
    """Add a caption, keeping the clip's captions ordered by start time."""

    def __init__(self, clip_id: str, caption: Caption) -> None:
        super().__init__(clip_id)
        self.caption = caption
        self.text = "Add caption"

    def redo(self, project: Project) -> ChangeEvent:
        self.caption.validate_edit()  # a caption added now must show some text
        current = project.clip_by_id(self.clip_id).captions
        return self._apply(project, _insert_sorted(current, self.caption))


class EditCaption(_CaptionCommand):
    def __init__(self, clip_id: str, index: int, caption: Caption) -> None:
        super().__init__(clip_id)
        self.index = index
        self.caption = caption
        self.text = "Edit caption"

    def redo(self, project: Project) -> ChangeEvent:
        current = list(project.clip_by_id(self.clip_id).captions)
        if not 0 <= self.index < len(current):
            raise ProjectError(f"the clip has no caption {self.index + 1}")
        self.caption.validate_edit()
        del current[self.index]
        return self._apply(project, _insert_sorted(current, self.caption))


class RemoveCaption(_CaptionCommand):
    def __init__(self, clip_id: str, index: int) -> None:
        super().__init__(clip_id)
        self.index = index
        self.text = "Remove caption"

    def redo(self, project: Project) -> ChangeEvent:
        current = list(project.clip_by_id(self.clip_id).captions)
        if not 0 <= self.index < len(current):
            raise ProjectError(f"the clip has no caption {self.index + 1}")
        del current[self.index]
        return self._apply(project, current)


# ----------------------------------------------------------------------------- project-wide


class SetRestoreDefaults(Command):
    def __init__(self, settings: RestoreSettings) -> None:
        self.settings = settings
        self._old: RestoreSettings | None = None
        self.text = "Change restoration settings"

    def redo(self, project: Project) -> ChangeEvent:
        self.settings.validate()
        for clip in project.clips:  # every override must still combine into valid settings
            self.settings.with_overrides(clip.restore)
        self._old, project.restore = project.restore, self.settings
        return ChangeEvent("settings", None, self.text)

    def undo(self, project: Project) -> ChangeEvent:
        assert self._old is not None
        project.restore = self._old
        return ChangeEvent("settings", None, self.text, undone=True)


class SetExportSettings(Command):
    def __init__(self, settings: ExportSettings) -> None:
        self.settings = settings
        self._old: ExportSettings | None = None
        self.text = "Change export settings"

    def redo(self, project: Project) -> ChangeEvent:
        self.settings.validate()
        self._old, project.export = project.export, self.settings
        return ChangeEvent("settings", None, self.text)

    def undo(self, project: Project) -> ChangeEvent:
        assert self._old is not None
        project.export = self._old
        return ChangeEvent("settings", None, self.text, undone=True)


class RenameProject(Command):
    def __init__(self, name: str) -> None:
        self.name = name
        self._old = ""
        self.text = "Rename project"

    def redo(self, project: Project) -> ChangeEvent:
        if not self.name.strip():
            raise ProjectError("the project name must not be empty")
        self._old, project.name = project.name, self.name
        return ChangeEvent("project", None, self.text)

    def undo(self, project: Project) -> ChangeEvent:
        project.name = self._old
        return ChangeEvent("project", None, self.text, undone=True)


class RelinkMedia(Command):
    """Point a media entry at a new file (found by fingerprint or chosen by the user)."""

    def __init__(self, media_id: str, path: Path) -> None:
        self.media_id = media_id
        self.path = Path(path).absolute()
        self._old: tuple[Path, bool] | None = None
        self.text = "Relink media"

    def redo(self, project: Project) -> ChangeEvent:
        if not self.path.is_file():
            raise ProjectError(f"{self.path} is not a file")
        ref = project.media_by_id(self.media_id)
        self._old = (ref.path, ref.missing)
        ref.path, ref.missing = self.path, False
        return ChangeEvent("media", None, self.text)

    def undo(self, project: Project) -> ChangeEvent:
        assert self._old is not None
        ref = project.media_by_id(self.media_id)
        ref.path, ref.missing = self._old
        return ChangeEvent("media", None, self.text, undone=True)
