"""`seedvr-desktop models list|download NAME|verify [NAME]|path [NAME]|recommend`.

The model files are tens of gigabytes, so this command says plainly what is installed, where it
lives, what is missing, and (offline) exactly which files to place where. `--variant` picks a
community format of a SeedVR2 DiT (fp16, fp8, GGUF; see engine/seedvr/catalogue.py), installed
in a folder of its own; `recommend` says which model and format this (or another) machine runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from seedvr_desktop.engine.seedvr import catalogue, store
from seedvr_desktop.engine.seedvr.hub import LocalFolderHub
from seedvr_desktop.errors import UserError

_VARIANT_HELP = ("a community format instead of the official files: "
                 + ", ".join(catalogue.variant_names()) + " (see `models list`)")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("models", help="list, download and verify SeedVR model files")
    sub = p.add_subparsers(dest="models_command",
                           metavar="{list,download,verify,path,recommend}")
    p.set_defaults(func=_cmd_list)

    ls = sub.add_parser("list", help="show the known models and what is installed")
    ls.set_defaults(func=_cmd_list)

    dl = sub.add_parser("download", help="download a model's official files")
    dl.add_argument("name", choices=sorted(store.CATALOG))
    dl.add_argument("--variant", default=None, metavar="FORMAT", help=_VARIANT_HELP)
    dl.add_argument("--revision", default="main", help="branch, tag or commit (default: main)")
    dl.add_argument("--source", type=Path, default=None,
                    help="copy from a local mirror folder (<DIR>/<owner>/<repo>/files) instead")
    dl.set_defaults(func=_cmd_download)

    ve = sub.add_parser("verify", help="re-check SHA-256 of installed files against the manifest")
    ve.add_argument("name", nargs="?", choices=sorted(store.CATALOG))
    ve.add_argument("--variant", default=None, metavar="FORMAT", help=_VARIANT_HELP)
    ve.set_defaults(func=_cmd_verify)

    pa = sub.add_parser("path", help="print the models folder (or one model's folder)")
    pa.add_argument("name", nargs="?", choices=sorted(store.CATALOG))
    pa.add_argument("--variant", default=None, metavar="FORMAT", help=_VARIANT_HELP)
    pa.set_defaults(func=_cmd_path)

    rc = sub.add_parser("recommend", help="which model and format fit this machine's memory")
    rc.add_argument("--vram", type=float, default=None, metavar="GB",
                    help="plan for a GPU with this much memory instead (0 = no GPU)")
    rc.add_argument("--ram", type=float, default=None, metavar="GB",
                    help="plan for this much host RAM instead of this machine's")
    rc.add_argument("--json", action="store_true", help="print every candidate as JSON")
    rc.set_defaults(func=_cmd_recommend)


def _cmd_list(args: argparse.Namespace) -> int:
    return _list(args)  # `models list | head -c5` is handled in cli.main (a broken pipe)


def _status(name: str, root: Path, variant: str | None) -> str:
    missing = store.missing_files(name, root, variant)
    if not missing:
        return "installed"
    return "incomplete" if len(missing) < len(store.model_files(name, variant)) else "-"


def _list(args: argparse.Namespace) -> int:
    root = store.models_root()
    print(f"models folder: {root}")
    print(f"{'name':<18} {'status':<12} {'download':>9}  description")
    for m in store.CATALOG.values():
        print(f"{m.name:<18} {_status(m.name, root, None):<12} {m.approx_gb:>7.1f}GB  "
              f"{m.description}")
        folder = root / m.name
        if folder.is_dir():
            for line in _file_lines(folder):
                print(line)
        for v in catalogue.variants_of(m.name):
            note = f", {v.note}" if v.note else ""
            print(f"  --variant {v.name:<17} {_status(m.name, root, v.name):<12} "
                  f"{v.approx_gb:>5.1f}GB  {v.repo_id}{note}")
    print("download with: seedvr-desktop models download NAME [--variant FORMAT]; "
          "which one fits: seedvr-desktop models recommend")
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    hub = LocalFolderHub(args.source) if args.source else None
    folder = store.download(args.name, variant=args.variant, hub=hub, revision=args.revision,
                            progress=_HashProgress())
    manifest = store.Manifest.read(folder)
    rev = manifest.revision if manifest else "?"
    v = store.get_variant(args.name, args.variant)
    label = v.label if v else args.name
    print(f"{label}: installed in {folder} (revision {rev})")
    if v is not None:
        used = store.installed_folder(args.name)
        if used == folder:
            print(f"used by: seedvr-desktop restore ... --engine {args.name}")
        else:  # the official files (or a more precise variant) come first
            print(f"use it with: seedvr-desktop restore ... --engine {args.name} "
                  f"--model-dir {folder}")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    entries: list[tuple[str, str | None]] = (
        [(args.name, args.variant)] if args.name else store.present())
    if not args.name and args.variant:
        raise UserError("--variant needs a model name")
    if not entries:
        print("no models installed")
        return 0
    failed = False
    for name, variant in entries:
        rep = store.verify(name, variant=variant, progress=_HashProgress())
        label = rep.name
        opt = f" --variant {variant}" if variant else ""
        for f in rep.ok:
            print(f"{label}: {f}: ok")
        for f in rep.unrecorded:
            print(f"{label}: {f}: present, not downloaded by this app (no recorded hash); "
                  f"run `models download {name}{opt}` to check it against the hub")
        for f in rep.mismatched:
            print(f"{label}: {f}: DAMAGED (SHA-256 differs from the download record)")
        for f in rep.missing:
            print(f"{label}: {f}: MISSING in {rep.folder}")
        failed |= not rep.passed
    if failed:
        raise UserError("verification failed; re-run `seedvr-desktop models download NAME`")
    return 0


def _cmd_path(args: argparse.Namespace) -> int:
    if args.variant and not args.name:
        raise UserError("--variant needs a model name")
    print(store.model_dir(args.name, variant=args.variant) if args.name else store.models_root())
    return 0


def _cmd_recommend(args: argparse.Namespace) -> int:
    import json

    from seedvr_desktop.engine.seedvr import recommend

    rec = recommend.recommend(recommend.machine_for(args.vram, args.ram))
    if args.json:
        print(json.dumps(rec.to_dict(), indent=2))
        return 0
    print(rec.line)
    if rec.choice is not None:
        print(f"download with: {rec.choice.command}")
    return 0


def _file_lines(folder: Path) -> list[str]:
    """One line per weight file: name, format (from its header) and size."""
    from seedvr_desktop.errors import ModelError
    from seedvr_desktop.models.loading import weight_file_info

    lines = []
    for path in sorted(folder.iterdir()):
        if path.suffix not in (".pth", ".pt", ".safetensors", ".gguf") or not path.is_file():
            continue
        try:
            fmt = weight_file_info(path).format
        except (OSError, ValueError, ModelError):
            fmt = "damaged or not a model file"
        lines.append(f"    {path.name:<44} {fmt:<24} {path.stat().st_size / 1e9:7.2f} GB")
    return lines


class _HashProgress:
    """A one-line percentage on stderr while big files are hashed (only for files > 64 MB)."""

    def __init__(self) -> None:
        self._last: tuple[str | None, int] = (None, -1)

    def __call__(self, name: str, done: int, total: int) -> None:
        if total < (64 << 20) or not sys.stderr.isatty():
            return
        pct = int(100 * done / total) if total else 100
        if (name, pct) != self._last:
            self._last = (name, pct)
            end = "\n" if done >= total else ""
            print(f"\rchecking {name}: {pct:3d}%", end=end, file=sys.stderr, flush=True)
