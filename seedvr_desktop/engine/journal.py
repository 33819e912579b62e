"""The resume journal: finished segments of an unfinished job, kept next to the output.

Layout of the hidden work folder `.<output name>.seedvr-work/` beside the output:
    journal.json        what is finished: segment files, the chunk to continue from, counters
    seg_00000.mov ...   encoded video segments (complete files only; see SegmentEncoder)
    tail_00003.npz      the blender's pending overlap frames after segment 3 (+ JSON fields)

The journal names a segment only after its file is complete and the blender tail is saved, and
is itself replaced atomically, so a crash at any moment leaves a consistent journal. A job
fingerprint (input file identity + every setting that changes the output bytes) guards against
resuming with different settings.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from seedvr_desktop.fsutil import atomic_open, atomic_write_text
from seedvr_desktop.media.outputs import make_output_folder, remove_empty_folders, unwritable_folder

log = logging.getLogger(__name__)

JOURNAL_VERSION = 1
JOURNAL_FILE = "journal.json"
WORK_SUFFIX = ".seedvr-work"


def work_dir_for(output: Path) -> Path:
    """The hidden work folder for an output path (file or PNG-sequence folder)."""
    output = Path(output)
    return output.parent / f".{output.name}{WORK_SUFFIX}"


@dataclass
class SegmentRecord:
    """One finished segment and the job state right after it."""

    file: str  # file name in the work folder ("" for PNG batches, written as frames/)
    frames: int  # output frames in this segment
    next_chunk: int  # index of the first chunk not yet (fully) written
    frames_done: int  # output frames written up to and including this segment
    damaged: int  # damaged source frames counted so far
    tail: str | None = None  # blender state file, if the blender holds frames


@dataclass
class Journal:
    """The journal of one job; use `Journal.open` to start or resume."""

    folder: Path
    fingerprint: str
    segments: list[SegmentRecord] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. the detected scene cuts

    @classmethod
    def open(cls, output: Path, fingerprint: str, *, resume: bool) -> tuple[Journal, str]:
        """Start a fresh journal, or resume a matching one; returns it with a one-line note."""
        folder = work_dir_for(output)
        if resume:
            found = cls._load(folder)
            if found is not None and found.fingerprint == fingerprint and found.segments:
                found._drop_strays()
                done = found.segments[-1].frames_done
                return found, f"resuming after {done} finished frames"
            note = ("the unfinished job was made with other settings; starting over"
                    if found is not None and found.fingerprint != fingerprint
                    else "nothing to resume; starting from the beginning")
        else:
            note = ""
            if folder.exists():
                log.info("discarding the previous unfinished job in %s", folder)
        shutil.rmtree(folder, ignore_errors=True)
        # The output folder is the user's choice: a read-only card or a file in the way is a
        # UserError naming it, and nothing made here is left behind.
        created = make_output_folder(folder.parent)
        journal = cls(folder, fingerprint)
        try:
            folder.mkdir(exist_ok=True)
            journal._save()
        except OSError as exc:
            # Making folders can succeed where writing into one fails (read-only mount
            # point, no permission, quota, full disk).
            shutil.rmtree(folder, ignore_errors=True)
            remove_empty_folders(created)
            raise unwritable_folder(folder.parent, exc) from exc
        return journal, note

    # ---------------------------------------------------------------- state

    @property
    def last(self) -> SegmentRecord | None:
        return self.segments[-1] if self.segments else None

    def segment_path(self, number: int, extension: str) -> Path:
        return self.folder / f"seg_{number:05d}.{extension}"

    def segment_files(self) -> list[Path]:
        return [self.folder / s.file for s in self.segments if s.file]

    def commit(self, record: SegmentRecord, tail_state: dict[str, Any] | None) -> None:
        """Record a finished segment (its file must already be complete)."""
        if tail_state is not None:
            name = f"tail_{len(self.segments):05d}.npz"
            save_state(self.folder / name, tail_state)
            record.tail = name
        previous_tail = self.last.tail if self.last else None
        self.segments.append(record)
        self._save()
        if previous_tail and previous_tail != record.tail:
            (self.folder / previous_tail).unlink(missing_ok=True)

    def tail_state(self) -> dict[str, Any] | None:
        """The blender state saved with the last segment, or None."""
        last = self.last
        if last is None or not last.tail:
            return None
        return load_state(self.folder / last.tail)

    def set_extra(self, **values: Any) -> None:
        self.extra.update(values)
        self._save()

    def remove(self) -> None:
        """Delete the work folder (job finished, or nothing worth resuming)."""
        shutil.rmtree(self.folder, ignore_errors=True)

    # ---------------------------------------------------------------- files

    def _save(self) -> None:
        data = {"version": JOURNAL_VERSION, "fingerprint": self.fingerprint,
                "segments": [asdict(s) for s in self.segments], "extra": self.extra}
        atomic_write_text(self.folder / JOURNAL_FILE, json.dumps(data, indent=1))

    @classmethod
    def _load(cls, folder: Path) -> Journal | None:
        try:
            data = json.loads((folder / JOURNAL_FILE).read_text(encoding="utf-8"))
            if data.get("version") != JOURNAL_VERSION:
                return None
            segments = [SegmentRecord(**s) for s in data["segments"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.info("no usable journal in %s: %s", folder, exc)
            return None
        journal = cls(folder, str(data["fingerprint"]), segments, dict(data.get("extra", {})))
        missing = [f for f in journal.segment_files() if not f.is_file()]
        if missing:
            log.warning("journal lists missing segment %s; starting over", missing[0].name)
            return None
        return journal

    def _drop_strays(self) -> None:
        """Remove files a crash left behind that the journal does not list."""
        keep = {JOURNAL_FILE, "frames"} | {s.file for s in self.segments}
        if self.last and self.last.tail:
            keep.add(self.last.tail)
        for path in self.folder.iterdir():
            if path.name not in keep:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)


# ------------------------------------------------------------------ blender state files


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Store a dict of JSON values and numpy arrays (any nesting) without pickle."""
    arrays: dict[str, np.ndarray] = {}

    def encode(value: Any) -> Any:
        if isinstance(value, np.ndarray):
            key = f"a{len(arrays)}"
            arrays[key] = value
            return {"__array__": key}
        if isinstance(value, dict):
            return {str(k): encode(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [encode(v) for v in value]
        if isinstance(value, np.generic):
            return value.item()
        return value

    meta = json.dumps(encode(state))
    with atomic_open(path) as fh:
        np.savez(fh, __meta__=np.frombuffer(meta.encode(), np.uint8), **arrays)  # type: ignore[arg-type]  # numpy stubs type **kwds as allow_pickle


def load_state(path: Path) -> dict[str, Any]:
    """Inverse of `save_state`."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files if k != "__meta__"}
        meta = json.loads(bytes(data["__meta__"]).decode())

    def decode(value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) == {"__array__"}:
                return arrays[value["__array__"]]
            return {k: decode(v) for k, v in value.items()}
        if isinstance(value, list):
            return [decode(v) for v in value]
        return value

    return decode(meta)
