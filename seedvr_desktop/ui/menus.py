"""Menu bar of the main window: built from a table so main_window.py stays a wiring file."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import cast

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu

Slot = Callable[[], object]


def add_action(menu: QMenu, text: str, slot: Slot,
               shortcut: QKeySequence | QKeySequence.StandardKey | str | None = None,
               *, tip: str = "") -> QAction:
    action = QAction(text, menu)
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    if tip:
        action.setStatusTip(tip)
    action.triggered.connect(lambda _checked=False: slot())
    menu.addAction(action)
    return action


class MenuBar:
    """Creates the menus; `recent_menu` is refilled when the recent list changes."""

    def __init__(self, window: QMainWindow, handlers: dict[str, Slot]) -> None:
        bar = window.menuBar()
        h = handlers
        file_menu = bar.addMenu("&File")
        add_action(file_menu, "&New Project", h["new"], QKeySequence.StandardKey.New)
        add_action(file_menu, "&Open Project…", h["open"], QKeySequence.StandardKey.Open)
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self._open_recent = cast(Callable[[str], object], h["open_recent"])  # takes the path
        add_action(file_menu, "&Save", h["save"], QKeySequence.StandardKey.Save)
        add_action(file_menu, "Save &As…", h["save_as"], QKeySequence.StandardKey.SaveAs)
        file_menu.addSeparator()
        add_action(file_menu, "&Import Media…", h["import"], "Ctrl+I")
        add_action(file_menu, "E&xport…", h["export"], "Ctrl+E")
        file_menu.addSeparator()
        add_action(file_menu, "Se&ttings…", h["settings"], QKeySequence.StandardKey.Preferences)
        add_action(file_menu, "&Quit", window.close, QKeySequence.StandardKey.Quit)

        self.edit_menu = bar.addMenu("&Edit")
        edit = self.edit_menu
        # The undo stack makes these two (their text follows the next step to undo/redo).
        undo, redo = cast(QAction, h["undo_action"]()), cast(QAction, h["redo_action"]())
        undo.setShortcut(QKeySequence.StandardKey.Undo)
        redo.setShortcut(QKeySequence.StandardKey.Redo)
        edit.addAction(undo)
        edit.addAction(redo)
        edit.addSeparator()
        add_action(edit, "Add Caption at Playhead\tC", h["add_caption"])
        self.import_captions = add_action(
            edit, "Import &Captions…", h["import_captions"],
            tip="Add the captions of an .srt, .vtt or .ass file to the selected clip")
        add_action(edit, "Remove Selected Clip", h["remove_clip"], "Shift+Del")
        add_action(edit, "Move Clip Earlier", h["clip_earlier"], "Alt+Left")
        add_action(edit, "Move Clip Later", h["clip_later"], "Alt+Right")
        add_action(edit, "Set In Point\tI", h["mark_in"])
        add_action(edit, "Set Out Point\tO", h["mark_out"])

        play = bar.addMenu("&Playback")
        add_action(play, "Play / Pause\tSpace", h["play"])
        add_action(play, "Play Backward\tJ", h["shuttle_back"])
        add_action(play, "Stop\tK", h["stop"])
        add_action(play, "Play Forward (repeat for faster)\tL", h["shuttle_fwd"])
        add_action(play, "Previous Frame\tLeft", h["prev"])
        add_action(play, "Next Frame\tRight", h["next"])
        add_action(play, "Preview Restoration Here\tP", h["preview"])

        self.view_menu = bar.addMenu("&View")
        view = self.view_menu
        add_action(view, "Split Compare", h["mode_split"], "Ctrl+1")
        add_action(view, "Side by Side", h["mode_side"], "Ctrl+2")
        add_action(view, "Toggle (hold B for original)", h["mode_toggle"], "Ctrl+3")
        add_action(view, "Original Only", h["mode_original"], "Ctrl+4")
        view.addSeparator()
        add_action(view, "Fit\tF", h["fit"])
        add_action(view, "Actual Pixels (1:1)\t1", h["actual"])
        add_action(view, "Zoom Timeline to Fit", h["timeline_fit"], "Ctrl+0")
        view.addSeparator()

    def add_dock_toggles(self, window: QMainWindow) -> None:
        from PySide6.QtWidgets import QDockWidget

        for dock in window.findChildren(QDockWidget):
            self.view_menu.addAction(dock.toggleViewAction())

    def set_recent(self, paths: list[str]) -> None:
        self.recent_menu.clear()
        for path in paths:
            add_action(self.recent_menu, Path(path).name, partial(self._open_recent, path),
                       tip=path)
        self.recent_menu.setEnabled(bool(paths))
