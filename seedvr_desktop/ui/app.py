"""GUI entry point: `seedvr-desktop` with no subcommand lands here.

Start-up is kept cheap: nothing here imports torch or PyAV, so the window is on screen in well
under two seconds; engines and decoders load lazily on their own threads.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)

APP_DISPLAY_NAME = "SeedVR Desktop"


def create_application(argv: Sequence[str] | None = None):  # -> QApplication
    """The process-wide QApplication, created once with HiDPI rounding and the dark theme."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QIcon
    from PySide6.QtWidgets import QApplication

    from seedvr_desktop.resources import resource_path
    from seedvr_desktop.ui.compat import pin_shared_singletons
    from seedvr_desktop.ui.theme import apply_dark_theme

    pin_shared_singletons()  # before any thread starts; see compat.py for the binding defect
    existing = QApplication.instance()
    if existing is not None:
        return existing
    # Fractional scale factors (125 %, 150 %) keep their exact value instead of being rounded,
    # so video frames are not resampled twice on HiDPI screens. Must precede the app object.
    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
        Qt.HighDpiScaleFactorRoundingPolicy.PassThrough
    )
    app = QApplication(list(argv) if argv is not None else sys.argv[:1])
    app.setApplicationName("seedvr-desktop")
    app.setApplicationDisplayName(APP_DISPLAY_NAME)
    app.setOrganizationName("seedvr-desktop")
    icon = resource_path("icons/app.svg")
    if icon.exists():
        app.setWindowIcon(QIcon(str(icon)))
    apply_dark_theme(app)
    return app


def install_excepthook() -> None:
    """An exception escaping a slot is a bug: log its traceback, tell the user in one line.

    Qt would otherwise print the traceback to a console the user never sees, and the action
    would silently do nothing.
    """
    from seedvr_desktop.log import log_file

    def hook(kind, value, tb) -> None:
        log.error("unhandled error", exc_info=(kind, value, tb))
        if issubclass(kind, KeyboardInterrupt):
            return
        from PySide6.QtWidgets import QApplication

        from seedvr_desktop.ui import dialogs

        if QApplication.instance() is not None:
            dialogs.show_error(QApplication.activeWindow(), "Internal error",
                               f"{value} (details in {log_file()})")

    sys.excepthook = hook


NO_DISPLAY_MESSAGE = "no display found; the command-line restore works without one"


def display_available(env: dict[str, str] | None = None, platform: str | None = None) -> bool:
    """Whether Qt can open a window here, checked before any QApplication exists.

    Without one, Qt's xcb plugin aborts the process (SIGABRT, "Reinstalling the application may
    fix this problem"), which no Python code can catch. Windows and macOS always have one; on
    other systems a platform chosen by QT_QPA_PLATFORM (offscreen, vnc, ...) is taken at its
    word, and otherwise a Wayland or X11 display must be named (a local X display's socket must
    exist)."""
    import os

    env = dict(os.environ) if env is None else env
    platform = sys.platform if platform is None else platform
    if platform.startswith(("win", "darwin")):
        return True
    chosen = env.get("QT_QPA_PLATFORM", "").strip()
    if chosen and not chosen.startswith(("xcb", "wayland")):
        return True
    if env.get("WAYLAND_DISPLAY") and not chosen.startswith("xcb"):
        return True
    display = env.get("DISPLAY", "")
    if not display:
        return False
    if display.startswith(":"):  # a local display: its socket shows whether a server runs
        number = display[1:].split(".")[0]
        if number.isdigit():
            return os.path.exists(f"/tmp/.X11-unix/X{number}")
    return True


def run_app(argv: Sequence[str] | None = None) -> int:
    """Show the main window; media or project paths on the command line are opened."""
    from seedvr_desktop.log import setup_logging

    args = list(argv) if argv is not None else sys.argv[1:]
    setup_logging()
    if not display_available():
        print(f"error: {NO_DISPLAY_MESSAGE}", file=sys.stderr)
        return 1
    app = create_application([sys.argv[0] if sys.argv else "seedvr-desktop"])
    install_excepthook()

    from seedvr_desktop.ui.main_window import MainWindow

    window = MainWindow()
    window.show()
    projects = [a for a in args if a.endswith(".svrproj")]
    media: list[str | Path] = [a for a in args
                               if not a.startswith("-") and not a.endswith(".svrproj")]
    if projects:
        window.open_project(projects[0])
    if media:
        window.open_media(media)
    return int(app.exec())
