"""The `--self-test` logic, run from the source tree so every CI run covers what the bundle uses.

The full self-test runs in a subprocess, exactly as a frozen app would run it: its own Qt
application, its own watchdog and `os._exit`, nothing shared with pytest-qt's application.
The pixel check and the start-time helper are also tested directly, without Qt.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from seedvr_desktop import selftest
from seedvr_desktop.selftest import SelfTestFailure, check_split_frame
from tests.conftest import REPO_ROOT

RUN = "from seedvr_desktop.selftest import run_self_test; raise SystemExit(run_self_test())"
ACCENT_BGR = (40, 202, 255)  # the divider's colour (ui.theme.ACCENT) as OpenCV reads it


def _self_test(tmp_path: Path, timeout: float = 240.0, **env: str) -> subprocess.CompletedProcess:
    environ = dict(os.environ, QT_QPA_PLATFORM="offscreen", **env)
    return subprocess.run([sys.executable, "-c", RUN], cwd=REPO_ROOT, env=environ,
                          capture_output=True, text=True, timeout=timeout)


def _lines(text: str) -> list[str]:
    """Output lines without Qt's offscreen-platform chatter."""
    return [line for line in text.splitlines()
            if line.strip() and "propagateSizeHints" not in line]


@pytest.mark.gui
def test_self_test_passes_and_draws_a_split_compare(tmp_path: Path) -> None:
    shot = tmp_path / "compare.png"
    result = _self_test(tmp_path, SEEDVR_DESKTOP_SELFTEST_SCREENSHOT=str(shot))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = _lines(result.stdout)
    assert len(lines) == 1 and lines[0].startswith("self-test passed: window shown "), lines
    # Independent look at the saved frame: the split divider runs down the middle, with a
    # picture (not the dark empty viewer) on both sides of it.
    image = cv2.imread(str(shot))  # (H, W, 3) BGR
    assert image is not None, "the screenshot is not a readable PNG"
    h, w = image.shape[:2]
    accent = np.all(np.abs(image.astype(int) - ACCENT_BGR) < 30, axis=2)  # (H, W)
    columns = np.flatnonzero(accent.mean(axis=0) > 0.8)
    assert columns.size and abs(columns.mean() - w / 2) < 0.05 * w, "no divider in the middle"
    band = image[h * 2 // 5:h * 4 // 5]
    left, right = band[:, : int(columns.min()) - 5], band[:, int(columns.max()) + 5:]
    for side in (left, right):
        assert side.mean() > 60 and side.std() > 20, "a side of the compare shows no picture"


@pytest.mark.gui
def test_failed_check_prints_one_line_and_exits_1(tmp_path: Path) -> None:
    result = _self_test(tmp_path, SEEDVR_DESKTOP_SELFTEST_ENGINE="no-such-engine")
    assert result.returncode == 1
    lines = _lines(result.stderr)
    assert len(lines) == 1 and lines[0].startswith("self-test failed: "), lines
    assert "no-such-engine" in lines[0]
    assert "passed" not in result.stdout


def test_watchdog_ends_a_hung_self_test(tmp_path: Path) -> None:
    started = time.monotonic()
    result = _self_test(tmp_path, timeout=60.0, SEEDVR_DESKTOP_SELFTEST_TIMEOUT="0.2")
    assert result.returncode == 1
    lines = _lines(result.stderr)
    assert len(lines) == 1 and lines[0].startswith("self-test failed: timed out after 0.2 s"), lines
    assert time.monotonic() - started < 30


def _canvas(left: np.ndarray, right: np.ndarray, rect: tuple[int, int, int, int],
            size: tuple[int, int]) -> np.ndarray:
    """A viewer-like grab: `left` drawn into rect left of the middle, `right` to the right."""
    width, height = size
    x, y, w, h = rect
    canvas = np.full((height, width, 3), 18, np.uint8)
    for picture, cols in ((left, slice(x, width // 2)), (right, slice(width // 2, x + w))):
        scaled = cv2.resize(picture, (w, h), interpolation=cv2.INTER_LINEAR)
        canvas[y:y + h, cols] = scaled[:, cols.start - x:cols.stop - x]
    return canvas


def _gradient(width: int = 64, height: int = 48) -> np.ndarray:
    ys, xs = np.mgrid[0:height, 0:width]
    return np.stack([xs * 255 // width, ys * 255 // height, 255 - xs * 255 // width],
                    axis=2).astype(np.uint8)


def test_split_check_accepts_original_left_and_restored_right() -> None:
    original = _gradient()
    restored = 255 - original
    rect, size = (40, 10, 320, 240), (400, 260)
    check_split_frame(_canvas(original, restored, rect, size), size, original, restored, rect, 0.5)
    # A grab at twice the pixel density (HiDPI) is the same picture.
    double = cv2.resize(_canvas(original, restored, rect, size), (800, 520))
    check_split_frame(double, size, original, restored, rect, 0.5)


def test_split_check_rejects_swapped_missing_or_flat_pictures() -> None:
    original = _gradient()
    restored = 255 - original
    rect, size = (40, 10, 320, 240), (400, 260)
    swapped = _canvas(restored, original, rect, size)
    with pytest.raises(SelfTestFailure, match="original"):
        check_split_frame(swapped, size, original, restored, rect, 0.5)
    placeholder = _canvas(original, np.full_like(original, 30), rect, size)
    with pytest.raises(SelfTestFailure, match="restored"):
        check_split_frame(placeholder, size, original, restored, rect, 0.5)
    flat = np.full_like(original, 128)
    with pytest.raises(SelfTestFailure, match="flat"):
        check_split_frame(_canvas(flat, flat, rect, size), size, flat, flat, rect, 0.5)


def test_process_age_uses_the_launch_time_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(selftest.ENV_T0, str(time.time() - 5.0))
    age, basis = selftest.process_age()
    assert 4.9 < age < 6.0 and basis == "from launch"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_process_age_reads_the_process_start_on_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(selftest.ENV_T0, raising=False)
    age, basis = selftest.process_age()
    assert basis == "from process start"
    # This process started before the test module was imported, and not days ago.
    assert time.time() - selftest._IMPORTED_AT < age + 0.05 < 24 * 3600
