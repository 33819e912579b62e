"""Shared fixtures: where `../shared` is, and a quiet torch on the 2-core CI machine."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
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


@pytest.fixture(autouse=True)
def _isolated_folders(tmp_path_factory: pytest.TempPathFactory,
                      monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test gets fresh config, data, models and log folders, away from the user's real ones.

    Per test, not per run: a memory calibration or a setting one test stores must not change
    what another test sees (the order of a full run would then decide results).
    """
    root = tmp_path_factory.mktemp("home")
    for var, name in (("SEEDVR_DESKTOP_CONFIG_DIR", "config"), ("SEEDVR_DESKTOP_DATA_DIR", "data"),
                      ("SEEDVR_DESKTOP_MODELS_DIR", "models"), ("SEEDVR_DESKTOP_LOG_DIR", "logs")):
        monkeypatch.setenv(var, str(root / name))
    yield
    # A CLI run inside the test installs the app's log handler; it must not outlive the test.
    log_root = logging.getLogger()
    for handler in [h for h in log_root.handlers if getattr(h, "_seedvr", False)]:
        log_root.removeHandler(handler)
        handler.close()


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> Iterator[None]:
    """One torch thread for the whole run: the 2-core CI machine runs tests next to their own
    subprocesses, where one thread is faster, and results never depend on the thread count.
    (Subprocesses that want more, such as the DiT parity worker, set their own.)"""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True, scope="session")
def _offscreen_qt() -> None:
    """Qt without a display for the whole run (the QApplication outlives any one test)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
