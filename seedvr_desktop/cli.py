"""The `seedvr-desktop` command: GUI without arguments, `restore`, `probe`, `demo` and more.

Importing this module is cheap on purpose (argparse and the standard library only): the GUI is
started through it, and torch or PyAV load only inside the command that needs them.

Exit status: 0 success, 1 a user error (one line, no traceback), 2 an internal error (short
message plus the log file's path; the traceback is in the log), 130 cancelled with Ctrl-C, 143
stopped by SIGTERM (after the same clean-up as Ctrl-C).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import math
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from seedvr_desktop import __version__, vocab
from seedvr_desktop.cli_args import non_negative_int, positive_float, positive_int
from seedvr_desktop.errors import Terminated, UserError

if TYPE_CHECKING:
    from seedvr_desktop.engine.job import RestoreJob
    from seedvr_desktop.engine.plan import JobPlan

log = logging.getLogger(__name__)

# Modules that add their own subcommands through `register(subparsers)`.
COMMAND_MODULES = ("seedvr_desktop.cli_project", "seedvr_desktop.cli_models",
                   "seedvr_desktop.cli_train")
# Words that are commands even if a file of that name exists in the current folder.
_COMMAND_WORDS = frozenset({"restore", "probe", "demo", "project", "render", "models",
                            "train"})
# Where several inputs go into one folder: the container each codec prefers.
_DEFAULT_EXTENSION = {"h264": ".mp4", "h265": ".mp4", "prores": ".mov", "ffv1": ".mkv"}


class _Parser(argparse.ArgumentParser):
    """argparse exits with 2 on bad usage and prints the whole usage; here 2 means an internal
    error, so bad usage is a one-line user error (exit 1) pointing at --help."""

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{message} (see `{self.prog} --help`)")


def parse_time(text: str) -> float:
    """Seconds from "12.5", "1:02.5" or "1:00:02"."""
    try:
        parts = [float(p) for p in text.strip().split(":")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time: {text!r}") from None
    # float() also reads "nan", "inf" and "1e400": none of them is a time on a clip.
    if not 1 <= len(parts) <= 3 or any(not math.isfinite(p) or p < 0 for p in parts):
        raise argparse.ArgumentTypeError(f"not a time: {text!r}")
    seconds = 0.0
    for p in parts:
        seconds = seconds * 60 + p
    return seconds


def parse_size(text: str) -> tuple[int, int]:
    """(width, height) from "1920x1080"; one side may be 0 to keep the aspect ratio."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 1920x1080, not {text!r}") from None
    if w < 0 or h < 0 or w == h == 0:
        raise argparse.ArgumentTypeError(f"not a usable size: {text}")
    return w, h


def build_parser(with_modules: bool = True) -> argparse.ArgumentParser:
    parser = _Parser(prog="seedvr-desktop",
                     description="Restore home movies locally. Without a command: the GUI.")
    parser.add_argument("--version", action="version", version=f"seedvr-desktop {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="more messages on stderr")
    parser.add_argument("--self-test", action="store_true",
                        help="check that this installation can show its window and restore a "
                        "preview (no display needed), then exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _add_restore(sub)
    _add_probe(sub)
    from seedvr_desktop.demo import register as register_demo

    register_demo(sub)
    if with_modules:
        for name in COMMAND_MODULES:
            try:
                module = importlib.import_module(name)
            except ImportError as exc:
                log.debug("subcommands of %s unavailable: %s", name, exc)
                continue
            module.register(sub)
    return parser


def _add_restore(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("restore", help="restore videos or images to new files")
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUTPUT",
                   help="output file (container from the extension); a folder for several "
                   "inputs or PNG frames")
    p.add_argument("--engine", default="auto",
                   help="auto (best installed), none, classic, or a SeedVR model name")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--scale", type=float, help="scale factor, e.g. 2")
    size.add_argument("--short-side", type=int, metavar="N", help="output short side in pixels")
    size.add_argument("--size", type=parse_size, metavar="WxH", help="exact output size")
    p.add_argument("--start", type=parse_time, metavar="T", help="start time ([h:]m:s or s)")
    p.add_argument("--end", type=parse_time, metavar="T", help="end time ([h:]m:s or s)")
    p.add_argument("--codec", choices=vocab.VIDEO_CODECS, default=None,
                   help="video codec (default: h264, or png for a folder of frames)")
    p.add_argument("--crf", type=int, help="quality for h264/h265 (lower is better)")
    p.add_argument("--preset", help="encoder speed preset for h264/h265, e.g. medium, slow")
    p.add_argument("--bit-depth", type=int, choices=vocab.BIT_DEPTHS, default=8)
    p.add_argument("--audio", choices=vocab.AUDIO_MODES, default="copy")
    p.add_argument("--no-subtitles", action="store_true", help="do not copy subtitle tracks")
    p.add_argument("--resume", action="store_true", help="continue an interrupted job")
    from seedvr_desktop.cluster.cli_options import add_cluster_argument

    add_cluster_argument(p)
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--seed", type=int, default=666, help="noise seed of generative engines")
    p.add_argument("--chunk-length", type=positive_int, metavar="N",
                   help="frames per chunk (default: the engine's; SeedVR rounds to 4n+1)")
    p.add_argument("--overlap", type=non_negative_int, metavar="N",
                   help="frames shared and cross-faded by neighbouring chunks")
    g = p.add_argument_group("SeedVR engines")
    g.add_argument("--model-dir", type=Path, metavar="DIR",
                   help="a SeedVR model folder (official files or safetensors + seedvr.json); "
                   "with --engine auto this selects the generic `seedvr` engine")
    g.add_argument("--device", choices=vocab.DEVICES,
                   help="where the model runs (default: auto)")
    g.add_argument("--precision", choices=vocab.PRECISIONS,
                   help="number format on the device (default: auto)")
    g.add_argument("--color-fix", choices=vocab.COLOR_FIXES,
                   help="colour correction against the input (default: wavelet)")
    g.add_argument("--memory-budget", type=positive_float, metavar="GB",
                   help="device memory the job may use (default: what is free)")
    g.add_argument("--steps", type=positive_int, metavar="N",
                   help="sampling steps (SeedVR; SeedVR2 uses one)")
    g.add_argument("--offload", choices=vocab.OFFLOAD_MODES,
                   help="where the DiT waits while the VAE runs: auto (the memory plan), none, "
                   "dit (host RAM), stream (host RAM, blocks streamed to the device)")
    g.add_argument("--dit-window", type=positive_int, metavar="N",
                   help="latent frames per DiT window (default: the memory plan's)")
    g.add_argument("--vae-tile", type=positive_int, metavar="PX",
                   help="VAE tile side in pixels (default: the memory plan's)")
    g.add_argument("--compile", action="store_true", default=None,
                   help="torch.compile the DiT blocks (slow first chunk, faster after)")
    p.add_argument("--plan", action="store_true",
                   help="print what would be done (frames, sizes, chunks, and for SeedVR the "
                   "expected memory and time) and stop without writing anything")
    p.set_defaults(func=cmd_restore)


def _add_probe(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("probe", help="show what is in a media file")
    p.add_argument("file", type=Path, metavar="FILE")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_probe)


# ---------------------------------------------------------------------------------- commands


_MEDIA_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".mpg", ".ts",
                             ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp"})


def _unique_name(target: Path, taken: dict[Path, Path]) -> Path:
    """`clip.restored.mp4` -> `clip.restored-2.mp4` (-3, ...) until no other input uses it."""
    suffix = "".join(target.suffixes[-1:])
    stem = target.name[: len(target.name) - len(suffix)]
    number = 2
    while (candidate := target.with_name(f"{stem}-{number}{suffix}")) in taken:
        number += 1
    return candidate


def _output_for(src: Path, folder: Path, codec: str) -> Path:
    """Output name inside a folder for one of several inputs."""
    from seedvr_desktop.media.images import is_image_path

    if is_image_path(src):
        return folder / f"{src.stem}.restored{src.suffix}"
    if codec == "png":
        return folder / f"{src.stem}.restored"
    ext = src.suffix.lower()
    if (codec == "h264" and ext in (".mp4", ".m4v", ".mov", ".mkv")) or \
            (codec == "h265" and ext in (".mp4", ".mov", ".mkv")) or \
            (codec == "prores" and ext in (".mov", ".mkv")):
        return folder / f"{src.stem}.restored{ext}"
    return folder / f"{src.stem}.restored{_DEFAULT_EXTENSION[codec]}"


# restore's SeedVR options -> RestoreJob.engine_options keys (only options given are passed).
_ENGINE_OPTIONS = (("model_dir", "model_dir"), ("device", "device"),
                   ("precision", "precision"), ("color_fix", "color_fix"),
                   ("memory_budget", "memory_budget_gb"), ("steps", "steps"),
                   ("chunk_length", "chunk_length"), ("overlap", "overlap"),
                   ("offload", "offload"), ("dit_window", "dit_window"),
                   ("vae_tile", "vae_tile"), ("compile", "compile"))


# SeedVR's VAE works at 1/8 of the picture size; the engine takes its tile side in latents.
_VAE_FACTOR = 8


def engine_options_from_args(args: argparse.Namespace) -> dict[str, object]:
    options: dict[str, object] = {}
    for attr, key in _ENGINE_OPTIONS:
        value = getattr(args, attr, None)
        if value is not None:
            options[key] = str(value) if isinstance(value, Path) else value
    tile = options.get("vae_tile")
    if isinstance(tile, int):
        if tile % _VAE_FACTOR or tile < 8 * _VAE_FACTOR:
            raise UserError(f"--vae-tile must be a multiple of {_VAE_FACTOR} pixels, at least "
                            f"{8 * _VAE_FACTOR}, not {tile}")
        options["vae_tile"] = tile // _VAE_FACTOR
    return options


def jobs_from_args(args: argparse.Namespace) -> list[RestoreJob]:
    """One RestoreJob per input (the same settings for all)."""
    from seedvr_desktop.engine.job import RestoreJob, SizeRule
    from seedvr_desktop.media.codecs import EncodeSettings

    inputs: list[Path] = args.inputs
    out: Path = args.output
    from seedvr_desktop.engine.plan import check_output_name

    check_output_name(out)  # before any look at the path: a stat of it fails too
    codec = _codec_for(args, out, len(inputs))
    encode = EncodeSettings(codec=codec, crf=args.crf, preset=args.preset,
                            bit_depth=args.bit_depth, audio=args.audio,
                            subtitles=not args.no_subtitles)
    rule = SizeRule(scale=args.scale, short_side=args.short_side, size=args.size)
    if args.scale is not None and not (args.scale > 0 and math.isfinite(args.scale)):
        raise UserError(f"--scale must be a positive number, not {args.scale:g}")
    if args.short_side is not None and args.short_side < 2:
        raise UserError(f"--short-side must be at least 2 pixels, not {args.short_side}")
    options = engine_options_from_args(args)
    engine = args.engine
    if engine == "auto" and "model_dir" in options:
        engine = "seedvr"  # a model folder names the model: the generic folder engine runs it
    folder_mode = len(inputs) > 1 or (out.is_dir() and codec != "png")
    if folder_mode:
        if out.exists() and not out.is_dir():
            raise UserError(f"{out} must be a folder when restoring several inputs")
        if not out.exists() and out.suffix.lower() in _MEDIA_SUFFIXES:
            raise UserError(f"several inputs need an output folder, not the file name {out.name}")
        out.mkdir(parents=True, exist_ok=True)
    jobs = []
    taken: dict[Path, Path] = {}  # output -> the input that claimed it
    for src in inputs:
        target = _output_for(src, out, codec) if folder_mode else out
        if target in taken:
            # Camera folders repeat names (DCIM/100*/MVI_0001.MOV): never let one result
            # silently replace another; number the later ones instead.
            target = _unique_name(target, taken)
        taken[target] = src
        jobs.append(RestoreJob(input_path=src, output_path=target, engine=engine,
                               size=rule, start_time=args.start, end_time=args.end,
                               encode=encode, resume=args.resume, overwrite=args.overwrite,
                               seed=args.seed, engine_options=dict(options)))
    refuse_input_as_output(jobs)
    return jobs


def _codec_for(args: argparse.Namespace, out: Path, count: int) -> str:
    """The codec the user asked for, or the default for this output.

    Without --codec an extension-less output that is a folder (or not there yet) means PNG
    frames, anything else h264. An extension-less path that exists and is not a folder (a file,
    /dev/null) is neither a video name nor a folder: refused before anything is decoded.
    """
    given: str | None = args.codec
    if out.suffix == "" and out.exists() and not out.is_dir() and given != "png":
        raise UserError(f"{out} is an existing file without an extension; give a video file "
                        f"name such as {out.name}.mp4, or a folder for PNG frames")
    if given is not None:
        if given != "png" and count == 1 and out.suffix == "" and not out.is_dir():
            raise UserError(f"--codec {given} needs a video file name such as {out.name}.mp4 "
                            "(an output without an extension is a folder of PNG frames)")
        return str(given)
    if count == 1 and out.suffix == "" and not out.is_dir():
        return "png"
    return "h264"


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def refuse_input_as_output(jobs: list[RestoreJob]) -> None:
    """No job may write over a file that is an input of the same command (refused up front:
    job 1 would replace input 2 before job 2 reads it)."""
    for job in jobs:
        out = Path(job.output_path)
        for other in jobs:
            src = Path(other.input_path)
            if out.absolute() == src.absolute() or _same_file(out, src):
                if other is job:
                    raise UserError(f"the output {out} would overwrite the input; choose "
                                    "another output name")
                raise UserError(f"restoring {job.input_path} would write {out}, which would "
                                f"overwrite the input {src}; choose another output folder")


def cmd_restore(args: argparse.Namespace) -> int:
    from seedvr_desktop.cli_progress import run_job_with_progress

    jobs = jobs_from_args(args)
    if args.plan:
        return _print_plans(jobs)
    from seedvr_desktop.cluster.cli_options import cluster_runner

    status = 0
    with cluster_runner(args) as run:  # plain run_restore without --cluster
        for n, job in enumerate(jobs, 1):
            label = f"[{n}/{len(jobs)}]" if len(jobs) > 1 else ""
            try:
                code = run_job_with_progress(job, label=label, run=run)
            except UserError as exc:
                if len(jobs) == 1:
                    raise
                print(f"error: {job.input_path.name}: {exc}", file=sys.stderr)
                status = 1
                continue
            if code:
                return code  # cancelled: do not start the next input
    return status


def _print_plans(jobs: list[RestoreJob]) -> int:
    """--plan: what each job will do, before any decoding, loading or writing."""
    from seedvr_desktop.engine.plan import plan_job

    for job in jobs:
        plan = plan_job(job)
        for note in plan.notes:
            print(note)
        sw, sh = plan.source_size
        ow, oh = plan.output_size
        kind = "image" if plan.is_image else f"{plan.frame_count} frames"
        caps = plan.caps
        print(f"{plan.input_path} -> {plan.output_path}: {kind}, {sw}x{sh} -> {ow}x{oh}, "
              f"engine {plan.engine}, {plan.chunk_count} chunk(s) of up to "
              f"{caps.chunk_length} frames, overlap {caps.overlap}")
        for line in _engine_plan_lines(job, plan):
            print(f"  {line}")
    return 0


def _engine_plan_lines(job: RestoreJob, plan: JobPlan) -> list[str]:
    """The engine's own forecast (SeedVR: peak memory, time, tiling); [] for engines without
    one. Building a SeedVR engine object reads no weights."""
    from seedvr_desktop.engine import registry
    from seedvr_desktop.engine.plan import engine_geometry

    if not registry.engine_caps(plan.engine).generative:
        return []  # classic and none have nothing to forecast beyond the line above
    engine = registry.create_engine(plan.engine, **job.engine_options)
    try:
        forecast = getattr(engine, "plan", None)
        if forecast is None:
            return []
        with engine_geometry(engine, plan.caps):  # forecast for the job's real chunks
            result = forecast(plan.frame_count, plan.output_size, plan.chunk_count)
        return [str(line) for line in result.lines()]
    finally:
        engine.close()


def cmd_probe(args: argparse.Namespace) -> int:
    import json

    from seedvr_desktop.media.probe import probe

    info = probe(args.file)
    if args.json:
        print(json.dumps(info.to_dict(), indent=2))
        return 0
    for key, value in probe_rows(info):
        print(f"{key:<18} {value}")
    return 0


def probe_rows(info: object) -> list[tuple[str, str]]:
    """The probe as (label, value) rows for the table view."""
    d = info.to_dict()  # type: ignore[attr-defined]
    rows = [("file", str(d["path"])), ("container", str(d["container"])),
            ("duration", "-" if d["duration"] is None else f"{d['duration']:.3f} s")]
    v = d.get("video")
    if v:
        rate = v["frame_rate"] + (" (variable)" if v["variable_frame_rate"] else "")
        rows += [
            ("video", f"#{v['index']} {v['codec']} {v['pix_fmt']} ({v['bit_depth']}-bit)"),
            ("size", f"{v['width']}x{v['height']} stored, {v['display_width']}x"
                     f"{v['display_height']} shown (SAR {v['sample_aspect_ratio']}, "
                     f"rotation {v['rotation']})"),
            ("frame rate", rate), ("frames", str(v["frame_count"])),
            ("scan", v["field_order"] if v["interlaced"] else "progressive"),
            ("colour", " / ".join(str(v[k] or "-") for k in (
                "color_primaries", "color_transfer", "color_matrix", "color_range"))),
        ]
    for a in d.get("audio", []):
        lang = f" [{a['language']}]" if a["language"] else ""
        rows.append(("audio", f"#{a['index']} {a['codec']} {a['sample_rate']} Hz "
                              f"{a['layout'] or a['channels']}{lang}"))
    for s in d.get("subtitles", []):
        lang = f" [{s['language']}]" if s["language"] else ""
        rows.append(("subtitles", f"#{s['index']} {s['codec']}{lang}"))
    return rows


# ---------------------------------------------------------------------------------- entry


def _run_gui(argv: Sequence[str]) -> int:
    """The GUI, opening `argv` (media files, folders, a .svrproj) once its window is up."""
    try:
        from seedvr_desktop.ui.app import run_app
    except (ImportError, OSError) as exc:  # no GUI package, or Qt's libraries fail to load
        print(f"error: the GUI cannot start ({_first_line(exc)}); use a command such as "
              "`seedvr-desktop restore --help`", file=sys.stderr)
        return 1
    return int(run_app(list(argv)))


def _run_self_test() -> int:
    try:
        from seedvr_desktop.selftest import run_self_test
    except (ImportError, OSError) as exc:
        print(f"error: the self-test cannot start ({_first_line(exc)})", file=sys.stderr)
        return 1
    return int(run_self_test())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _paths_to_open(args: list[str]) -> bool:
    """Whether the arguments are files for the GUI ("Open with" from a file manager passes
    paths, never a command): every one an existing file or folder, or a project file."""
    return bool(args) and all(
        not a.startswith("-") and (a.lower().endswith(".svrproj") or Path(a).exists())
        for a in args)


EXIT_TERMINATED = 143


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def _safe_stdio() -> None:
    """Streams that cannot fail the command.

    A closed stderr (`2>&-`) leaves sys.stderr None, and every message would crash the
    command: messages then go nowhere. A terminal whose encoding cannot show a caption's or a
    file name's characters (LANG=C on an old system, PYTHONIOENCODING=ascii) gets escapes
    instead of a UnicodeEncodeError."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is None or _closed(stream):
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115
            continue
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(ValueError, OSError):  # one that cannot change stays
                reconfigure(errors="backslashreplace")


def _closed(stream: object) -> bool:
    try:
        fileno = stream.fileno()  # type: ignore[attr-defined]
    except (AttributeError, ValueError, OSError):
        return bool(getattr(stream, "closed", False))
    try:
        os.fstat(fileno)
    except OSError:
        return True
    return False


def _dash_hint(args_list: list[str], message: str) -> str:
    """`restore -dash.mp4` reads as an unknown option: point at `./-dash.mp4` or `--`."""
    if "required" not in message and "unrecognized" not in message:
        return message
    for arg in args_list:
        if arg.startswith("-") and arg != "-" and not arg.startswith("--") and \
                (Path(arg).exists() or Path(arg).suffix.lower() in _MEDIA_SUFFIXES):
            return (f"{message}; a file named {arg} reads as an option: write ./{arg} "
                    "or put -- before it")
    return message


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `seedvr-desktop` and `python -m seedvr_desktop`."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    _safe_stdio()
    return _main(args_list)


@contextlib.contextmanager
def _sigterm_stops() -> Iterator[None]:
    """SIGTERM during a command raises Terminated (message, exit 143) instead of killing the
    process silently; a running job turns it into a clean cancel (cli_progress)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _main(args_list: list[str]) -> int:
    from seedvr_desktop.log import current_log_file, setup_logging

    try:
        if not args_list:
            setup_logging()
            return _run_gui([])  # no command: the GUI
        if args_list[0] not in _COMMAND_WORDS and _paths_to_open(args_list):
            setup_logging()
            return _run_gui(args_list)  # "Open with": the GUI with these files
        parser = build_parser()
        try:
            args = parser.parse_args(args_list)
        except UserError as exc:
            raise UserError(_dash_hint(args_list, str(exc))) from None
        setup_logging(verbose=args.verbose)
        if args.self_test:
            return _run_self_test()
        if not getattr(args, "func", None):
            return _run_gui([])
        with _sigterm_stops():
            return int(args.func(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Terminated:
        print("terminated", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("cancelled", file=sys.stderr)
        return 130
    except SystemExit as exc:  # --help / --version
        return exc.code if isinstance(exc.code, int) else 0
    except BrokenPipeError as exc:
        if not _stdout_reader_gone():  # another pipe (a socket, a child): a real failure
            return _internal_error(exc, current_log_file)
        # `... | head`: the reader of our output left. Exit quietly, as Unix tools do, with
        # stdout on the null device so the interpreter's last flush does not complain again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as exc:
        return _internal_error(exc, current_log_file)


def _internal_error(exc: BaseException, log_file: Callable[[], object]) -> int:
    """The traceback goes to the log file only; the user gets one line pointing at it."""
    log.error("internal error", exc_info=exc, extra={"file_only": True})
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    print(f"internal error: {message} (details in {log_file()})", file=sys.stderr)
    return 2


def _stdout_reader_gone() -> bool:
    """Whether stdout is a pipe whose reader has closed it (POLLERR); True where that cannot
    be asked (no poll on Windows), as a broken pipe there is almost always stdout's."""
    import select

    if not hasattr(select, "poll"):
        return True
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(0))
    except (OSError, ValueError):
        return False


if __name__ == "__main__":
    sys.exit(main())
