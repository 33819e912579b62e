"""`seedvr-desktop project ...` and `seedvr-desktop render`: projects from the command line.

`render` exports through exactly the jobs the GUI queues (`project.render.build_render_items`)
and the same progress/cancel/exit-code handling as `restore` (`cli_progress`), so a project made
on a laptop can be rendered headless on a GPU box.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seedvr_desktop import vocab
from seedvr_desktop.errors import UserError

if TYPE_CHECKING:
    from seedvr_desktop.project.model import Clip, Project

log = logging.getLogger(__name__)

_TIME = re.compile(r"^(?:(?:(\d+):)?(\d+):)?(\d+(?:\.\d*)?)$")


def parse_time(text: str) -> float:
    """Seconds from "12.5", "1:02.5" or "1:02:03.25" (argparse type)."""
    match = _TIME.match(text.strip().replace(",", "."))
    if not match:
        raise argparse.ArgumentTypeError(f"not a time: {text!r} (use seconds or [h:]m:s)")
    hours, minutes, seconds = match.groups()
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `project` and `render` commands to the main parser."""
    project = subparsers.add_parser("project", help="create and inspect .svrproj project files")
    commands = project.add_subparsers(dest="project_command", metavar="COMMAND", required=True)

    create = commands.add_parser("create", help="make a project with one clip per media file")
    create.add_argument("output", type=Path, metavar="OUT.svrproj")
    create.add_argument("media", type=Path, nargs="+", metavar="MEDIA")
    create.add_argument("--name", help="project name (default: the file name)")
    create.add_argument("--force", action="store_true", help="replace an existing project file")
    create.set_defaults(func=cmd_create)

    info = commands.add_parser("info", help="show a project's clips, media and settings")
    info.add_argument("file", type=Path, metavar="FILE")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(func=cmd_info)

    caption = commands.add_parser(
        "caption", help="add a caption to a clip, or import a subtitle file (.srt/.vtt/.ass)")
    caption.add_argument("file", type=Path, metavar="FILE")
    caption.add_argument("--import", dest="import_file", type=Path, metavar="SUBS",
                         help="add every caption of an .srt, .vtt, .ass or .ssa file to the clip "
                              "(instead of --start/--end/--text)")
    caption.add_argument("--clip", type=int, required=True, metavar="N",
                         help="clip number (1-based)")
    caption.add_argument("--start", type=parse_time, metavar="T",
                         help="seconds from the clip's first frame, or [h:]m:s")
    caption.add_argument("--end", type=parse_time, metavar="T")
    caption.add_argument("--text", metavar="S",
                         help="caption text (\\n for a new line)")
    caption.add_argument("--position", choices=vocab.CAPTION_POSITIONS, default="bottom")
    caption.set_defaults(func=cmd_caption)

    render = subparsers.add_parser("render", help="export a project's clips with its settings")
    render.add_argument("file", type=Path, metavar="FILE")
    render.add_argument("--clip", type=int, action="append", metavar="N",
                        help="export only clip N (1-based; may be repeated)")
    render.add_argument("--resume", action="store_true",
                        help="continue interrupted exports where they stopped")
    render.add_argument("--overwrite", action="store_true", help="replace existing output files")
    from seedvr_desktop.cluster.cli_options import add_cluster_argument

    add_cluster_argument(render)
    render.set_defaults(func=cmd_render)


def cmd_create(args: argparse.Namespace) -> int:
    from seedvr_desktop.media.probe import probe
    from seedvr_desktop.project.document import save_project
    from seedvr_desktop.project.fingerprint import compute_fingerprint
    from seedvr_desktop.project.model import Clip, MediaRef, ProbeSummary, Project

    out: Path = args.output.absolute()
    _check_project_target(out, args.media)
    if out.exists() and not args.force:
        raise UserError(f"{out} already exists (use --force to replace it)")
    if not out.parent.is_dir():
        raise UserError(f"folder {out.parent} does not exist")
    project = Project(name=args.name or out.stem)
    for path in args.media:
        path = path.absolute()
        info = probe(path)  # MediaError (a UserError) for missing or unreadable files
        if info.video is None:
            raise UserError(f"{path.name} has no video")
        video = info.video
        rate = video.frame_rate
        ref = MediaRef(
            path=path,
            probe=ProbeSummary(
                width=video.display_width,
                height=video.display_height,
                frame_rate=f"{rate.numerator}/{rate.denominator}" if rate else None,
                frame_count=video.frame_count,
                duration=info.duration,
                is_image=info.is_image,
                has_audio=bool(info.audio),
                video_codec=video.codec,
            ),
            fingerprint=compute_fingerprint(path),
        )
        project.media.append(ref)
        project.clips.append(Clip(media_id=ref.id, name=path.stem))
    save_project(project, out, backup=args.force)
    print(f"created {out} with {len(project.clips)} clip(s)")
    return 0


def _is_project_file(path: Path) -> bool:
    from seedvr_desktop.project.serialize import load_project

    try:
        load_project(path)
    except Exception:  # any failure to read it as a project: not one
        return False
    return True


def _is_media_file(path: Path) -> bool:
    from seedvr_desktop.media.probe import probe

    try:
        info = probe(path)
    except Exception:  # not readable as media: not media
        return False
    return info.video is not None or bool(info.audio)


def _check_project_target(out: Path, media: list[Path]) -> None:
    """A project is written only to a .svrproj name (or over an existing project file), never
    over a media file: `project create --force v.mp4 w.mp4` must not turn a video into JSON."""
    from seedvr_desktop.project.model import PROJECT_SUFFIX

    if any(out == m.absolute() for m in media):
        raise UserError(f"{out.name} is one of the media files; give the project a name ending "
                        f"in {PROJECT_SUFFIX}")
    if out.is_dir():
        raise UserError(f"{out} is a folder; give a project file name ending in {PROJECT_SUFFIX}")
    if out.suffix.lower() != PROJECT_SUFFIX:
        if out.exists() and _is_project_file(out):
            return  # an existing project under another name may be replaced with --force
        raise UserError(f"a project file name must end in {PROJECT_SUFFIX}, not {out.name} "
                        f"(e.g. {out.stem}{PROJECT_SUFFIX})")
    if out.exists() and not _is_project_file(out) and _is_media_file(out):
        raise UserError(f"{out} is a media file, not a project; it is never replaced")


def _info_dict(project: Any) -> dict[str, Any]:
    from seedvr_desktop.project.autosave import has_newer_autosave
    from seedvr_desktop.project.model import SCHEMA_VERSION
    from seedvr_desktop.project.serialize import project_to_dict
    from seedvr_desktop.render.project import output_folder, output_name

    saved = project_to_dict(project, project.path.parent)
    clips = []
    for number, clip in enumerate(project.clips, start=1):
        media = project.media_by_id(clip.media_id)
        first, stop = project.clip_frame_range(clip)
        fps = media.probe.fps()
        clips.append(
            {
                "number": number,
                "id": clip.id,
                "name": clip.name,
                "media": str(media.path),
                "missing": media.missing,
                "in_frame": first,
                "out_frame": stop,
                "duration": round((stop - first) / fps, 3) if stop is not None and fps else None,
                "captions": [
                    {"start": c.start, "end": c.end, "text": c.text, "position": c.position}
                    for c in clip.captions
                ],
                "prompt": clip.prompt,
                "restore_overrides": saved["clips"][number - 1]["restore"],
                "output": str(output_folder(project) / output_name(project, number, clip, media)),
            }
        )
    return {
        "name": project.name,
        "path": str(project.path),
        "schema_version": SCHEMA_VERSION,
        "newer_autosave": has_newer_autosave(project.path),
        "missing_media": [str(m.path) for m in project.missing_media()],
        "restore": saved["restore"],
        "export": saved["export"],
        "clips": clips,
    }


def cmd_info(args: argparse.Namespace) -> int:
    from seedvr_desktop.project.serialize import load_project

    project = load_project(args.file)
    data = _info_dict(project)
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return 0
    restore, export = data["restore"], data["export"]
    print(f"project  {data['name']}  ({data['path']})")
    print(f"restore  engine {restore['engine']}, seed {restore['seed']}, "
          f"colour fix {restore['color_fix']}, precision {restore['precision']}")
    print(f"export   {export['container']}/{export['codec']}, audio {export['audio']}, "
          f"captions {export['captions']}, into {export['output_folder']}")
    if data["newer_autosave"]:
        print("note     an autosave newer than this file exists (open it in the app to recover)")
    for clip in data["clips"]:
        flag = "  MISSING" if clip["missing"] else ""
        stop = clip["out_frame"] if clip["out_frame"] is not None else "end"
        span = f"frames {clip['in_frame']}-{stop}"
        length = f", {clip['duration']:.2f} s" if clip["duration"] is not None else ""
        print(f"clip {clip['number']:>3}  {clip['name'] or '-'}  [{span}{length}]  "
              f"{clip['media']}{flag}")
        for caption in clip["captions"]:
            print(f"           {caption['start']:8.2f}-{caption['end']:8.2f}  {caption['text']!r}")
        if clip["prompt"]:
            print(f"           prompt: {clip['prompt']!r}")
    if data["missing_media"]:
        print(f"{len(data['missing_media'])} media file(s) missing; relink them in the app",
              file=sys.stderr)
    return 0


def cmd_caption(args: argparse.Namespace) -> int:
    from seedvr_desktop.project.commands import AddCaption
    from seedvr_desktop.project.document import ProjectDocument
    from seedvr_desktop.project.model import Caption
    from seedvr_desktop.project.serialize import load_project

    if args.import_file is not None:
        return _import_captions(args)
    if args.start is None or args.end is None or args.text is None:
        raise UserError("give --start, --end and --text, or --import a subtitle file")
    text = args.text.replace("\\n", "\n")
    if not text.strip():
        raise UserError("the caption text is empty")
    if args.end <= args.start:
        raise UserError(f"the caption must end after it starts ({args.start:g} s to "
                        f"{args.end:g} s)")
    # Read, change and write under the project's lock: concurrent edits wait for each other
    # instead of each saving its own copy over the others'.
    with project_lock(args.file):
        document = ProjectDocument(load_project(args.file))
        project = document.project
        clip = _numbered_clip(project, args.clip)
        length = _clip_seconds(project, clip)
        if length is not None and args.start >= length:
            raise UserError(f"the caption starts at {args.start:g} s, after clip {args.clip} "
                            f"ends ({length:.2f} s)")
        document.execute(AddCaption(clip.id, Caption(args.start, args.end, text,
                                                     args.position)))
        document.save(_save_target(args.file))
    print(f"added caption to clip {args.clip}: {args.start:.2f}-{args.end:.2f} s")
    return 0


def _numbered_clip(project: Project, number: int) -> Clip:
    """Clip `number` as the CLI counts (1-based), or a one-line error."""
    if not 1 <= number <= len(project.clips):
        raise UserError(f"there is no clip {number} (the project has {len(project.clips)})")
    return project.clips[number - 1]


def _import_captions(args: argparse.Namespace) -> int:
    """`project caption FILE --clip N --import SUBS`: every caption of a subtitle file, with
    what it had to leave out or shorten reported as notes."""
    from seedvr_desktop.project.captions import import_caption_file
    from seedvr_desktop.project.commands import AddCaption
    from seedvr_desktop.project.document import ProjectDocument
    from seedvr_desktop.project.serialize import load_project

    with project_lock(args.file):
        document = ProjectDocument(load_project(args.file))
        project = document.project
        clip = _numbered_clip(project, args.clip)
        imported = import_caption_file(args.import_file, duration=_clip_seconds(project, clip))
        for problem in imported.problems:
            print(f"note: {problem}", file=sys.stderr)
        for caption in imported.captions:
            document.execute(AddCaption(clip.id, caption))
        document.save(_save_target(args.file))
    print(f"imported {len(imported.captions)} caption(s) into clip {args.clip} from "
          f"{args.import_file.name}")
    return 0


def _clip_seconds(project: Any, clip: Any) -> float | None:
    """The clip's length in seconds, or None where the probe does not say."""
    media = project.media_by_id(clip.media_id)
    first, stop = project.clip_frame_range(clip)
    fps = media.probe.fps()
    if stop is None or not fps or media.probe.is_image:
        return None
    return float((stop - first) / fps)


def _save_target(path: Path) -> Path:
    """Where saving `path` lands: a symlinked project is written through to its target, so
    the link stays a link (and the media paths stay relative to the real file)."""
    from seedvr_desktop.fsutil import resolve_target

    return resolve_target(Path(path).absolute())


PROJECT_LOCK_WAIT = 30.0  # seconds an edit waits for another edit of the same project


@contextlib.contextmanager
def project_lock(path: Path) -> Iterator[None]:
    """Hold the project's OS lock (a hidden `.NAME.lock` beside the real file, removed after)
    for one read-modify-write; another process's edit waits up to PROJECT_LOCK_WAIT."""
    from seedvr_desktop.fsutil import ExclusiveLock, LockBusy, sibling_name

    target = _save_target(path)
    lock = ExclusiveLock(sibling_name(target, "lock", unique=False), timeout=PROJECT_LOCK_WAIT)
    try:
        lock.acquire()
    except LockBusy:
        raise UserError(f"{target.name} is being changed by another program; try again when "
                        "it has finished") from None
    except OSError as exc:  # a read-only folder: the edit's own save would fail the same way
        raise UserError(f"cannot change {target}: {exc.strerror or exc}") from None
    try:
        yield
    finally:
        lock.release()


def _check_export_folder(project: Any) -> None:
    """The export folder must be (or be makeable as) a writable folder: say so in one line
    before any clip is rendered."""
    import os

    from seedvr_desktop.render.project import output_folder

    folder = Path(output_folder(project))
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise UserError(f"the export folder {folder} cannot be used: {probe} is a file")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UserError(f"the export folder {folder} cannot be used: {probe} is read-only")


def _warn_changed_media(project: Any, items: list[Any]) -> None:
    """A media file replaced by other content since it was added renders, with a warning."""
    from seedvr_desktop.project.fingerprint import matches

    seen: set[str] = set()
    for item in items:
        media = item.media
        if media.id in seen or media.fingerprint is None:
            continue
        seen.add(media.id)
        if not matches(Path(media.path), media.fingerprint):
            print(f"warning: {Path(media.path).name} has changed since it was added to the "
                  "project (different content); rendering it as it is now", file=sys.stderr)


def cmd_render(args: argparse.Namespace) -> int:
    from seedvr_desktop.cli_progress import run_job_with_progress
    from seedvr_desktop.project.serialize import load_project
    from seedvr_desktop.render.project import build_render_items

    project = load_project(args.file)
    _check_export_folder(project)
    try:
        items = build_render_items(
            project, clips=args.clip, resume=args.resume, overwrite=args.overwrite
        )
    except OSError as exc:  # the export folder could not be made or written
        raise UserError(f"cannot write the export: {exc.strerror or exc}"
                        f"{f' ({exc.filename})' if exc.filename else ''}") from None
    _warn_changed_media(project, items)
    from seedvr_desktop.cluster.cli_options import cluster_runner

    with cluster_runner(args) as run:  # plain run_restore without --cluster
        for position, item in enumerate(items, start=1):
            print(f"[{position}/{len(items)}] clip {item.number}: {item.media.path.name} -> "
                  f"{item.job.output_path}", file=sys.stderr)
            code = run_job_with_progress(item.job, run=run)
            if code != 0:
                return code
            if item.sidecar is not None:
                print(f"captions: {item.sidecar}", file=sys.stderr)
    return 0
