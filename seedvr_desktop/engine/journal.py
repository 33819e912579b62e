"""The resume journal: finished segments of an unfinished job, kept next to the output.

Layout of the hidden work folder `.<output name>.seedvr-work/` beside the output:
    journal.json        what is finished: segment files, the chunk to continue from, counters
    seg_00000.mov ...   encoded video segments (complete files only; see SegmentEncoder)
    tail_00003.npz      the blender's pending overlap frames after segment 3 (+ JSON fields)

The journal names a segment only after its file is complete and the blender tail is saved, and
is itself replaced atomically, so a crash at any moment leaves a consistent journal. A job
fingerprint (input file identity + every setting that changes the output bytes) guards against
resuming with different settings.

`segments` is the finished prefix of the job, in order. Workers of a cluster run finish
segments out of order: one finished past the first unfinished segment is kept durably in
`ahead` (by segment number, its own damaged-frame count) until the segments before it are
done, then moved into `segments` (`promote`). A resumed cluster run restores only what is in
neither; a local run re-encodes an `ahead` segment when it gets there (the new one replaces
it).

A run holds an OS lock on `lock` in the work folder from `Journal.open` until the journal is
removed or closed: a second run writing the same output is refused before it touches anything,
so two runs never delete each other's work. On resume every listed segment is checked (it
opens and holds the frames the journal says); a damaged or missing one, and everything after
it, is dropped and the job continues from the last good segment whose blender tail is there.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import weakref
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from seedvr_desktop.errors import UserError
from seedvr_desktop.fsutil import (
    ExclusiveLock,
    LockBusy,
    atomic_open,
    atomic_write_text,
    fsync_path,
    sibling_name,
)
from seedvr_desktop.media.outputs import make_output_folder, remove_empty_folders, unwritable_folder

log = logging.getLogger(__name__)

JOURNAL_VERSION = 1
JOURNAL_FILE = "journal.json"
WORK_SUFFIX = ".seedvr-work"
LOCK_FILE = "lock"
# Tails kept: the last segment's and the one before, so a damaged last segment can be dropped
# and the job resumed from the segment before it.
_TAILS_KEPT = 2


def work_dir_for(output: Path) -> Path:
    """The hidden work folder for an output path (file or PNG-sequence folder): `.NAME.seedvr-
    work`, shortened with a hash when NAME is so long that the folder's name would not fit."""
    return sibling_name(Path(output), WORK_SUFFIX[1:], unique=False)


class OutputBusy(UserError):
    """Another run is writing the same output right now."""


# Work-folder locks this process holds, by folder. An OS lock conflicts with its own process
# too, and a run that failed or was cancelled keeps its journal (and lock) until the run's
# generator is dropped, which a caller holding the exception can delay; a new run of the same
# output in this process takes the lock over instead (the old run is over: runs of one process
# go one after another). Weak values: a journal that is gone has let go of its lock.
_HELD: weakref.WeakValueDictionary[str, Journal] = weakref.WeakValueDictionary()


@dataclass
class SegmentRecord:
    """One finished segment and the job state right after it."""

    file: str  # file name in the work folder ("" for PNG batches, written as frames/)
    frames: int  # output frames in this segment
    next_chunk: int  # index of the first chunk not yet (fully) written
    frames_done: int  # output frames written up to and including this segment
    damaged: int  # damaged source frames counted so far
    tail: str | None = None  # blender state file, if the blender holds frames

    @property
    def frames_start(self) -> int:
        """Output frames written before this segment."""
        return self.frames_done - self.frames


@dataclass
class Journal:
    """The journal of one job; use `Journal.open` to start or resume."""

    folder: Path
    fingerprint: str
    segments: list[SegmentRecord] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. the detected scene cuts
    # Segments finished ahead of the prefix, by number; `damaged` counts their own frames only.
    ahead: dict[int, SegmentRecord] = field(default_factory=dict)
    lock: ExclusiveLock | None = field(default=None, repr=False, compare=False)
    closed: bool = field(default=False, repr=False, compare=False)

    @classmethod
    def open(cls, output: Path, fingerprint: str, *, resume: bool) -> tuple[Journal, str]:
        """Start a fresh journal, or resume a matching one; returns it with a one-line note.

        Holds the work folder's lock from here on (released by `remove` or `close`); another
        run writing the same output is an OutputBusy error, and nothing of its is touched."""
        folder = work_dir_for(output)
        # The output folder is the user's choice: a read-only card or a file in the way is a
        # UserError naming it, and nothing made here is left behind.
        created = make_output_folder(folder.parent)
        made_folder = not folder.exists()
        try:
            folder.mkdir(exist_ok=True)
        except OSError as exc:
            remove_empty_folders(created)
            raise unwritable_folder(folder.parent, exc) from exc
        lock = _take_over(folder) or ExclusiveLock(folder / LOCK_FILE)
        try:
            if not lock.held:
                lock.acquire()
        except LockBusy:
            raise OutputBusy(f"{output} is being written by another run right now (its work "
                             f"folder {folder.name} is in use); wait for it to finish or "
                             "stop it first") from None
        except OSError as exc:
            if made_folder:
                shutil.rmtree(folder, ignore_errors=True)
            remove_empty_folders(created)
            raise unwritable_folder(folder.parent, exc) from exc
        try:
            journal, note = cls._open_locked(folder, fingerprint, resume, lock, created)
        except BaseException:
            lock.release(remove=False)
            raise
        _HELD[os.fspath(folder.absolute())] = journal
        return journal, note

    @classmethod
    def _open_locked(cls, folder: Path, fingerprint: str, resume: bool, lock: ExclusiveLock,
                     created: list[Path]) -> tuple[Journal, str]:
        if resume:
            found = cls._load(folder)
            if found is not None and found.fingerprint == fingerprint and \
                    (found.segments or found.ahead):
                had_prefix = bool(found.segments)
                damaged = found._keep_good()
                if found.segments or found.ahead:
                    found.lock = lock
                    found._drop_strays()
                    if damaged:
                        found._save()
                    done = found.segments[-1].frames_done if found.segments else 0
                    more = (f" and {len(found.ahead)} segment(s) finished further on"
                            if found.ahead else "")
                    if damaged:
                        return found, (f"{damaged}; resuming after {done} finished frames"
                                       f"{more} (the last good part)")
                    return found, f"resuming after {done} finished frames{more}"
                if had_prefix:
                    raise UserError(f"{damaged}, and no earlier part is usable; start again "
                                    "without --resume")
            note = ("the unfinished job was made with other settings; starting over"
                    if found is not None and found.fingerprint != fingerprint
                    else "nothing to resume; starting from the beginning")
        else:
            note = ""
            if any(p.name != LOCK_FILE for p in folder.iterdir()):
                log.info("discarding the previous unfinished job in %s", folder)
        journal = cls(folder, fingerprint, lock=lock)
        try:
            journal._clear()
            journal._save()
        except OSError as exc:
            # Making folders can succeed where writing into one fails (read-only mount
            # point, no permission, quota, full disk).
            journal.remove()
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
        """Record a finished segment (its file must already be complete, it is fsynced here)."""
        number = len(self.segments)
        self._store(number, record, tail_state)
        # A segment recorded ahead under this number is replaced by this one (same file and
        # tail names, rewritten): a local run resuming a cluster run's journal.
        self.ahead.pop(number, None)
        self._append(record)

    def record_ahead(self, number: int, record: SegmentRecord,
                     tail_state: dict[str, Any] | None) -> None:
        """Record segment `number`, finished while an earlier one is not (a cluster worker
        was faster); `record.damaged` counts its own damaged frames. Durable like `commit`."""
        if number < len(self.segments):
            raise ValueError(f"segment {number} is already among the {len(self.segments)} "
                             "finished ones")
        self._store(number, record, tail_state)
        if record.file:
            fsync_path(self.folder)  # a worker may have renamed it into place
        self.ahead[number] = record
        self._save()

    def promote(self, damaged_before: int) -> SegmentRecord:
        """Move the segment recorded ahead that comes next into the finished prefix, with the
        damaged frames counted before it; returns its record."""
        record = self.ahead.pop(len(self.segments))
        record.damaged += damaged_before
        self._append(record)
        return record

    def _store(self, number: int, record: SegmentRecord,
               tail_state: dict[str, Any] | None) -> None:
        if record.file:
            fsync_path(self.folder / record.file)  # durable before the journal names it
        if tail_state is not None:
            name = f"tail_{number:05d}.npz"
            save_state(self.folder / name, tail_state)
            record.tail = name

    def _append(self, record: SegmentRecord) -> None:
        self.segments.append(record)
        self._save()
        # Keep the tails of the last two segments: if the last one is found damaged on
        # resume, the job continues from the one before it.
        keep = {s.tail for s in self.segments[-_TAILS_KEPT:] if s.tail}
        keep |= {s.tail for s in self.ahead.values() if s.tail}
        for old in self.segments[:-_TAILS_KEPT]:
            if old.tail and old.tail not in keep:
                (self.folder / old.tail).unlink(missing_ok=True)

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
        """Delete the work folder (job finished, or nothing worth resuming) and let go of it."""
        if self.closed:
            return  # let go of already: the folder may be another run's by now
        shutil.rmtree(self.folder, ignore_errors=True)
        self.close()

    def close(self) -> None:
        """Let go of the work folder's lock, keeping its files (a cancelled job's journal)."""
        if self.lock is not None:
            self.lock.release(remove=not self.folder.exists())
            self.lock = None
            self.closed = True
            key = os.fspath(self.folder.absolute())
            if _HELD.get(key) is self:
                del _HELD[key]

    def __del__(self) -> None:  # the lock is an OS lock: a dropped journal must not hold it
        with contextlib.suppress(Exception):
            self.close()

    def _clear(self) -> None:
        """Empty the work folder for a fresh start (the lock file stays: it is held)."""
        for path in self.folder.iterdir():
            if path.name == LOCK_FILE:
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)

    def _keep_good(self) -> str:
        """Drop segments from the first damaged one on, and back to one whose blender tail is
        present; returns what was wrong ("" when all is well)."""
        problem = ""
        for i, record in enumerate(self.segments):
            why = _segment_problem(self.folder, record)
            if why:
                problem = why
                del self.segments[i:]
                break
        while self.segments and self.segments[-1].tail and \
                not _state_loads(self.folder / str(self.segments[-1].tail)):
            problem = problem or f"the saved state {self.segments[-1].tail} is missing or damaged"
            self.segments.pop()
        for number, record in sorted(self.ahead.items()):
            why = "" if number >= len(self.segments) else "superseded"
            why = why or _segment_problem(self.folder, record)
            if not why and record.tail and not _state_loads(self.folder / record.tail):
                why = f"the saved state {record.tail} is missing or damaged"
            if why:
                # Not a problem for the job: that segment is simply restored again.
                log.info("resume: segment %d is restored again (%s)", number, why)
                del self.ahead[number]
        if problem:
            log.warning("resume: %s in %s", problem, self.folder)
        return problem

    # ---------------------------------------------------------------- files

    def _save(self) -> None:
        data = {"version": JOURNAL_VERSION, "fingerprint": self.fingerprint,
                "segments": [asdict(s) for s in self.segments], "extra": self.extra,
                "ahead": [{"number": n, **asdict(s)} for n, s in sorted(self.ahead.items())]}
        atomic_write_text(self.folder / JOURNAL_FILE, json.dumps(data, indent=1))

    @classmethod
    def _load(cls, folder: Path) -> Journal | None:
        try:
            data = json.loads((folder / JOURNAL_FILE).read_text(encoding="utf-8"))
            if data.get("version") != JOURNAL_VERSION:
                return None
            segments = [SegmentRecord(**s) for s in data["segments"]]
            ahead = {}
            for item in data.get("ahead", []):  # absent in journals of older versions
                fields = dict(item)
                number = int(fields.pop("number"))
                ahead[number] = SegmentRecord(**fields)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.info("no usable journal in %s: %s", folder, exc)
            return None
        return cls(folder, str(data["fingerprint"]), segments, dict(data.get("extra", {})),
                   ahead)

    def _drop_strays(self) -> None:
        """Remove files a crash left behind that the journal does not list."""
        keep = {JOURNAL_FILE, LOCK_FILE, "frames"} | {s.file for s in self.segments}
        keep |= {s.tail for s in self.segments[-_TAILS_KEPT:] if s.tail}
        keep |= {s.file for s in self.ahead.values()} | {
            s.tail for s in self.ahead.values() if s.tail}
        for path in self.folder.iterdir():
            if path.name not in keep:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)


def _take_over(folder: Path) -> ExclusiveLock | None:
    """The lock of an earlier run of this process on `folder`, taken from its journal."""
    holder = _HELD.pop(os.fspath(folder.absolute()), None)
    if holder is None or holder.lock is None or not holder.lock.held:
        return None
    lock, holder.lock = holder.lock, None
    holder.closed = True  # its remove() must not delete what is now the new run's
    return lock


def _segment_problem(folder: Path, record: SegmentRecord) -> str:
    """Why a journaled segment cannot be used ("" if it can): missing, unreadable, or holding
    fewer pictures than the journal says (a file cut short by a crash or a full disk)."""
    if not record.file:
        return ""  # PNG batches: the frames live in frames/ and are checked as they move
    path = folder / record.file
    if not path.is_file():
        return f"segment {record.file} is missing"
    import av

    try:
        with av.open(os.fspath(path)) as container:
            if not container.streams.video:
                return f"segment {record.file} holds no video"
            stream = container.streams.video[0]
            count = sum(1 for packet in container.demux(stream) if packet.size)
    except (av.FFmpegError, OSError, ValueError, IndexError) as exc:
        return f"segment {record.file} is damaged ({str(exc).splitlines()[0] if str(exc) else exc})"
    if count != record.frames:
        return f"segment {record.file} is damaged ({count} of {record.frames} pictures)"
    return ""


def _state_loads(path: Path) -> bool:
    try:
        load_state(path)
    except Exception:  # missing, truncated zip, bad JSON: any of them means unusable
        return False
    return True


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
