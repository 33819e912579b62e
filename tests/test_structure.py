"""Structural rules checked on every run: ruff is clean and the import boundaries hold."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT


def _tool(name: str) -> str:
    exe = shutil.which(name, path=str(REPO_ROOT / ".venv" / "bin")) or shutil.which(name)
    if exe is None:
        pytest.fail(f"{name} is not installed; run `make test` to install the test extras")
    return exe


def test_ruff_clean() -> None:
    result = subprocess.run(
        [_tool("ruff"), "check", "."], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_import_contracts() -> None:
    result = subprocess.run(
        [_tool("lint-imports")], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_cli_runs_without_qt() -> None:
    """The headless path must not drag Qt in: `restore` on a server has no display libraries."""
    code = (
        "import sys, seedvr_desktop.cli, seedvr_desktop.engine.pipeline, seedvr_desktop.project;"
        "bad = [m for m in sys.modules if m.startswith(('PySide6', 'shiboken6'))];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True)


def test_mypy_clean() -> None:
    """Type hints are checked, the GUI included (see [tool.mypy] in pyproject.toml)."""
    result = subprocess.run(
        [_tool("mypy")], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
