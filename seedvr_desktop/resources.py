"""One place that knows where the application's bundled files live.

In a source checkout or an editable install the files sit in `<repo>/resources`; inside a
PyInstaller bundle they are unpacked under `sys._MEIPASS/resources`. Everything that needs an
icon or a sample goes through `resource_path` so that neither layout leaks into the callers.
"""

from __future__ import annotations

import sys
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def resources_root() -> Path:
    """Folder holding the `icons/` (and other) resource folders for this run."""
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:  # PyInstaller one-folder or one-file bundle
        return Path(bundle) / "resources"
    return _PACKAGE_DIR.parent / "resources"


def resource_path(name: str) -> Path:
    """Absolute path of a resource such as ``"icons/app.svg"``; the file may be absent."""
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts:
        raise ValueError(f"resource names are relative to the resources folder: {name!r}")
    return resources_root() / relative
