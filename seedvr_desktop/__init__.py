"""SeedVR Desktop: restore home movies locally with SeedVR / SeedVR2.

Kept import-free on purpose: the GUI must open before torch or PyAV load.
"""

from __future__ import annotations

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("seedvr-desktop")
except _metadata.PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+source"

__all__ = ["__version__"]
