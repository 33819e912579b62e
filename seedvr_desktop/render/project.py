"""Turning a project's clips into `RestoreJob`s: the one export path of CLI and GUI alike.

`build_render_items` does all the project-specific work up front (settings merge, trim to times,
output names, captions as burn-in filter / subtitle track / sidecar) and fails early with a
ProjectError naming the clip, before any long restoration starts. Running the jobs is then the
ordinary `run_restore` (GUI queue, `render_project`) or `run_job_with_progress` (CLI).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import string
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from seedvr_desktop.engine.base import ProgressEvent
from seedvr_desktop.engine.job import PostProcess, RestoreJob, SizeRule
from seedvr_desktop.media.codecs import EncodeSettings
from seedvr_desktop.project.captions import CaptionBurner, ass_header, clip_captions, to_srt, to_vtt
from seedvr_desktop.project.model import Caption, Clip, MediaRef, Project, ProjectError

log = logging.getLogger(__name__)

_PATTERN_FIELDS = ("project", "clip", "name", "media", "ext")
_UNSAFE = re.compile(r'[\x00-\x1f<>:"/\\|?*]+')


@dataclass
class RenderItem:
    """One clip ready to export."""

    number: int  # 1-based position on the timeline (as in file names and `--clip`)
    clip: Clip
    media: MediaRef
    job: RestoreJob
    captions: list[Caption]  # clipped to the exported range
    sidecar: Path | None  # written after the video when captions == "sidecar"


def _safe(text: str) -> str:
    """A string usable inside a file name on every OS."""
    cleaned = _UNSAFE.sub("_", text).strip(" .")
    return cleaned or "clip"


def output_folder(project: Project) -> Path:
    folder = Path(os.path.expanduser(project.export.output_folder))
    if folder.is_absolute():
        return folder
    base = project.path.parent if project.path else Path.cwd()
    return base / folder


def output_name(project: Project, number: int, clip: Clip, media: MediaRef) -> str:
    """Expand the export file-name pattern for one clip; the container's extension is ensured."""
    ext = project.export.container
    values: dict[str, Any] = {
        "project": _safe(project.name),
        "clip": number,
        "name": _safe(clip.name or media.path.stem),
        "media": _safe(media.path.stem),
        "ext": ext,
    }
    pattern = project.export.file_pattern
    for _, field_name, _, _ in string.Formatter().parse(pattern):
        if field_name is not None and field_name not in _PATTERN_FIELDS:
            raise ProjectError(
                f"unknown field {{{field_name}}} in the file-name pattern; use "
                + ", ".join(f"{{{f}}}" for f in _PATTERN_FIELDS)
            )
    try:
        name = pattern.format(**values)
    except (ValueError, IndexError) as exc:
        raise ProjectError(f"bad file-name pattern {pattern!r}: {exc}") from None
    name = _UNSAFE.sub("_", name)
    if not name.lower().endswith("." + ext):
        name += "." + ext
    return name


def _frame_times(media: MediaRef) -> tuple[Fraction, list[Fraction]] | None:
    """(time of the first frame, every frame's time relative to it), exact, from the cached
    probe scan; None when the file cannot be scanned (the nominal rate is used then)."""
    try:
        from seedvr_desktop.media.probe import scan

        result = scan(media.path)
    except Exception as exc:  # any probe failure: fall back to the nominal rate below
        log.debug("no frame times for %s: %s", media.path, exc)
        return None
    video = result.info.video
    if video is None or not result.pts:
        return None
    first = result.pts[0]
    return first * video.time_base, [(p - first) * video.time_base for p in result.pts]


def _frame_step(times: list[Fraction], index: int, fps: float | None) -> Fraction:
    """Duration of frame `index` (its distance to a neighbour), for times between frames."""
    if index + 1 < len(times):
        return times[index + 1] - times[index]
    if index > 0:
        return times[index] - times[index - 1]
    return Fraction(1 / fps) if fps else Fraction(1, 25)


def _start_time(times: list[Fraction] | None, fps: float | None, frame: int) -> float:
    """A --start value (seconds from the first frame) that makes `frame` the first one exported.

    The pipeline includes the picture on screen at the start time, so a quarter of a frame
    after the frame's own time: safe against float rounding, and right for VFR sources.
    """
    if times is not None:
        return float(times[frame] + _frame_step(times, frame, fps) / 4)
    if fps:
        return (frame + 0.25) / fps
    raise ProjectError("cannot trim a clip whose frame rate is unknown")


def _end_time(times: list[Fraction] | None, fps: float | None, stop: int) -> float:
    """An --end value that stops before frame `stop`: halfway between it and its predecessor."""
    if times is not None:
        return float((times[stop - 1] + times[stop]) / 2)
    if fps:
        return (stop - 0.5) / fps
    raise ProjectError("cannot trim a clip whose frame rate is unknown")


def clip_window(
    clip: Clip, media: MediaRef, *, anchor: bool = False
) -> tuple[float | None, float | None, float | None]:
    """(start_time, end_time, duration) for a clip's job; None = open end / unknown.

    `anchor` forces a start time even for clips from frame 0, so that the output timeline
    starts at 0 on the clip's first frame (the pipeline keeps the source's own timing for
    untrimmed jobs, which may start later than 0); captions need that alignment.
    """
    fps = media.probe.fps()
    scanned = _frame_times(media)
    t0, times = scanned if scanned is not None else (Fraction(0), None)
    count = len(times) if times is not None else media.probe.frame_count
    first = clip.in_frame
    stop = clip.out_frame if clip.out_frame is not None else count
    if count is not None:
        if first >= count:
            raise ProjectError(f"clip {clip.name or clip.id} starts after the end of its media "
                               f"(frame {first} of {count})")
        stop = min(stop if stop is not None else count, count)
    start = None
    if first > 0 or (anchor and t0 != 0):
        start = _start_time(times, fps, first)
    end = None
    if stop is not None and count is not None and stop < count:
        end = _end_time(times, fps, stop)
    duration = None
    if times is not None and stop is not None:
        last_end = times[stop - 1] + _frame_step(times, stop - 1, fps)
        duration = float(last_end - times[first])
    elif fps and stop is not None:
        duration = (stop - first) / fps
    return start, end, duration


def _encode_settings(project: Project) -> EncodeSettings:
    export = project.export
    values: dict[str, Any] = {
        "codec": export.codec,
        "crf": export.crf,
        "preset": export.preset,
        "bit_depth": export.bit_depth,
        "audio": export.audio,
        "subtitles": True,
    }
    known = {f.name for f in dataclasses.fields(EncodeSettings)}
    # Fields the writer may not offer (yet): passed when it does, otherwise said out loud.
    optional = (("bitrate_kbps", export.bitrate_kbps), ("pixel_format", export.pixel_format))
    for name, value in optional:
        if value is None:
            continue
        if name in known:
            values[name] = value
        else:
            log.warning("the video writer has no %s option; using its default", name)
    return EncodeSettings(**values)


def engine_settings(project: Project, clip: Clip) -> tuple[str, SizeRule, int, dict[str, object]]:
    """(engine name, size rule, seed, engine options) a clip is restored with.

    Exports and GUI previews both use this, so a preview shows what the export will produce.
    """
    settings = project.effective_restore(clip)
    options: dict[str, object] = {
        "model": settings.model,
        "color_fix": settings.color_fix,
        "chunk_length": settings.chunk_length,
        "overlap": settings.overlap,
        "precision": settings.precision,
        "strength": settings.strength,
        "prompt": clip.prompt or None,
    }
    options = {k: v for k, v in options.items() if v is not None}
    options.update(settings.extra)
    size = SizeRule(scale=settings.scale, short_side=settings.short_side, size=settings.size)
    return settings.engine, size, settings.seed, options


_engine_options = engine_settings  # older name, used by the GUI preview


def _post_process(
    project: Project, captions: list[Caption], sidecar: Path | None
) -> PostProcess | None:
    mode = project.export.captions
    if not captions or mode in ("none", "burned"):
        return None
    export = project.export

    def finish(output: Path) -> None:
        if mode == "sidecar":
            assert sidecar is not None
            text = to_vtt(captions) if export.sidecar_format == "vtt" else to_srt(captions)
            from seedvr_desktop.fsutil import atomic_write_bytes

            atomic_write_bytes(sidecar, text.encode("utf-8"))
            return
        from seedvr_desktop.media.probe import probe
        from seedvr_desktop.media.subtitles import SubtitleCue, mux_subtitles

        video = probe(output).video
        width, height = (video.width, video.height) if video else (640, 480)
        mux_subtitles(
            output,
            [SubtitleCue(c.start, c.end, c.text, c.position) for c in captions],
            codec=export.soft_format,
            language="und",
            title="Captions",
            ass_header=ass_header(width, height),
        )

    return finish


def build_render_items(
    project: Project,
    *,
    clips: Sequence[int] | None = None,
    resume: bool = False,
    overwrite: bool = False,
) -> list[RenderItem]:
    """One RenderItem per selected clip (1-based numbers; None = all), checked up front."""
    if not project.clips:
        raise ProjectError("the project has no clips to render")
    numbers = list(clips) if clips else list(range(1, len(project.clips) + 1))
    for number in numbers:
        if not 1 <= number <= len(project.clips):
            raise ProjectError(f"there is no clip {number} (the project has {len(project.clips)})")
    folder = output_folder(project)
    encode = _encode_settings(project)
    from seedvr_desktop.media.codecs import check_output

    # Codec/container mismatches (FFV1 in MP4...) fail now, not after the first clip rendered.
    check_output(folder / f"check.{project.export.container}", encode)
    items: list[RenderItem] = []
    seen: dict[Path, int] = {}
    for number in numbers:
        clip = project.clips[number - 1]
        media = project.media_by_id(clip.media_id)
        label = f"clip {number} ({clip.name or media.path.name})"
        if media.missing or not media.path.is_file():
            raise ProjectError(f"{label}: media file {media.path} is missing; relink it first")
        output = folder / output_name(project, number, clip, media)
        if output in seen:
            raise ProjectError(
                f"clips {seen[output]} and {number} would both be written to {output.name}; "
                "put {clip} or {name} in the file-name pattern"
            )
        seen[output] = number
        mode = project.export.captions
        anchor = mode != "none" and bool(clip.captions)
        start, end, duration = clip_window(clip, media, anchor=anchor)
        captions = clip_captions(clip.captions, duration)
        sidecar = None
        if mode == "sidecar" and captions:
            sidecar = output.with_suffix("." + project.export.sidecar_format)
        engine, size, seed, options = engine_settings(project, clip)
        job = RestoreJob(
            input_path=media.path,
            output_path=output,
            engine=engine,
            size=size,
            start_time=start,
            end_time=end,
            encode=encode,
            resume=resume,
            overwrite=overwrite,
            seed=seed,
            engine_options=options,
            frame_filter=CaptionBurner(captions) if mode == "burned" and captions else None,
            post_process=_post_process(project, captions, sidecar),
        )
        items.append(RenderItem(number, clip, media, job, captions, sidecar))
    folder.mkdir(parents=True, exist_ok=True)
    return items


def render_project(
    project: Project,
    *,
    clips: Sequence[int] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    cancel: threading.Event | None = None,
    on_event: Callable[[RenderItem, ProgressEvent], None] | None = None,
    run: Callable[[RestoreJob, threading.Event | None], Iterator[ProgressEvent]] | None = None,
) -> list[Path]:
    """Export the clips one after another (no progress UI); returns the files written.

    `run`: what restores a job (default `run_restore`; a cluster's runner, see
    `cluster.cli_options.cluster_runner`, gives the same events and files)."""
    from seedvr_desktop.engine.pipeline import run_restore

    restore = run or run_restore
    written = []
    for item in build_render_items(project, clips=clips, resume=resume, overwrite=overwrite):
        cancelled = False
        for event in restore(item.job, cancel):
            if on_event is not None:
                on_event(item, event)
            cancelled = cancelled or event.stage == "cancelled"
        if cancelled:
            break
        written.append(item.job.output_path)
    return written

