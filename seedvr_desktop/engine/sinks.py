"""Where restored frames go: encoded video segments, or PNG frames, under the job's journal.

Both sinks have the same life cycle, driven by the pipeline: `open(n)` a segment, `write`
frames, `close()` it (complete on disk, ready to be journaled), and finally `finalize()` the
whole output from the journaled segments. `abort()` drops only the unfinished segment.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from seedvr_desktop.errors import UserError
from seedvr_desktop.fsutil import remove_stale_temps, resolve_target
from seedvr_desktop.media.encoder import SegmentEncoder, VideoParams, image_to_array
from seedvr_desktop.media.outputs import (
    is_write_failure,
    make_output_folder,
    remove_empty_folders,
    unwritable_folder,
)

if TYPE_CHECKING:
    from seedvr_desktop.engine.journal import Journal
    from seedvr_desktop.media.mux_request import MuxRequest

log = logging.getLogger(__name__)

FRAMES_DIR = "frames"
# Tags of the temps written next to a video output: the mux (fsutil.atomic_path) and the
# subtitle track added after it (media/subtitles.py).
STALE_TAGS = ("tmp", "subs.tmp")


class OutputWriteError(UserError):
    """The output's disk refused data mid-job (full, quota, read-only). Finished segments stay
    journaled, so the job can be resumed once there is room."""


@contextlib.contextmanager
def writing(folder: Path) -> Iterator[None]:
    """Turn a disk failure inside the block into a one-line OutputWriteError naming `folder`."""
    try:
        yield
    except UserError:
        raise
    except OSError as exc:
        if not is_write_failure(exc):
            raise
        # The traceback is for the log file; the user gets the one-line error raised below.
        log.warning("writing into %s failed", folder, exc_info=True, extra={"file_only": True})
        raise OutputWriteError(str(unwritable_folder(folder, exc))) from exc


class SegmentSink:
    """Video output: one SegmentEncoder per journaled segment, muxed at the end."""

    def __init__(self, journal: Journal, params: VideoParams) -> None:
        self.journal = journal
        self.params = params
        self._encoder: SegmentEncoder | None = None

    @property
    def folder(self) -> Path:
        """The user's output folder (the work folder lives in it, on the same disk)."""
        return self.journal.folder.parent

    def open(self, number: int) -> None:
        path = self.journal.segment_path(number, self.params.spec.segment_format)
        with writing(self.folder):
            self._encoder = SegmentEncoder(path, self.params)

    def write(self, image: np.ndarray, time: Fraction) -> None:
        assert self._encoder is not None
        with writing(self.folder):
            self._encoder.write_image(image, time)

    def write_frame(self, frame: Any, time: Fraction) -> None:
        """A decoded PyAV picture, encoded without the RGB round trip (pass-through path)."""
        assert self._encoder is not None
        with writing(self.folder):
            self._encoder.write_frame(frame, time)

    def close(self) -> str:
        assert self._encoder is not None
        with writing(self.folder):
            self._encoder.close()
        name = self._encoder.path.name
        self._encoder = None
        return name

    def abort(self) -> None:
        if self._encoder is not None:
            self._encoder.abort()
            self._encoder = None

    def finalize(self, request: Callable[[list[Path]], MuxRequest]) -> list[str]:
        from seedvr_desktop.media.remux import mux_output

        req = request(self.journal.segment_files())
        # Temps of this output that a killed run left (SIGKILL while the file was written):
        # the work folder's lock says no other run writes this output, so they are stale.
        for stale in remove_stale_temps(resolve_target(req.target), STALE_TAGS):
            log.info("removed %s, left by an interrupted run", stale.name)
        with writing(req.target.parent):
            return mux_output(req)


def sequence_pattern(output: Path) -> tuple[Path, str]:
    """(folder, printf-style file name) for a PNG-sequence output path.

    `out/` or `out` (no extension) -> out/frame_%06d.png; `shot_%04d.png` is used as given;
    `shot.png` -> shot_%06d.png beside it. Numbers start at 1, as FFmpeg's image2 does.
    """
    if output.is_dir() or output.suffix == "":
        return output, "frame_%06d.png"
    if output.suffix.lower() != ".png":
        raise UserError(f"PNG frames need a folder or a .png name, not {output.name}")
    name = output.name
    numbers = re.findall(r"%0?\d*d", name)
    if not numbers and "%" not in name.replace("%%", ""):
        if "%%" in name:
            return output.parent, name[: -len(output.suffix)] + "_%06d" + output.suffix
        return output.parent, f"{output.stem}_%06d.png"
    rest = re.sub(r"%0?\d*d", "", name, count=1).replace("%%", "")
    if len(numbers) != 1 or "%" in rest:
        raise UserError(f"{name}: a frame-name pattern takes one frame number such as %06d "
                        "and no other % fields (write %% for a percent sign)")
    return output.parent, name


class PngSink:
    """PNG-sequence output: frames are written into the work folder, moved in at the end."""

    def __init__(self, journal: Journal, output: Path, bit_depth: int, overwrite: bool) -> None:
        self.journal = journal
        self.folder, self.pattern = sequence_pattern(output)
        self.bit_depth = bit_depth
        self.overwrite = overwrite
        self._staging = journal.folder / FRAMES_DIR
        self._staging.mkdir(exist_ok=True)
        self._written: list[Path] = []
        self._next = journal.last.frames_done if journal.last else 0

    def _members(self) -> dict[int, Path]:
        """Frames of this sequence already in the folder, by number (any count, any run)."""
        head, _, tail = re.split(r"(%0?\d*d)", self.pattern, maxsplit=1)
        name = re.compile(re.escape(head) + r"(\d+)" + re.escape(tail) + r"\Z")
        if not self.folder.is_dir():
            return {}
        found = {}
        for path in self.folder.iterdir():
            match = name.match(path.name)
            if match:
                found[int(match.group(1))] = path
        return found

    def first_existing(self, count: int) -> Path | None:
        """A frame of an earlier sequence in the folder (refused without overwrite).

        Any number counts, not just 1..count: a longer earlier run would otherwise leave its
        extra frames behind and an image-sequence importer would read one mixed clip.
        """
        members = self._members()
        return members[min(members)] if members else None

    def open(self, number: int) -> None:
        self._written = []

    def write(self, image: np.ndarray, time: Fraction) -> None:
        import cv2

        data = image_to_array(image, 8 if self.bit_depth <= 8 else 16)
        name = self.pattern % (self._next + 1)
        path = self._staging / name
        with writing(self.journal.folder.parent):
            if not cv2.imwrite(os.fspath(path), cv2.cvtColor(data, cv2.COLOR_RGB2BGR)):
                raise OSError(f"could not write {path.name}")
        self._written.append(path)
        self._next += 1

    def write_frame(self, frame: Any, time: Fraction) -> None:
        self.write(frame.to_ndarray(format="rgb24"), time)

    def close(self) -> str:
        self._written = []
        return ""

    def abort(self) -> None:
        for path in self._written:
            path.unlink(missing_ok=True)
        self._next -= len(self._written)
        self._written = []

    def finalize(self, request: Callable[[list[Path]], MuxRequest]) -> list[str]:
        created = make_output_folder(self.folder)
        total = self._next
        if not self.overwrite:
            existing = self.first_existing(total)
            if existing is not None:
                remove_empty_folders(created)
                raise UserError(f"{existing} already exists; use --overwrite to replace it")
        moved: list[str] = []
        try:
            for i in range(total):
                name = self.pattern % (i + 1)
                os.replace(self._staging / name, self.folder / name)
                moved.append(name)
        except OSError as exc:
            # A folder that exists but refuses files (read-only, no permission): put the frames
            # back so the journal still describes them and --resume can finish elsewhere later.
            for name in moved:
                with contextlib.suppress(OSError):
                    os.replace(self.folder / name, self._staging / name)
            remove_empty_folders(created)
            raise unwritable_folder(self.folder, exc) from exc
        # Overwriting a longer earlier sequence: its frames past the new end must go too.
        for number, path in self._members().items():
            if number > total:
                path.unlink(missing_ok=True)
        return [f"wrote {total} PNG frames as {self.folder / self.pattern}"]
