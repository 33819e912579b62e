"""Dark Fusion look shared by every window of the app.

Video is judged by eye, so the chrome around it is a neutral dark grey that neither tints nor
out-shines the picture; the accent colour is reused by the timeline (playhead, preview ranges).
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

ACCENT = QColor(255, 202, 40)  # playhead, divider handle
PREVIEW_RANGE = QColor(79, 195, 247)  # restored-preview ranges on the timeline
WINDOW_BG = QColor(45, 47, 51)
BASE_BG = QColor(30, 32, 36)
TEXT = QColor(222, 224, 228)
DISABLED_TEXT = QColor(120, 122, 128)


def dark_palette() -> QPalette:
    """Palette for the Fusion style with readable disabled states."""
    pal = QPalette()
    roles = {
        QPalette.ColorRole.Window: WINDOW_BG,
        QPalette.ColorRole.WindowText: TEXT,
        QPalette.ColorRole.Base: BASE_BG,
        QPalette.ColorRole.AlternateBase: QColor(38, 40, 44),
        QPalette.ColorRole.ToolTipBase: QColor(20, 20, 22),
        QPalette.ColorRole.ToolTipText: TEXT,
        QPalette.ColorRole.Text: TEXT,
        QPalette.ColorRole.Button: QColor(53, 55, 60),
        QPalette.ColorRole.ButtonText: TEXT,
        QPalette.ColorRole.BrightText: QColor(255, 90, 90),
        QPalette.ColorRole.Link: PREVIEW_RANGE,
        QPalette.ColorRole.Highlight: QColor(42, 130, 218),
        QPalette.ColorRole.HighlightedText: QColor(255, 255, 255),
        QPalette.ColorRole.PlaceholderText: DISABLED_TEXT,
    }
    for role, colour in roles.items():
        pal.setColor(role, colour)
    for role in (
        QPalette.ColorRole.Text,
        QPalette.ColorRole.ButtonText,
        QPalette.ColorRole.WindowText,
    ):
        pal.setColor(QPalette.ColorGroup.Disabled, role, DISABLED_TEXT)
    return pal


def apply_dark_theme(app: QApplication) -> None:
    """Switch the whole application to the dark Fusion theme."""
    app.setStyle("Fusion")
    app.setPalette(dark_palette())
    app.setStyleSheet(
        "QToolTip { color: #dee0e4; background-color: #141416; border: 1px solid #3c3f44; }"
        "QDockWidget::title { padding: 4px; background: #26282c; }"
    )
