"""`seedvr-desktop models list|download NAME|verify [NAME]|path [NAME]`.

The model files are tens of gigabytes, so this command says plainly what is installed, where it
lives, what is missing, and (offline) exactly which files to place where.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from seedvr_desktop.engine.seedvr import store
from seedvr_desktop.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("models", help="list, download and verify SeedVR model files")
    sub = p.add_subparsers(dest="models_command", metavar="{list,download,verify,path}")
    p.set_defaults(func=_cmd_list)

    ls = sub.add_parser("list", help="show the known models and what is installed")
    ls.set_defaults(func=_cmd_list)

    dl = sub.add_parser("download", help="download a model's official files")
    dl.add_argument("name", choices=sorted(store.CATALOG))
    dl.add_argument("--revision", default="main", help="branch, tag or commit (default: main)")
    dl.add_argument("--source", type=Path, default=None,
                    help="copy from a local mirror folder (<DIR>/<owner>/<repo>/files) instead")
    dl.set_defaults(func=_cmd_download)

    ve = sub.add_parser("verify", help="re-check SHA-256 of installed files against the manifest")
    ve.add_argument("name", nargs="?", choices=sorted(store.CATALOG))
    ve.set_defaults(func=_cmd_verify)

    pa = sub.add_parser("path", help="print the models folder (or one model's folder)")
    pa.add_argument("name", nargs="?", choices=sorted(store.CATALOG))
    pa.set_defaults(func=_cmd_path)


def _cmd_list(args: argparse.Namespace) -> int:
    try:
        return _list(args)
    except BrokenPipeError:
        # `models list | head -c5`: the reader left; exit quietly, and keep Python from
        # complaining again when it flushes stdout at exit.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _list(args: argparse.Namespace) -> int:
    root = store.models_root()
    print(f"models folder: {root}")
    print(f"{'name':<18} {'status':<12} {'download':>9}  description")
    for m in store.CATALOG.values():
        missing = store.missing_files(m.name, root)
        if not missing:
            status = "installed"
        elif len(missing) < len(m.files):
            status = "incomplete"
        else:
            status = "-"
        print(f"{m.name:<18} {status:<12} {m.approx_gb:>7.1f}GB  {m.description}")
        folder = root / m.name
        if folder.is_dir():
            for line in _file_lines(folder):
                print(line)
    print("download with: seedvr-desktop models download NAME")
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    hub = store.LocalFolderHub(args.source) if args.source else None
    folder = store.download(args.name, hub=hub, revision=args.revision, progress=_HashProgress())
    manifest = store.Manifest.read(folder)
    rev = manifest.revision if manifest else "?"
    print(f"{args.name}: installed in {folder} (revision {rev})")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    names = [args.name] if args.name else [
        n for n in store.CATALOG if len(store.missing_files(n)) < len(store.CATALOG[n].files)
    ]
    if not names:
        print("no models installed")
        return 0
    failed = False
    for name in names:
        rep = store.verify(name, progress=_HashProgress())
        for f in rep.ok:
            print(f"{name}: {f}: ok")
        for f in rep.unrecorded:
            print(f"{name}: {f}: present, not downloaded by this app (no recorded hash); "
                  f"run `models download {name}` to check it against the hub")
        for f in rep.mismatched:
            print(f"{name}: {f}: DAMAGED (SHA-256 differs from the download record)")
        for f in rep.missing:
            print(f"{name}: {f}: MISSING in {rep.folder}")
        failed |= not rep.passed
    if failed:
        raise UserError("verification failed; re-run `seedvr-desktop models download NAME`")
    return 0


def _cmd_path(args: argparse.Namespace) -> int:
    print(store.model_dir(args.name) if args.name else store.models_root())
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
