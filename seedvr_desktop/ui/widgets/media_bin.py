"""The media bin: imported files with a thumbnail, duration, resolution and codec.

Dropping files or whole folders here (or anywhere on the window) imports them; the bin itself
only reports the paths, the import (probing off the GUI thread, rejecting non-media with a
message) belongs to the main window's importer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QIcon, QImage, QPainter, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QListWidget, QListWidgetItem, QWidget

from seedvr_desktop.ui.timecode import clock

ICON_SIZE = QSize(112, 63)
MEDIA_ID_ROLE = Qt.ItemDataRole.UserRole
PATH_ROLE = Qt.ItemDataRole.UserRole + 1


@dataclass(frozen=True)
class BinEntry:
    """What one row shows; built by the main window from the project's media."""

    media_id: str
    path: str
    duration: float | None
    width: int | None
    height: int | None
    codec: str | None
    is_image: bool = False
    missing: bool = False

    def details(self) -> str:
        parts: list[str] = []
        if self.missing:
            parts.append("MISSING — relink")
        if self.is_image:
            parts.append("image")
        elif self.duration is not None:
            parts.append(clock(self.duration))
        if self.width and self.height:
            parts.append(f"{self.width}×{self.height}")
        if self.codec:
            parts.append(self.codec)
        return " · ".join(parts)


def local_paths(event: QDragEnterEvent | QDropEvent) -> list[str]:
    """Local file paths carried by a drag from the file manager (URLs of other kinds ignored)."""
    mime = event.mimeData()
    if not mime.hasUrls():
        return []
    return [url.toLocalFile() for url in mime.urls() if url.isLocalFile()]


class MediaBinWidget(QListWidget):
    """List of media; emits `files_dropped` and `media_activated` (double-click)."""

    files_dropped = Signal(list)  # list[str]
    media_activated = Signal(str)  # media id

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("mediaBin")
        self.setAcceptDrops(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DropOnly)
        self.setIconSize(ICON_SIZE)
        self.setSpacing(2)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setToolTip("Drop video files or folders here")
        self.itemDoubleClicked.connect(self._on_item_double_clicked)
        self._placeholder = _placeholder_icon()

    def set_entries(self, entries: list[BinEntry]) -> None:
        """Show exactly `entries`, keeping thumbnails already loaded."""
        icons = {self.item(i).data(MEDIA_ID_ROLE): self.item(i).icon() for i in range(self.count())}
        self.clear()
        for entry in entries:
            item = QListWidgetItem(f"{Path(entry.path).name}\n{entry.details()}")
            item.setData(MEDIA_ID_ROLE, entry.media_id)
            item.setData(PATH_ROLE, entry.path)
            item.setToolTip(entry.path)
            item.setIcon(icons.get(entry.media_id) or self._placeholder)
            if entry.missing:
                item.setForeground(QColor(255, 120, 120))
            self.addItem(item)

    def set_thumbnail(self, path: str, image: QImage) -> None:
        icon = QIcon(QPixmap.fromImage(image))
        for i in range(self.count()):
            if self.item(i).data(PATH_ROLE) == path:
                self.item(i).setIcon(icon)

    def media_ids(self) -> list[str]:
        return [self.item(i).data(MEDIA_ID_ROLE) for i in range(self.count())]

    def selected_media_ids(self) -> list[str]:
        return [item.data(MEDIA_ID_ROLE) for item in self.selectedItems()]

    def _on_item_double_clicked(self, item: QListWidgetItem) -> None:
        self.media_activated.emit(item.data(MEDIA_ID_ROLE))

    # Drops: accept any local URL; the importer decides what is media.
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if local_paths(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = local_paths(event)
        if paths:
            event.acceptProposedAction()
            self.files_dropped.emit(paths)


def _placeholder_icon() -> QIcon:
    pix = QPixmap(ICON_SIZE)
    pix.fill(QColor(40, 42, 46))
    p = QPainter(pix)
    p.setPen(QColor(90, 92, 98))
    p.drawRect(0, 0, ICON_SIZE.width() - 1, ICON_SIZE.height() - 1)
    p.drawText(pix.rect(), Qt.AlignmentFlag.AlignCenter, "…")
    p.end()
    return QIcon(pix)
