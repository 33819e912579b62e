"""Screenshots of the main window in each compare mode, under a real X server.

    Xvfb :99 -screen 0 1600x1000x24 &
    DISPLAY=:99 python bench/screenshots.py

PNG files go to $SEEDVR_SCREENSHOT_DIR (default <repo>/screenshots, git-ignored). The clip is
made here: a faded, grainy, soft 4:3 "home movie" so the classic restorer visibly changes it.
Prints one line per file with what it shows.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def make_home_movie(path: Path, frames: int = 60, size: tuple[int, int] = (640, 480)) -> Path:
    """Soft, noisy, colour-faded moving scene with a stereo AAC track."""
    import av
    import cv2
    import numpy as np

    rng = np.random.default_rng(7)
    w, h = size
    ys = np.mgrid[0:h, 0:w][0].astype(np.float32)
    sky = np.stack([150 + 40 * ys / h, 170 + 30 * ys / h, 210 - 20 * ys / h], -1)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=Fraction(25))
        video.width, video.height, video.pix_fmt = w, h, "yuv420p"
        video.options = {"crf": "30", "preset": "veryfast"}
        audio = out.add_stream("aac", rate=48000)
        audio.layout = "stereo"
        for i in range(frames):
            img = sky.astype(np.uint8)
            img[int(h * 0.62):] = (70, 120, 60)  # lawn
            cx = int(120 + i * 6)
            cv2.circle(img, (cx, int(h * 0.55)), 50, (200, 60, 50), -1)  # a red ball
            cv2.rectangle(img, (380, 170), (520, 300), (230, 220, 190), -1)  # a house
            cv2.rectangle(img, (430, 230), (470, 300), (90, 60, 40), -1)
            cv2.putText(img, "1994", (30, 60), cv2.FONT_HERSHEY_SIMPLEX, 1.4, (255, 250, 220), 3)
            img = cv2.GaussianBlur(img, (0, 0), 2.2).astype(np.float32)
            img = img * 0.75 + np.array([40, 30, 10], np.float32)  # faded, warm cast
            img += rng.normal(0, 12, (h, w, 1))
            frame = av.VideoFrame.from_ndarray(np.clip(img, 0, 255).astype(np.uint8),
                                               format="rgb24")
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        samples = np.zeros((2, 48000 * frames // 25), np.float32)
        samples[:] = 0.1 * np.sin(np.arange(samples.shape[1]) * 2 * np.pi * 440 / 48000)
        aframe = av.AudioFrame.from_ndarray(samples, format="fltp", layout="stereo")
        aframe.sample_rate = 48000
        for packet in audio.encode(aframe):
            out.mux(packet)
        for packet in audio.encode():
            out.mux(packet)
    return path


def wait(app, condition, timeout: float = 30.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        app.processEvents()
        if condition():
            return True
        time.sleep(0.01)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--offscreen", action="store_true",
                        help="render without an X server (for a quick look; not the real thing)")
    args = parser.parse_args(argv)
    if args.offscreen:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    elif not os.environ.get("DISPLAY"):
        print("error: no X server (DISPLAY is not set); start Xvfb or pass --offscreen",
              file=sys.stderr)
        return 2
    else:
        os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    out_dir = Path(os.environ.get("SEEDVR_SCREENSHOT_DIR") or REPO / "screenshots")
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="seedvr-shots-"))
    os.environ["SEEDVR_DESKTOP_CONFIG_DIR"] = str(work / "config")
    sys.path.insert(0, str(REPO))

    import dataclasses

    from seedvr_desktop.project.commands import SetExportSettings, SetRestoreDefaults
    from seedvr_desktop.ui.app import create_application
    from seedvr_desktop.ui.main_window import MainWindow
    from seedvr_desktop.ui.widgets.viewer import CompareMode

    clip = make_home_movie(work / "garden-party-1994.mp4")
    app = create_application([])
    window = MainWindow()
    window.resize(1560, 940)
    window.show()
    wait(app, window.isVisible)
    window.open_media([clip])
    if not wait(app, lambda: window.session.project.clips):
        print("error: the clip was not imported", file=sys.stderr)
        return 1
    session = window.session
    span = window.playback.clips[0]
    window.edits.add_caption(span.clip_id, 0.4)
    window.edits.edit_caption_text(span.clip_id, 0, "Grandma's 80th, 1994")

    # A finished export in the queue (the 'none' engine: fast), then classic for the preview.
    export = dataclasses.replace(session.project.export, output_folder=str(work / "exports"))
    session.push(SetExportSettings(export))
    session.push(SetRestoreDefaults(dataclasses.replace(session.project.restore, engine="none")))
    window.exports.queue()
    wait(app, lambda: all(e.status in ("done", "failed")
                          for e in window.queue_panel.entries.values()), 120)
    session.push(SetRestoreDefaults(dataclasses.replace(session.project.restore,
                                                        engine="classic")))
    window.playback.seek_frame(span.clip_id, 30)
    window.request_preview()
    wait(app, lambda: not window.preview.busy(), 120)
    note = ""
    if not window.viewer.has_restored():
        # The project's settings were refused by the engine (see the message box); show the
        # classic engine's own defaults so the compare modes still have a restored side.
        from seedvr_desktop.engine.preview import PreviewRequest

        for box in app.topLevelWidgets():
            if box.objectName() == "errorMessage" and box.isVisible():
                note = box.text()
                box.close()
        from seedvr_desktop.ui.timeline_model import restore_key

        done: list = []
        job = window.host.submit(PreviewRequest(clip, center=30, engine="classic"))
        window.host.worker.chunk_ready.connect(
            lambda j, first, frames: done.append((first, frames)) if j == job else None)
        wait(app, lambda: done, 120)
        project = session.project
        first, frames = done[0]
        window.preview.cache.add(str(clip), restore_key(project, project.clips[0]), first, frames)
        window._on_preview_ranges_changed()
    window.playback.seek_frame(span.clip_id, 30)
    wait(app, lambda: window.viewer.has_restored(), 10)
    window.timeline.zoom_to_fit()

    shots: list[tuple[str, str]] = []

    def shoot(name: str, what: str, widget=None) -> None:
        wait(app, lambda: False, 0.4)
        target = widget or window
        screen = target.screen()
        image = screen.grabWindow(target.winId()) if not args.offscreen else target.grab()
        if image.isNull() or image.width() < 10:
            image = target.grab()
        path = out_dir / f"{name}.png"
        image.save(str(path))
        shots.append((str(path), what))

    viewer = window.viewer
    viewer.set_mode(CompareMode.SPLIT)
    viewer.set_split(0.5)
    shoot("01-split", "split wipe: original left, classic-restored right, divider in the middle")
    viewer.set_mode(CompareMode.SIDE_BY_SIDE)
    shoot("02-side-by-side", "side by side: original and restored panes with the same framing")
    viewer.set_mode(CompareMode.TOGGLE)
    shoot("03-toggle-restored", "toggle mode: the restored frame")
    viewer.set_show_original(True)
    shoot("04-toggle-held-original", "toggle mode with B held: the original frame")
    viewer.set_show_original(False)
    viewer.set_mode(CompareMode.ORIGINAL)
    shoot("05-original", "original only")
    viewer.set_mode(CompareMode.SPLIT)
    viewer.set_split(0.4)
    viewer.zoom_by(3.0, viewer.rect().center().toPointF())
    shoot("06-split-zoomed", "split at 40 % zoomed 3x around the centre: both sides zoom together")
    viewer.fit()

    from seedvr_desktop.ui.widgets.export_dialog import ExportDialog
    from seedvr_desktop.ui.widgets.settings_dialog import SettingsDialog

    dialog = ExportDialog(session.project.export, has_selection=True, parent=window)
    dialog.show()
    shoot("07-export-dialog", "export dialog: presets, captions and audio modes", dialog)
    dialog.close()
    settings = SettingsDialog(window.settings, ["auto", "none", "classic"], parent=window)
    settings.show()
    shoot("08-settings-dialog", "settings: models folder, device, precision, memory, models",
          settings)
    settings.close()

    window.shutdown()
    shutil.rmtree(work, ignore_errors=True)
    for path, what in shots:
        print(f"{path}: {what}")
    if note:
        print(f"note: the project's settings were refused for the preview: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
