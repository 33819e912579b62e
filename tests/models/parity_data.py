"""Shared access to the official-code reference vectors (`../shared/parity/*.pt`).

Each file is ~80 MB; loading it once per test session (lru_cache) keeps the model tests fast.
The folder is `SEEDVR_PARITY_DIR` when set, else `<shared>/parity` beside the checkout.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import torch

from tests.conftest import require_shared, shared_dir


def parity_dir() -> Path:
    """Where the reference vector files live (may not exist locally)."""
    env = os.environ.get("SEEDVR_PARITY_DIR")
    return Path(env) if env else shared_dir() / "parity"


def parity_files() -> list[Path]:
    """Every `*.pt` vector file, sorted; skips (fails on CI) when the folder is missing or empty."""
    folder = require_shared(parity_dir(), "parity vectors folder")
    files = sorted(folder.glob("*.pt"))
    if not files:
        require_shared(folder / "*.pt", "parity vector files")
    return files


def parity_file_ids() -> list[str]:
    """Test ids for parametrisation, computed without skipping at collection time."""
    folder = parity_dir()
    return sorted(p.name for p in folder.glob("*.pt")) if folder.is_dir() else []


@functools.lru_cache(maxsize=4)
def load_parity(path: Path | str) -> dict[str, Any]:
    """The nested dict of one vector file (tensors only, `weights_only=True`), cached."""
    return torch.load(Path(path), map_location="cpu", weights_only=True)
