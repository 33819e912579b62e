"""What a job will do, worked out before any decoding: engine, sizes, frame range, chunk count.

`plan_job` is cheap (a probe and a timestamp scan), so the CLI's `--plan`, the GUI's queue and
the pipeline all call it, and every user mistake surfaces here before any output exists. The
job fingerprint (resume identity) is made from a plan, so it lives here too.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction
from pathlib import Path

from seedvr_desktop import __version__
from seedvr_desktop.engine import registry
from seedvr_desktop.engine.base import Engine, EngineCaps
from seedvr_desktop.engine.chunking import plan_chunks, valid_length
from seedvr_desktop.engine.job import RestoreJob, SizeRule
from seedvr_desktop.engine.sizing import output_size
from seedvr_desktop.errors import MediaError, UserError
from seedvr_desktop.fsutil import NAME_MAX
from seedvr_desktop.media.codecs import check_output, is_sequence_output
from seedvr_desktop.media.images import is_image_path
from seedvr_desktop.media.outputs import refuse_existing
from seedvr_desktop.media.probe import probe, scan

log = logging.getLogger(__name__)

# Seconds of video per segment. Each boundary restarts the encoder (a forced key frame and a
# drained look-ahead, which stalls a busy machine for a moment), so fast engines use long
# segments: a crash loses at most a minute or so of their work. Generative engines, at seconds
# per frame, close a segment after every couple of seconds of video.
SEGMENT_SECONDS = 30.0
SEGMENT_SECONDS_GENERATIVE = 2.0


@dataclass(frozen=True)
class JobPlan:
    """What a job will do, known before any decoding (for --plan, the GUI and the pipeline)."""

    input_path: Path
    output_path: Path
    engine: str  # resolved name (never "auto")
    caps: EngineCaps
    is_image: bool
    source_size: tuple[int, int]  # display size (after sample aspect and rotation)
    output_size: tuple[int, int]
    first_frame: int  # source frame range [first_frame, stop_frame)
    stop_frame: int
    chunk_count: int  # before scene cuts split chunks further
    frame_rate: Fraction
    sequence: bool = False  # PNG frames rather than a video file
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def frame_count(self) -> int:
        return self.stop_frame - self.first_frame


def plan_job(job: RestoreJob) -> JobPlan:
    """Probe the input, resolve the engine and sizes, and validate the output; cheap."""
    src, out = Path(job.input_path), Path(job.output_path)
    if out.exists() and src.exists() and out.resolve() == src.resolve():
        raise UserError("the output would overwrite the input; choose another output name")
    check_output_name(out)
    info = probe(src)
    if info.video is None:
        raise MediaError(f"{src.name} has no picture (audio-only files cannot be restored)")
    name = registry.resolve_name(job.engine)
    notes: tuple[str, ...] = (f"engine auto: using {name}",) if job.engine == "auto" else ()
    caps = effective_caps(registry.engine_caps(name), job.engine_options)
    video = info.video
    source_size = (video.display_width, video.display_height)
    if info.is_image or (is_image_path(src) and video.frame_count <= 1):
        _check_image_output(src, out, video.codec)
        caps = still_caps(caps)
        output_size = output_size_for(source_size, job.size, caps)
        return JobPlan(src, out, name, caps, True, source_size, output_size, 0, 1, 1,
                       Fraction(1), False, notes)
    output_size = output_size_for(source_size, job.size, caps)
    notes += _rounding_note(job.size, output_size)
    if out.suffix == "" and out.exists() and not out.is_dir() and \
            job.encode.codec.lower() != "png":
        raise UserError(f"{out} is an existing file without an extension; give a video file "
                        f"name such as {out.name}.mp4, or a folder for PNG frames")
    sequence = is_sequence_output(out, job.encode.codec)
    if sequence:
        from seedvr_desktop.engine.sinks import sequence_pattern

        sequence_pattern(out)  # a bad frame-number pattern is refused before any work
    if not sequence:
        check_output(out, job.encode)
        refuse_existing(out, job.overwrite)  # before any progress line, so it is the only one
    elif job.encode.codec.lower() != "png" and out.suffix.lower() not in ("", ".png"):
        raise UserError(f"{job.encode.codec} cannot write into a folder; give a video file name")
    times = [t * video.time_base for t in scan(src).pts]
    first, stop = trim_range(times, job.start_time, job.end_time, video.duration)
    chunks = len(plan_chunks(stop - first, caps.chunk_length, caps.overlap,
                             temporal_multiple=caps.temporal_multiple))
    return JobPlan(src, out, name, caps, False, source_size, output_size, first, stop, chunks,
                   video.frame_rate, sequence, notes)


def check_output_name(out: Path) -> None:
    """Refuse an output name the file system cannot hold, before any work is done.

    The hidden temp and work names derived from it are shortened with a hash when needed
    (fsutil.sibling_name), so the output's own name is the only one that can be too long."""
    length = len(out.name.encode("utf-8", "surrogateescape"))
    if length > NAME_MAX:
        raise UserError(f"the output name is {length} bytes long; file systems allow at most "
                        f"{NAME_MAX}: choose a shorter name")


def _rounding_note(rule: SizeRule, size: tuple[int, int]) -> tuple[str, ...]:
    """A --size the codec cannot take exactly (odd sides for 4:2:0 video) is rounded: say so."""
    if rule.size is None:
        return ()
    want_w, want_h = rule.size
    if (want_w and want_w != size[0]) or (want_h and want_h != size[1]):
        return (f"--size {want_w}x{want_h} rounded to {size[0]}x{size[1]} (the nearest size "
                "this engine and codec can write)",)
    return ()


def _option_int(options: dict[str, object], name: str) -> int | None:
    value = options.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise UserError(f"{name.replace('_', ' ')} must be a whole number, not {value!r}")
    return int(value)


def effective_caps(caps: EngineCaps, options: dict[str, object]) -> EngineCaps:
    """The engine's caps with the job's `chunk_length` / `overlap` options applied.

    Chunk geometry belongs to the pipeline (planner, blender, resume journal), so these options
    override the engine's preferences here and never reach the engine's factory. A chunk length
    is lowered to the engine's nearest valid length (k * temporal_multiple + 1, at least its
    minimum); an overlap must leave every chunk frames of its own (2 * overlap < length). When
    only the length is given, the engine's default overlap shrinks to fit it.
    """
    length = _option_int(options, "chunk_length")
    overlap = _option_int(options, "overlap")
    if length is None and overlap is None:
        return caps
    m = caps.temporal_multiple
    floor = valid_length(max(1, caps.min_chunk_length), m)
    if length is None:
        length = caps.chunk_length
    else:
        if length < 1:
            raise UserError(f"chunk length must be at least 1, not {length}")
        length = max(((length - 1) // m) * m + 1, floor)  # the largest valid length <= asked
    if overlap is None:
        overlap = min(caps.overlap, (length - 1) // 2)
    elif overlap < 0 or 2 * overlap >= length:
        raise UserError(f"an overlap of {overlap} frames does not fit chunks of {length} frames "
                        "(it must be less than half the chunk length)")
    if (length, overlap) != (caps.chunk_length, caps.overlap):
        log.info("%s: chunks of %d frames overlapping by %d (job settings)", caps.name, length,
                 overlap)
    return replace(caps, chunk_length=length, overlap=overlap)


@contextmanager
def engine_geometry(engine: Engine, caps: EngineCaps) -> Iterator[None]:
    """Let the engine see the chunk geometry it will really get while a job runs.

    Engines that plan their own memory from `caps.chunk_length` (SeedVR) then plan for the job's
    chunks, not their defaults. The engine's own caps come back afterwards, so an engine kept
    loaded between jobs (the GUI's) is not changed by one job's settings.
    """
    own = engine.__dict__.get("caps")
    if engine.caps == caps:
        yield
        return
    engine.caps = caps
    try:
        yield
    finally:
        if own is None:
            del engine.caps  # the class attribute shows again
        else:
            engine.caps = own


def output_size_for(source: tuple[int, int], rule: SizeRule, caps: EngineCaps) -> tuple[int, int]:
    """The output size for a source size under the job's rule and the engine's multiples."""
    try:
        return output_size(source[0], source[1], rule, multiple=caps.size_multiple,
                           default_scale=caps.default_scale, default_area=caps.default_area)
    except ValueError as exc:
        raise UserError(f"cannot use that output size: {exc}") from exc


# Image codecs (as the probe names them) -> the usual file extension of that format, to name a
# still whose file extension lies (a JPEG renamed .mp4).
_IMAGE_CODEC_SUFFIX = {"mjpeg": ".jpg", "jpegls": ".jpg", "png": ".png", "apng": ".png",
                       "tiff": ".tiff", "webp": ".webp", "bmp": ".bmp"}


def still_caps(caps: EngineCaps) -> EngineCaps:
    """Caps for a still image: the size multiple of 2 exists for the video encoders' 4:2:0
    chroma, which an image file does not have, so a 319x241 picture keeps its size. A larger
    multiple is the engine's own need and stays."""
    return replace(caps, size_multiple=1) if caps.size_multiple <= 2 else caps


def _check_image_output(src: Path, out: Path, codec: str = "") -> None:
    if not is_image_path(out):
        suffix = src.suffix if is_image_path(src) else _IMAGE_CODEC_SUFFIX.get(codec, ".png")
        raise UserError(f"{src.name} is a still image; give an image output name such as "
                        f"{out.with_suffix(suffix).name}")


def trim_range(times: list[Fraction], start: float | None, end: float | None,
               duration: float | None = None) -> tuple[int, int]:
    """Source frames [first, stop) shown between --start and --end (seconds from the first
    frame): the picture on screen at `start` is included, pictures starting at `end` are not.
    `duration` (seconds from the first frame to the end of the last) rejects a start past it."""
    n = len(times)
    if n == 0:
        raise MediaError("the video has no frames")
    if (start is not None and start < 0) or (end is not None and end < 0):
        raise UserError("--start and --end must not be negative")
    t0 = times[0]
    first = 0
    if start is not None:
        if duration is not None and start >= duration:
            raise UserError(f"--start {start:g} s is past the end of the video ({duration:.2f} s)")
        first = max(bisect.bisect_right(times, t0 + Fraction(start)) - 1, 0)
    stop = n
    if end is not None:
        stop = bisect.bisect_left(times, t0 + Fraction(end))
    if stop <= first:
        raise UserError("--start/--end select no frames")
    return first, stop


def job_fingerprint(job: RestoreJob, plan: JobPlan) -> str:
    """Identity of everything that shapes the output bytes; resuming needs an exact match."""
    st = plan.input_path.stat()
    filt = job.frame_filter
    data = {
        "input": [str(plan.input_path.resolve()), st.st_size, st.st_mtime_ns],
        "engine": plan.engine, "options": job.engine_options, "size": list(plan.output_size),
        "range": [plan.first_frame, plan.stop_frame], "encode": asdict(job.encode),
        "seed": job.seed, "version": __version__,
        # A filter that knows what it draws (the caption burner) gives its own fingerprint, so
        # resuming after a caption edit starts over instead of mixing old and new frames.
        "filter": None if filt is None else getattr(
            filt, "fingerprint", getattr(filt, "__qualname__", repr(type(filt)))),
    }
    blob = json.dumps(data, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:32]
