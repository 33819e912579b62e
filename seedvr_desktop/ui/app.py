"""GUI entry point: `seedvr-desktop` with no subcommand lands here.

Start-up is kept cheap: nothing here imports torch or PyAV, so the window is on screen in well
under two seconds; engines and decoders load lazily on their own threads.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

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


def run_app(argv: Sequence[str] | None = None) -> int:
    """Show the main window; media or project paths on the command line are opened."""
    from seedvr_desktop.log import setup_logging

    args = list(argv) if argv is not None else sys.argv[1:]
    setup_logging()
    app = create_application([sys.argv[0] if sys.argv else "seedvr-desktop"])
    install_excepthook()

    from seedvr_desktop.ui.main_window import MainWindow

    window = MainWindow()
    window.show()
    projects = [a for a in args if a.endswith(".svrproj")]
    media = [a for a in args if not a.startswith("-") and not a.endswith(".svrproj")]
    if projects:
        window.open_project(projects[0])
    if media:
        window.open_media(media)
    return int(app.exec())
