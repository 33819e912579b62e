"""The in-memory project: plain dataclasses with no Qt, no torch and no file I/O.

A project is what a person builds over days of work on a box of tapes: which files, which parts of
them, what captions, which settings. Everything here is deliberately dumb data so that the
serializer, the undo commands, the renderer and the GUI can all share it without knowing of each
other. Paths are kept absolute in memory; only the serializer makes them relative to the file.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seedvr_desktop.errors import UserError
from seedvr_desktop.vocab import (
    AUDIO_MODES,
    BIT_DEPTHS,
    CAPTION_MODES,
    CAPTION_POSITIONS,
    COLOR_FIXES,
    CONTAINERS,
    DEFAULT_COLOR_FIX,
    PRECISIONS,
    SIDECAR_FORMATS,
    SOFT_SUBTITLE_FORMATS,
    VIDEO_CODECS,
)

log = logging.getLogger(__name__)

FORMAT_NAME = "seedvr-desktop-project"
SCHEMA_VERSION = 2
PROJECT_SUFFIX = ".svrproj"

COLOR_FIX_MODES = COLOR_FIXES  # the project file's name for them
SIZE_RULE_FIELDS = ("scale", "short_side", "size")


class ProjectError(UserError):
    """A project file that cannot be read or written, or an edit that makes no sense."""


def new_id() -> str:
    """Short random identifier for media and clips; ids survive reordering, indices do not."""
    return uuid.uuid4().hex[:12]


@dataclass(frozen=True)
class Fingerprint:
    """Identity of a media file's content, used to find it again after it was moved or renamed.

    Size plus a hash of the first and last MiB: cheap on multi-gigabyte DV captures, and two
    different home movies of the same size practically never share both ends.
    """

    size: int
    digest: str  # hex sha256 of (size, first MiB, last MiB)


@dataclass(frozen=True)
class ProbeSummary:
    """The facts about a media file the project needs without opening it again (timeline, UI)."""

    width: int | None = None  # display size
    height: int | None = None
    frame_rate: str | None = None  # exact rational "num/den", e.g. "30000/1001"
    frame_count: int | None = None
    duration: float | None = None  # seconds
    is_image: bool = False
    has_audio: bool = False
    video_codec: str | None = None

    def fps(self) -> float | None:
        """Frame rate as a float, or None when unknown (images, broken headers)."""
        if not self.frame_rate:
            return None
        num, _, den = self.frame_rate.partition("/")
        try:
            value = float(num) / float(den or 1)
        except (ValueError, ZeroDivisionError):
            return None
        return value if value > 0 and math.isfinite(value) else None


@dataclass
class MediaRef:
    """One source file of the project; clips refer to it by id."""

    path: Path  # absolute in memory
    id: str = field(default_factory=new_id)
    probe: ProbeSummary = field(default_factory=ProbeSummary)
    fingerprint: Fingerprint | None = None
    # Runtime only (never saved): set on load when the file is not where the project says.
    missing: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class Caption:
    """A caption shown from `start` to `end`, seconds relative to the clip's first frame.

    Clip-relative times keep captions attached to the picture when the clip is trimmed from the
    end, and match the exported file's own timeline, which starts at the in-point.
    """

    start: float
    end: float
    text: str
    position: str = "bottom"  # bottom | top | middle
    size: float = 0.06  # text height as a fraction of the frame height
    color: str = "#ffffff"  # fill colour, #rrggbb
    outline: bool = True

    def validate(self) -> None:
        if not (math.isfinite(self.start) and math.isfinite(self.end)):
            raise ProjectError("caption times must be finite numbers")
        if self.start < 0 or self.end <= self.start:
            raise ProjectError(
                f"caption must end after it starts (start {self.start:g} s, end {self.end:g} s)"
            )
        if self.position not in CAPTION_POSITIONS:
            raise ProjectError(f"caption position must be one of {', '.join(CAPTION_POSITIONS)}")
        if not (0.01 <= self.size <= 0.5):
            raise ProjectError("caption size must be between 0.01 and 0.5 of the frame height")
        if not _is_hex_color(self.color):
            raise ProjectError(f"caption colour must look like #rrggbb, not {self.color!r}")

    @property
    def has_text(self) -> bool:
        return bool(self.text.strip())

    def validate_edit(self) -> None:
        """`validate` plus the rule for a caption a person adds or changes now: it shows some
        text. (Files saved before the rule may hold empty ones: they are dropped with a
        warning, see `Clip.drop_empty_captions`, rather than the whole project refused.)"""
        self.validate()
        if not self.has_text:
            raise ProjectError(f"the caption at {self.start:g}-{self.end:g} s has no text; "
                               "type some, or remove the caption")


def _is_hex_color(value: str) -> bool:
    if len(value) != 7 or value[0] != "#":
        return False
    try:
        int(value[1:], 16)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class RestoreSettings:
    """How a clip is restored. The project holds defaults; a clip may override single fields."""

    engine: str = "auto"  # registry name: auto | none | classic | seedvr2-3b | ...
    model: str | None = None  # model variant/checkpoint name when the engine offers several
    # Output size rule (at most one set; none set = the engine's native scale).
    scale: float | None = None
    short_side: int | None = None
    size: tuple[int, int] | None = None  # (width, height)
    color_fix: str = DEFAULT_COLOR_FIX  # one of vocab.COLOR_FIXES
    seed: int = 666
    chunk_length: int | None = None  # None: the engine's preferred length
    overlap: int | None = None
    precision: str = "auto"  # auto | bf16 | fp16 | fp32
    strength: float | None = None  # engine-specific restoration strength (denoise amount etc.)
    # Further engine options by name (numbers, strings, booleans), passed through untouched.
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        set_rules = [r for r in (self.scale, self.short_side, self.size) if r is not None]
        if len(set_rules) > 1:
            raise ProjectError("set only one of scale, short_side and size")
        if self.scale is not None and not (0 < self.scale <= 16 and math.isfinite(self.scale)):
            raise ProjectError(f"scale must be between 0 and 16, not {self.scale}")
        if self.short_side is not None and not (16 <= self.short_side <= 8192):
            raise ProjectError(f"short_side must be between 16 and 8192, not {self.short_side}")
        if self.size is not None and not all(16 <= v <= 16384 for v in self.size):
            raise ProjectError(f"size must be two sides between 16 and 16384, not {self.size}")
        if self.color_fix not in COLOR_FIX_MODES:
            raise ProjectError(f"color_fix must be one of {', '.join(COLOR_FIX_MODES)}")
        if self.precision not in PRECISIONS:
            raise ProjectError(f"precision must be one of {', '.join(PRECISIONS)}")
        if self.chunk_length is not None and self.chunk_length < 1:
            raise ProjectError("chunk_length must be at least 1")
        if self.overlap is not None and self.overlap < 0:
            raise ProjectError("overlap must not be negative")
        if self.strength is not None and not math.isfinite(self.strength):
            raise ProjectError("strength must be a finite number")

    def with_overrides(self, overrides: dict[str, Any]) -> RestoreSettings:
        """These settings with a clip's overridden fields applied (unknown names are an error)."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise ProjectError(f"unknown restore setting(s): {', '.join(unknown)}")
        values = dict(overrides)
        if any(rule in values for rule in SIZE_RULE_FIELDS):
            # The size rule is one choice: a clip that sets `size` drops the default `scale`.
            for rule in SIZE_RULE_FIELDS:
                values.setdefault(rule, None)
        merged = dataclasses.replace(self, **values)
        merged.validate()
        return merged


@dataclass(frozen=True)
class ExportSettings:
    """How finished clips are written: container, encoder, audio, captions and file names."""

    container: str = "mp4"  # mp4 | mkv | mov
    codec: str = "h264"  # h264 | h265 | prores | ffv1 | png
    crf: int | None = None  # None: the codec's sensible default
    bitrate_kbps: int | None = None  # target bitrate instead of CRF (when the writer supports it)
    preset: str | None = None
    pixel_format: str | None = None  # None: derived from codec and bit depth
    bit_depth: int = 8  # 8 | 10 | 16
    audio: str = "copy"  # copy | transcode | none
    captions: str = "soft"  # none | soft | burned | sidecar
    sidecar_format: str = "srt"  # srt | vtt (for captions == "sidecar")
    soft_format: str = "auto"  # auto | srt | ass; MP4/MOV always use mov_text
    output_folder: str = "exports"  # relative to the project file's folder, or absolute
    file_pattern: str = "{project}-{clip:02d}-{name}.{ext}"

    def validate(self) -> None:
        for name, allowed in (
            ("container", CONTAINERS),
            ("codec", VIDEO_CODECS),
            ("audio", AUDIO_MODES),
            ("captions", CAPTION_MODES),
            ("sidecar_format", SIDECAR_FORMATS),
            ("soft_format", SOFT_SUBTITLE_FORMATS),
        ):
            if getattr(self, name) not in allowed:
                raise ProjectError(f"{name} must be one of {', '.join(allowed)}")
        if self.bit_depth not in BIT_DEPTHS:
            raise ProjectError("bit_depth must be 8, 10 or 16")
        if self.crf is not None and not (0 <= self.crf <= 63):
            raise ProjectError("crf must be between 0 and 63")
        if self.bitrate_kbps is not None and self.bitrate_kbps <= 0:
            raise ProjectError("bitrate_kbps must be positive")
        if not self.file_pattern.strip():
            raise ProjectError("file_pattern must not be empty")


@dataclass
class Clip:
    """A frame range of one media file with its own captions, prompt and setting overrides.

    `prompt` is kept for the generative engines. The official SeedVR releases ship precomputed
    text embeddings for their default prompt but not the text encoder, so the engine uses the
    default embeddings unless an embedding file for this exact prompt is available, and says so
    in its log; the text is still saved so nothing is lost when such a file appears later.
    """

    media_id: str
    id: str = field(default_factory=new_id)
    name: str = ""
    in_frame: int = 0
    out_frame: int | None = None  # exclusive; None = to the end of the media
    restore: dict[str, Any] = field(default_factory=dict)  # overrides of the project defaults
    captions: list[Caption] = field(default_factory=list)
    prompt: str = ""

    def drop_empty_captions(self) -> list[Caption]:
        """Remove the captions that show no text, each named in a warning; returns them.

        For projects saved before `Caption.validate_edit` refused such captions: loading one
        should drop them this way rather than keep them (they draw nothing) or refuse the
        file. (Kept out of `validate`, which must never change a project.)"""
        empty = [c for c in self.captions if not c.has_text]
        for caption in empty:
            log.warning("clip %s: the caption at %g-%g s has no text and is left out",
                        self.name or self.id, caption.start, caption.end)
        if empty:
            self.captions = [c for c in self.captions if c.has_text]
        return empty

    def validate(self, frame_count: int | None = None) -> None:
        if self.in_frame < 0:
            raise ProjectError(f"clip {self.name or self.id}: in frame must not be negative")
        if self.out_frame is not None and self.out_frame <= self.in_frame:
            raise ProjectError(
                f"clip {self.name or self.id}: out frame {self.out_frame} must be after "
                f"in frame {self.in_frame}"
            )
        if frame_count is not None and self.out_frame is not None and self.out_frame > frame_count:
            raise ProjectError(
                f"clip {self.name or self.id}: out frame {self.out_frame} is past the end "
                f"({frame_count} frames)"
            )
        for caption in self.captions:
            caption.validate()


@dataclass
class Project:
    """Everything one `.svrproj` file holds, plus where it was loaded from (runtime only)."""

    name: str = "Untitled"
    media: list[MediaRef] = field(default_factory=list)
    clips: list[Clip] = field(default_factory=list)  # timeline order
    restore: RestoreSettings = field(default_factory=RestoreSettings)
    export: ExportSettings = field(default_factory=ExportSettings)
    path: Path | None = field(default=None, compare=False)  # the .svrproj file, once saved

    def media_by_id(self, media_id: str) -> MediaRef:
        for ref in self.media:
            if ref.id == media_id:
                return ref
        raise ProjectError(f"the project refers to unknown media {media_id!r}")

    def clip_by_id(self, clip_id: str) -> Clip:
        for clip in self.clips:
            if clip.id == clip_id:
                return clip
        raise ProjectError(f"no clip with id {clip_id!r}")

    def clip_index(self, clip_id: str) -> int:
        for index, clip in enumerate(self.clips):
            if clip.id == clip_id:
                return index
        raise ProjectError(f"no clip with id {clip_id!r}")

    def effective_restore(self, clip: Clip) -> RestoreSettings:
        """The settings a clip is rendered with: project defaults plus the clip's overrides."""
        return self.restore.with_overrides(clip.restore)

    def missing_media(self) -> list[MediaRef]:
        return [ref for ref in self.media if ref.missing]

    def clip_frame_range(self, clip: Clip) -> tuple[int, int | None]:
        """(first, stop) frames of the clip; stop falls back to the probed count, else None."""
        stop = clip.out_frame
        if stop is None:
            stop = self.media_by_id(clip.media_id).probe.frame_count
        return clip.in_frame, stop

    def validate(self, *, check_ranges: bool = False) -> None:
        """Check cross references and every value; raises ProjectError naming the problem.

        `check_ranges` also checks out-frames against the probed frame counts; loading skips it
        because a stale probe must never make a project unopenable.
        """
        ids = [ref.id for ref in self.media]
        if len(ids) != len(set(ids)):
            raise ProjectError("two media entries share one id")
        clip_ids = [clip.id for clip in self.clips]
        if len(clip_ids) != len(set(clip_ids)):
            raise ProjectError("two clips share one id")
        self.restore.validate()
        self.export.validate()
        for clip in self.clips:
            ref = self.media_by_id(clip.media_id)
            clip.validate(ref.probe.frame_count if check_ranges else None)
            self.effective_restore(clip)
