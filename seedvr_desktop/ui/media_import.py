"""Importing dropped files and folders: expand, probe off the GUI thread, report per batch.

Probing counts frames by demuxing, which can take seconds on a long capture, so it runs on a
single background thread; results come back through a `Mailbox` as a GUI-thread signal.
Everything that is not media is collected and reported once per drop (one dialog, not one per
file), never raised.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from seedvr_desktop.errors import UserError
from seedvr_desktop.project.model import MediaRef, ProbeSummary
from seedvr_desktop.ui.mailbox import Mailbox

log = logging.getLogger(__name__)

MAX_FOLDER_FILES = 2000  # a whole disk dropped by mistake must not freeze the import


@dataclass
class ImportReport:
    """Outcome of one drop: the media that made it in and what was skipped, with reasons."""

    imported: list[MediaRef] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    # The session's project generation when the drop happened: a report that arrives after
    # another project was opened belongs to no open project and must be dropped.
    generation: int = 0

    def message(self) -> str:
        lines = [f"{len(self.skipped)} item(s) could not be imported:"]
        lines += [f"• {Path(p).name}: {reason}" for p, reason in self.skipped[:12]]
        if len(self.skipped) > 12:
            lines.append(f"… and {len(self.skipped) - 12} more")
        return "\n".join(lines)


def expand_paths(paths: list[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files to probe (folders walked in name order, hidden entries skipped) and missing paths."""
    files: list[Path] = []
    missing: list[tuple[str, str]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                files += [Path(root) / n for n in sorted(names) if not n.startswith(".")]
                if len(files) > MAX_FOLDER_FILES:
                    missing.append((raw, f"more than {MAX_FOLDER_FILES} files; drop fewer"))
                    del files[MAX_FOLDER_FILES:]
                    break
        elif path.is_file():
            files.append(path)
        else:
            missing.append((raw, "no such file"))
    return files, missing


def media_ref_for(path: Path) -> MediaRef:
    """Probe `path` into a MediaRef; MediaError (a UserError) when it is not usable media."""
    from seedvr_desktop.media.probe import probe
    from seedvr_desktop.project.fingerprint import compute_fingerprint

    info = probe(path)
    video = info.video
    if video is None:
        raise UserError("no video or picture in this file")
    rate = video.frame_rate
    summary = ProbeSummary(
        width=video.display_width,
        height=video.display_height,
        frame_rate=None if info.is_image else f"{rate.numerator}/{rate.denominator}",
        frame_count=video.frame_count,
        duration=info.duration,
        is_image=info.is_image,
        has_audio=bool(info.audio),
        video_codec=video.codec,
    )
    return MediaRef(path=path.absolute(), probe=summary, fingerprint=compute_fingerprint(path))


class MediaImporter(QObject):
    """Probes batches of dropped paths on one background thread."""

    batch_finished = Signal(object)  # ImportReport

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="media-import")
        self._mailbox = Mailbox(self)
        self._pending = 0
        self._lock = threading.Lock()

    def import_paths(self, paths: list[str], generation: int = 0) -> None:
        """Probe `paths` in the background; the report carries `generation` back unchanged."""
        with self._lock:
            self._pending += 1
        self._pool.submit(self._run, [str(p) for p in paths], generation)

    def busy(self) -> bool:
        with self._lock:
            return self._pending > 0

    def _run(self, paths: list[str], generation: int) -> None:
        report = ImportReport(generation=generation)
        try:
            files, report.skipped = expand_paths(paths)
            for path in files:
                try:
                    report.imported.append(media_ref_for(path))
                except UserError as exc:
                    report.skipped.append((str(path), str(exc) or "not a video or image file"))
                except Exception as exc:  # an odd file must never take the import down
                    log.warning("probing %s failed", path, exc_info=True)
                    report.skipped.append((str(path), f"cannot be read ({exc})"))
        finally:
            with self._lock:
                self._pending -= 1
            self._mailbox.post(self.batch_finished.emit, report)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._mailbox.close()
