"""`seedvr-desktop --self-test`: prove that a build can show its window and a before/after frame.

Why it exists: a frozen app fails in ways the test suite never sees (a Qt plugin, a PyAV codec
library or a data file left out of the bundle). The self-test walks the path a user takes first:
open the main window, import a clip, look at a frame, restore a preview with the `classic` engine
(or SEEDVR_DESKTOP_SELFTEST_ENGINE) and draw the split compare. It then reads the viewer's pixels
back and checks that the original is left of the divider and the restored picture right of it.
Last, torch is loaded and runs a 3-D convolution and attention on the device the SeedVR engines
would use (the classic engine never loads torch, so nothing else would notice a broken torch).

It needs no display (Qt's offscreen platform unless QT_QPA_PLATFORM says otherwise), no network
and no model files; the clip is generated here. Settings, autosaves and recent projects go to a
temporary folder so the user's own configuration is never touched.

Output: one line on stdout when it passes (with the start-up time: process start to the main
window being exposed), one line on stderr and exit status 1 when it fails. A watchdog ends a
self-test that hangs (a modal dialog, a dead worker) with a failure line too. With
SEEDVR_DESKTOP_STARTUP_PROBE=1 it stops once the window is shown, for repeated start-up timing.

`seedvr_desktop.ui` (and with it Qt) is imported inside `run_self_test` only, so importing this
module stays cheap.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

# The clip: small enough to restore in a few seconds on one core, large enough to fill a pane.
CLIP_SIZE = (128, 96)  # (width, height)
CLIP_FRAMES = 24
CLIP_FPS = 24
SHOWN_FRAME = 10  # the frame the compare is drawn for
DEFAULT_TIMEOUT_S = 180.0  # whole self-test; SEEDVR_DESKTOP_SELFTEST_TIMEOUT overrides
MATCH_TOLERANCE = 14.0  # mean absolute difference (0..255) for "the viewer shows this picture"
ENV_T0 = "SEEDVR_DESKTOP_STARTUP_T0"  # wall-clock process start (time.time()) given by a launcher
ENV_SCREENSHOT = "SEEDVR_DESKTOP_SELFTEST_SCREENSHOT"  # where to save the compare frame (PNG)
ENV_TIMEOUT = "SEEDVR_DESKTOP_SELFTEST_TIMEOUT"
# Set to 1: stop once the window is shown (start-up timing runs, no clip, no preview).
ENV_STARTUP_ONLY = "SEEDVR_DESKTOP_STARTUP_PROBE"
# The preview engine; `classic` needs no download. A GPU build can name a SeedVR engine here.
ENV_ENGINE = "SEEDVR_DESKTOP_SELFTEST_ENGINE"
DEFAULT_ENGINE = "classic"

_IMPORTED_AT = time.time()


class SelfTestFailure(Exception):
    """A check of the self-test did not hold; the message is the one line the user sees."""


@dataclass
class _Progress:
    """What the self-test is doing now: the watchdog names it when it gives up."""

    stage: str = "starting"
    timings: dict[str, float] = field(default_factory=dict)


def process_age() -> tuple[float, str]:
    """Seconds since this process started, and how that was measured.

    A launcher that knows the real start (a shell script taking the time just before it runs the
    app) passes it in SEEDVR_DESKTOP_STARTUP_T0; that includes a frozen app's bootloader. Without
    it Linux's /proc gives the process start to 10 ms; elsewhere the count starts when this module
    was imported, which leaves out the interpreter's own start-up.
    """
    given = os.environ.get(ENV_T0)
    if given:
        try:
            return time.time() - float(given), "from launch"
        except ValueError:
            pass
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        start_ticks = int(fields[19])  # field 22 of stat(5); fields[0] is field 3
        with open("/proc/uptime", encoding="ascii") as f:
            uptime = float(f.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK"), "from process start"
    except (OSError, ValueError, IndexError, AttributeError):
        return time.time() - _IMPORTED_AT, "from self-test import"


def make_test_clip(path: Path) -> Path:
    """Write a short H.264 clip of smooth, vivid gradients that drift a little each frame.

    Smooth content survives compression and the classic engine almost unchanged, so the viewer's
    pixels can be compared with the decoded frames; vivid colours cannot be mistaken for the
    viewer's dark background or its "no preview" placeholder.
    """
    import av

    w, h = CLIP_SIZE
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    with av.open(os.fspath(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=CLIP_FPS)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.options = {"crf": "16", "preset": "veryfast"}
        for i in range(CLIP_FRAMES):
            shift = 2.0 * i
            rgb = np.empty((h, w, 3), np.float32)  # (H, W, 3)
            rgb[..., 0] = 30 + 200 * ((xs + shift) % w) / w
            rgb[..., 1] = 40 + 180 * ys / h
            rgb[..., 2] = 220 - 160 * xs / w
            frame = av.VideoFrame.from_ndarray(rgb.astype(np.uint8), format="rgb24")
            frame = frame.reformat(format="yuv420p")
            frame.pts = i
            frame.time_base = Fraction(1, CLIP_FPS)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def run_self_test() -> int:
    """Run every check; 0 when all pass, else 1 after printing one line to stderr."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    progress = _Progress()
    timeout = _timeout_seconds()
    watchdog = threading.Timer(timeout, _give_up, args=(progress, timeout))
    watchdog.daemon = True
    watchdog.start()
    saved_env = {k: os.environ.get(k) for k in ("SEEDVR_DESKTOP_CONFIG_DIR",
                                                "SEEDVR_DESKTOP_DATA_DIR")}
    try:
        # ignore_cleanup_errors: Windows refuses to delete a clip a decoder thread still holds.
        with tempfile.TemporaryDirectory(prefix="seedvr-selftest-",
                                         ignore_cleanup_errors=True) as tmp:
            folder = Path(tmp)
            os.environ["SEEDVR_DESKTOP_CONFIG_DIR"] = str(folder / "config")
            os.environ["SEEDVR_DESKTOP_DATA_DIR"] = str(folder / "data")
            summary = _run(folder, progress)
    except SelfTestFailure as exc:
        print(f"self-test failed: {exc}", file=sys.stderr, flush=True)
        return 1
    except Exception as exc:  # anything else is a failure of the build under test, not a crash
        first = str(exc).splitlines()[0] if str(exc) else ""
        print(f"self-test failed while {progress.stage}: {type(exc).__name__}: {first}",
              file=sys.stderr, flush=True)
        return 1
    finally:
        watchdog.cancel()
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    print(summary, flush=True)
    return 0


def _timeout_seconds() -> float:
    try:
        return max(0.1, float(os.environ.get(ENV_TIMEOUT, DEFAULT_TIMEOUT_S)))
    except ValueError:
        return DEFAULT_TIMEOUT_S


def _give_up(progress: _Progress, timeout: float) -> None:
    """Watchdog: a hung GUI cannot be unwound from another thread, so end the process."""
    print(f"self-test failed: timed out after {timeout:g} s while {progress.stage}",
          file=sys.stderr, flush=True)
    os._exit(1)


def _run(folder: Path, progress: _Progress) -> str:
    progress.stage = "starting Qt"
    from seedvr_desktop.ui.app import create_application

    app = create_application([sys.argv[0] if sys.argv else "seedvr-desktop"])
    progress.stage = "building the main window"
    from seedvr_desktop.ui.main_window import MainWindow

    window = MainWindow(settings_dir=folder / "config")
    try:
        window.resize(1280, 800)
        window.show()
        _wait(app, progress, "showing the main window", 20.0,
              lambda: window.windowHandle() is not None and window.windowHandle().isExposed())
        shown_after, basis = process_age()
        if os.environ.get(ENV_STARTUP_ONLY) == "1":
            return f"self-test passed: window shown {shown_after:.2f} s {basis} (start-up only)"
        started = time.monotonic()
        _import_clip(app, window, progress, folder)
        imported = time.monotonic()
        shot = _render_compare(app, window, progress)
        rendered = time.monotonic()
        target = os.environ.get(ENV_SCREENSHOT)
        if target:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            if not shot.save(target):
                raise SelfTestFailure(f"could not save the screenshot to {target}")
        runtime = check_model_runtime(progress)
        ran = time.monotonic()
    finally:
        failed_while = progress.stage  # kept for the failure line if an exception is on its way
        progress.stage = "closing the main window"
        window.shutdown()
        window.hide()
        window.deleteLater()
        app.processEvents()
        progress.stage = failed_while
    return (f"self-test passed: window shown {shown_after:.2f} s {basis}; clip imported in "
            f"{imported - started:.2f} s; compare frame rendered in {rendered - imported:.2f} s; "
            f"{runtime} in {ran - rendered:.2f} s")


def check_model_runtime(progress: _Progress) -> str:
    """Load torch the way the SeedVR engines do and run their two core operations once.

    The classic engine never touches torch, so without this a bundle with a broken torch (a
    missing library, a CUDA build whose libraries were left out) would pass every other check.
    Runs after the window is shown, as in the app, where torch loads lazily.
    """
    progress.stage = "loading torch"
    import torch

    from seedvr_desktop.engine import device as dev

    choice = dev.resolve("auto", "auto")
    progress.stage = f"running torch on {choice.label}"
    gen = torch.Generator().manual_seed(0)
    video = torch.randn(1, 4, 5, 16, 16, generator=gen)  # (B, C, T, H, W)
    kernel = torch.randn(8, 4, 3, 3, 3, generator=gen)  # (C_out, C_in, kT, kH, kW)
    with torch.no_grad():
        video = video.to(choice.device, choice.dtype)
        kernel = kernel.to(choice.device, choice.dtype)
        features = torch.nn.functional.conv3d(video, kernel, padding=1)  # (1, 8, 5, 16, 16)
        tokens = features.flatten(2).transpose(1, 2).unsqueeze(1)  # (B, heads=1, L=1280, D=8)
        out = torch.nn.functional.scaled_dot_product_attention(tokens, tokens, tokens)
        finite = bool(torch.isfinite(out.float()).all())
    if out.shape != (1, 1, 1280, 8) or not finite:
        raise SelfTestFailure(f"torch on {choice.label} gave a wrong result")
    return f"torch {torch.__version__} ran on {choice.label} ({choice.precision})"


def _import_clip(app: Any, window: Any, progress: _Progress, folder: Path) -> None:
    from seedvr_desktop.project.commands import SetRestoreDefaults

    progress.stage = "making a test clip"
    clip = make_test_clip(folder / "selftest.mp4")
    engine = os.environ.get(ENV_ENGINE) or DEFAULT_ENGINE
    progress.stage = f"choosing the {engine} engine"
    session = window.session
    if not session.push(SetRestoreDefaults(replace(session.project.restore, engine=engine))):
        raise SelfTestFailure(f"the project refused the {engine} engine")
    window.open_media([clip])
    _wait(app, progress, "importing the clip", 30.0, lambda: len(session.project.clips) == 1)
    clip_id = session.project.clips[0].id
    window.playback.seek_frame(clip_id, SHOWN_FRAME)
    viewer = window.viewer
    _wait(app, progress, "decoding a frame for the viewer", 30.0,
          lambda: _shown_index(window) == SHOWN_FRAME and viewer.original_image() is not None)


def _shown_index(window: Any) -> int | None:
    shown = window.playback.shown
    return shown.index if shown is not None and shown.full_res else None


def _render_compare(app: Any, window: Any, progress: _Progress) -> Any:
    """Restore a preview, draw the split compare and check its pixels; returns the QPixmap."""
    from seedvr_desktop.ui.image import array_from_qimage

    failures: list[str] = []
    window.preview.preview_failed.connect(failures.append)
    stage = f"restoring a preview with the {window.session.project.restore.engine} engine"
    progress.stage = stage
    if window.request_preview() is None:
        raise SelfTestFailure("the Preview action did not start a job")
    _wait(app, progress, stage, 120.0,
          lambda: failures or (window.viewer.has_restored() and not window.preview.busy()))
    if failures:
        raise SelfTestFailure(f"the preview failed: {failures[0]}")

    progress.stage = "drawing the split compare"
    viewer = window.viewer
    viewer.set_mode("split")
    viewer.set_split(0.5)
    viewer.fit()
    _settle(app)
    shot = viewer.grab()
    pixels = array_from_qimage(shot.toImage())  # (H, W, 3) uint8, in device pixels
    original = array_from_qimage(viewer.original_image())
    restored = array_from_qimage(viewer.restored_image())
    rect = viewer.image_rect().toRect()
    check_split_frame(pixels, (viewer.width(), viewer.height()), original, restored,
                      (rect.left(), rect.top(), rect.width(), rect.height()), viewer.split)
    return shot


def check_split_frame(shot: np.ndarray, widget_size: tuple[int, int], original: np.ndarray,
                      restored: np.ndarray, image_rect: tuple[int, int, int, int],
                      split: float) -> None:
    """Raise SelfTestFailure unless `shot` shows `original` left of the divider, `restored` right.

    shot: (H, W, 3) grab of the viewer (any device pixel ratio); image_rect: (x, y, w, h) where
    the pictures are drawn, in widget pixels. Labels and the frame counter sit at the top and
    bottom edges, so only a band through the middle of the picture is compared.
    """
    import cv2

    width, height = widget_size
    if shot.shape[:2] != (height, width):  # HiDPI: the grab has more pixels than the widget
        shot = cv2.resize(shot, (width, height), interpolation=cv2.INTER_AREA)
    x, y, w, h = image_rect
    if w < 40 or h < 40:
        raise SelfTestFailure(f"the picture is drawn at {w}x{h}, too small to check")
    divider = round(split * width)
    rows = slice(max(0, y + h * 2 // 5), min(height, y + h * 4 // 5))
    sides = {"original (left of the divider)": (original, max(0, x + 8), divider - 15),
             "restored (right of the divider)": (restored, divider + 15, min(width, x + w) - 8)}
    for name, (picture, x0, x1) in sides.items():
        if x1 - x0 < 10:
            raise SelfTestFailure(f"no room to check the {name} side")
        expected = cv2.resize(picture, (w, h), interpolation=cv2.INTER_LINEAR)  # (h, w, 3)
        want = expected[rows.start - y:rows.stop - y, x0 - x:x1 - x].astype(np.float32)
        got = shot[rows, x0:x1].astype(np.float32)
        if float(want.std()) < 20.0:
            raise SelfTestFailure(f"the {name} picture is flat; the test clip did not decode")
        diff = float(np.abs(got - want).mean())
        if diff > MATCH_TOLERANCE:
            raise SelfTestFailure(f"the viewer does not show the {name} picture "
                                  f"(mean difference {diff:.1f} of 255)")


def _settle(app: Any, seconds: float = 0.15) -> None:
    """Let queued paints and layout changes run."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def _wait(app: Any, progress: _Progress, stage: str, timeout: float,
          condition: Callable[[], object]) -> None:
    """Process events until `condition` holds; an error box the app opened fails at once."""
    progress.stage = stage
    end = time.monotonic() + timeout
    while True:
        app.processEvents()
        if condition():
            return
        error = _visible_error(app)
        if error:
            raise SelfTestFailure(f"while {stage} the app reported: {error}")
        if time.monotonic() > end:
            raise SelfTestFailure(f"timed out after {timeout:g} s while {stage}")
        time.sleep(0.01)


def _visible_error(app: Any) -> str:
    """Text of an error message box the app has open (see ui.dialogs.show_error), else ""."""
    for widget in app.topLevelWidgets():
        if widget.objectName() == "errorMessage" and widget.isVisible():
            text = " ".join(widget.text().split())
            return f"{widget.windowTitle()}: {text}"
    return ""
