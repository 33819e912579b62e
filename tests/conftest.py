"""Shared fixtures: where `../shared` is, and a quiet torch on the 2-core CI machine."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def shared_dir() -> Path:
    """The read-only project material beside the checkout (parity vectors, layouts, docs)."""
    return Path(os.environ.get("SEEDVR_SHARED_DIR", REPO_ROOT.parent / "shared"))


def require_shared(path: Path, what: str) -> Path:
    """Skip locally when shared material is missing; on CI (CI=true) that is a failure."""
    if path.exists():
        return path
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} not found at {path} (required on CI)")
    pytest.skip(f"{what} not found at {path}")


@pytest.fixture(autouse=True, scope="session")
def _settings_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep tests away from the user's real settings and model folders."""
    cfg = tmp_path_factory.mktemp("config")
    os.environ.setdefault("SEEDVR_DESKTOP_CONFIG_DIR", str(cfg))
    os.environ.setdefault("SEEDVR_DESKTOP_DATA_DIR", str(tmp_path_factory.mktemp("data")))
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
