"""Screenshots of the main window in each compare mode under a real X server.

Runs `bench/screenshots.py` in a child process on the X server named by DISPLAY, or on a private
Xvfb started here when DISPLAY is unset and Xvfb is installed (as `.ci/run` installs it). The PNG
files land in $SEEDVR_SCREENSHOT_DIR (default <repo>/screenshots, git-ignored) for a person to look
at; this test checks that each exists, has the window's size and shows a picture.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.gui

EXPECTED = ("01-split", "02-side-by-side", "03-toggle-restored", "04-toggle-held-original",
            "05-original", "06-split-zoomed", "07-export-dialog", "08-settings-dialog")


@pytest.fixture(scope="module")
def x_display() -> Iterator[str]:
    if os.environ.get("DISPLAY"):
        yield os.environ["DISPLAY"]
        return
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("no X server: DISPLAY is unset and Xvfb is not installed")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen([xvfb, "-displayfd", str(write_fd), "-screen", "0", "1600x1000x24",
                             "-nolisten", "tcp"], pass_fds=(write_fd,),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    try:
        with os.fdopen(read_fd) as pipe:
            number = pipe.readline().strip()
        if not number:
            pytest.skip("Xvfb did not start")
        yield f":{number}"
    finally:
        proc.terminate()
        proc.wait(10)


def test_screenshots_of_each_compare_mode(x_display: str) -> None:
    out_dir = Path(os.environ.get("SEEDVR_SCREENSHOT_DIR") or REPO_ROOT / "screenshots")
    env = dict(os.environ, DISPLAY=x_display, QT_QPA_PLATFORM="xcb",
               SEEDVR_SCREENSHOT_DIR=str(out_dir))
    result = subprocess.run([sys.executable, str(REPO_ROOT / "bench" / "screenshots.py")],
                            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    if result.returncode != 0 and ("could not connect to display" in result.stderr
                                   or "Could not load the Qt platform plugin" in result.stderr):
        pytest.skip(f"Qt cannot use the X server {x_display} (xcb plugin or libraries missing)")
    assert result.returncode == 0, result.stdout + result.stderr
    print(result.stdout)

    from PySide6.QtGui import QImage

    from seedvr_desktop.ui.image import array_from_qimage

    for name in EXPECTED:
        path = out_dir / f"{name}.png"
        assert path.is_file(), f"{path} was not written"
        pixels = array_from_qimage(QImage(str(path)))
        assert pixels.shape[0] > 200 and pixels.shape[1] > 300
        assert pixels.std() > 10, f"{name} is a blank picture"
    window = array_from_qimage(QImage(str(out_dir / "01-split.png")))
    assert window.shape[1] >= 1200, "the main window screenshot is the whole window"
    centre = window[window.shape[0] // 4: window.shape[0] // 2,
                    window.shape[1] // 4: window.shape[1] * 3 // 4]
    assert np.unique(centre.reshape(-1, 3), axis=0).shape[0] > 100, "the viewer shows a picture"
