"""The picture: original and restored frames with compare modes and synchronised zoom/pan.

Both sides are always drawn through ONE view transform expressed in the original's pixel grid, so
split, side-by-side and toggle show exactly the same region whatever the restored resolution; an
upscaled result is simply drawn into the same rectangle with more pixels behind it.
"""

from __future__ import annotations

from enum import Enum

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QMouseEvent, QPainter, QPaintEvent, QWheelEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from seedvr_desktop.ui.image import qimage_from_array
from seedvr_desktop.ui.theme import ACCENT
from seedvr_desktop.ui.timecode import timecode

MIN_ZOOM, MAX_ZOOM = 0.05, 32.0
DIVIDER_WIDTH = 10


class CompareMode(str, Enum):
    ORIGINAL = "original"
    SPLIT = "split"
    SIDE_BY_SIDE = "side_by_side"
    TOGGLE = "toggle"


class CompareDivider(QWidget):
    """The draggable handle of the split wipe; reports the new x in the parent's coordinates."""

    moved = Signal(float)

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("compareDivider")
        self.setCursor(Qt.CursorShape.SplitHCursor)
        self.setFixedWidth(DIVIDER_WIDTH)
        self.setToolTip("Drag to move the before/after split")

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.width() // 2 - 1, 0, 2, self.height(), ACCENT)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setBrush(ACCENT)
        p.setPen(Qt.PenStyle.NoPen)
        p.drawEllipse(QPointF(self.width() / 2, self.height() / 2), 5, 5)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:
            self.moved.emit(self.mapToParent(event.position().toPoint()).x())


class ViewerWidget(QWidget):
    """Shows one frame of a clip, optionally against its restored version."""

    mode_changed = Signal(str)
    zoom_changed = Signal(float)  # display pixels per original pixel
    display_size_changed = Signal(int, int)  # on-screen device pixels (width, height)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("viewer")
        self.setMinimumSize(320, 180)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.setMouseTracking(False)
        self._original: QImage | None = None
        self._restored: QImage | None = None
        self._mode = CompareMode.SPLIT
        self._split = 0.5  # divider position as a fraction of the width
        self._zoom: float | None = None  # None = fit
        self._center = QPointF(0.5, 0.5)  # normalised image point shown at the pane centre
        self._show_original = False  # toggle mode: key held
        self._pan_from: QPointF | None = None
        self._frame = 0
        self._fps = 0.0
        self._approximate = False
        self._message = ""
        self.divider = CompareDivider(self)
        self.divider.moved.connect(self._on_divider_moved)
        self._place_divider()

    # ---------------------------------------------------------------- content
    def set_frames(
        self,
        original: np.ndarray | QImage | None,
        restored: np.ndarray | QImage | None = None,
        *,
        keep_restored: bool = False,
    ) -> None:
        """Show new pictures (numpy frames are converted here, on the GUI thread)."""
        self._original = _as_qimage(original)
        if original is not None:
            self._message = ""
        if not keep_restored:
            self._restored = _as_qimage(restored)
        self.update()

    def set_restored(self, restored: np.ndarray | QImage | None) -> None:
        self._restored = _as_qimage(restored)
        self._place_divider()
        self.update()

    def set_frame_info(self, frame: int, fps: float, *, approximate: bool = False) -> None:
        self._frame, self._fps, self._approximate = frame, fps, approximate
        self.update()

    def set_message(self, text: str) -> None:
        """A hint drawn over the picture (empty viewer, missing media, no preview yet)."""
        self._message = text
        self.update()

    def has_restored(self) -> bool:
        return self._restored is not None

    def original_image(self) -> QImage | None:
        return self._original

    def restored_image(self) -> QImage | None:
        return self._restored

    # ---------------------------------------------------------------- compare and view
    @property
    def mode(self) -> CompareMode:
        return self._mode

    def set_mode(self, mode: CompareMode | str) -> None:
        mode = CompareMode(mode)
        if mode != self._mode:
            self._mode = mode
            self._place_divider()
            self.update()
            self.mode_changed.emit(mode.value)

    def set_split(self, fraction: float) -> None:
        self._split = min(1.0, max(0.0, fraction))
        self._place_divider()
        self.update()

    @property
    def split(self) -> float:
        return self._split

    def set_show_original(self, held: bool) -> None:
        """Toggle mode: while the compare key is held the original is shown."""
        if held != self._show_original:
            self._show_original = held
            self.update()

    def fit(self) -> None:
        self._zoom = None
        self._center = QPointF(0.5, 0.5)
        self.update()
        self.zoom_changed.emit(self.current_zoom())

    def actual_size(self) -> None:
        """1:1: one source pixel per *device* pixel, so HiDPI screens show true detail."""
        self._set_zoom(1.0 / self.devicePixelRatioF())

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        """Zoom keeping the image point under `anchor` (widget coordinates) in place."""
        pane = self.panes()[0] if anchor is None else self._pane_at(anchor)
        before = self._widget_to_image(anchor, pane) if anchor is not None else None
        self._set_zoom(self.current_zoom() * factor, update=False)
        if anchor is not None and before is not None and self._original is not None:
            after = self._widget_to_image(anchor, pane)
            self._center += before - after
            self._clamp_center()
        self.update()

    def current_zoom(self) -> float:
        if self._zoom is not None:
            return self._zoom
        return self._fit_zoom(self.panes()[0])

    def image_rect(self, pane: QRectF | None = None) -> QRectF:
        """Where the original's pixel grid lands in widget coordinates for a pane."""
        pane = pane or self.panes()[0]
        if self._original is None:
            return QRectF()
        zoom = self._zoom if self._zoom is not None else self._fit_zoom(pane)
        w, h = self._original.width() * zoom, self._original.height() * zoom
        centre = pane.center()
        return QRectF(centre.x() - self._center.x() * w, centre.y() - self._center.y() * h, w, h)

    # ---------------------------------------------------------------- geometry helpers
    def panes(self) -> list[QRectF]:
        r = QRectF(self.rect())
        if self._mode == CompareMode.SIDE_BY_SIDE:
            half = r.width() / 2
            return [QRectF(r.left(), r.top(), half - 1, r.height()),
                    QRectF(r.left() + half + 1, r.top(), half - 1, r.height())]
        return [r]

    def _pane_at(self, point: QPointF) -> QRectF:
        for pane in self.panes():
            if pane.contains(point):
                return pane
        return self.panes()[0]

    def _fit_zoom(self, pane: QRectF) -> float:
        if self._original is None or self._original.width() == 0:
            return 1.0
        return min(pane.width() / self._original.width(), pane.height() / self._original.height())

    def _set_zoom(self, zoom: float, *, update: bool = True) -> None:
        self._zoom = min(MAX_ZOOM, max(MIN_ZOOM, zoom))
        self._clamp_center()
        if update:
            self.update()
        self.zoom_changed.emit(self._zoom)

    def _widget_to_image(self, point: QPointF, pane: QRectF) -> QPointF:
        rect = self.image_rect(pane)
        if rect.width() <= 0:
            return QPointF(0.5, 0.5)
        return QPointF((point.x() - rect.left()) / rect.width(),
                       (point.y() - rect.top()) / rect.height())

    def _clamp_center(self) -> None:
        self._center = QPointF(min(1.0, max(0.0, self._center.x())),
                               min(1.0, max(0.0, self._center.y())))

    def _divider_x(self) -> float:
        return self._split * self.width()

    def _place_divider(self) -> None:
        visible = self._mode == CompareMode.SPLIT
        self.divider.setVisible(visible)
        if visible:
            self.divider.setGeometry(
                round(self._divider_x() - DIVIDER_WIDTH / 2), 0, DIVIDER_WIDTH, self.height()
            )
            self.divider.raise_()

    def _on_divider_moved(self, x: float) -> None:
        self.set_split(x / max(1, self.width()))

    # ---------------------------------------------------------------- Qt events
    def resizeEvent(self, event) -> None:
        self._place_divider()
        super().resizeEvent(event)
        dpr = self.devicePixelRatioF()
        self.display_size_changed.emit(round(self.width() * dpr), round(self.height() * dpr))

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.zoom_by(1.25**steps, event.position())
        event.accept()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() in (Qt.MouseButton.LeftButton, Qt.MouseButton.MiddleButton):
            self._pan_from = event.position()
            self.setCursor(Qt.CursorShape.ClosedHandCursor)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is None or self._original is None:
            return
        delta = event.position() - self._pan_from
        self._pan_from = event.position()
        rect = self.image_rect()
        if rect.width() > 0:
            if self._zoom is None:
                self._zoom = self._fit_zoom(self.panes()[0])
            self._center -= QPointF(delta.x() / rect.width(), delta.y() / rect.height())
            self._clamp_center()
            self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        self._pan_from = None
        self.unsetCursor()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        self.fit()

    def keyPressEvent(self, event) -> None:
        key = event.key()
        if key == Qt.Key.Key_F:
            self.fit()
        elif key == Qt.Key.Key_1:
            self.actual_size()
        elif key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom_by(1.25)
        elif key == Qt.Key.Key_Minus:
            self.zoom_by(0.8)
        else:
            super().keyPressEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(18, 18, 20))
        if self._original is None:
            self._draw_centered_text(p, self._message or "Drop video files here")
            return
        smooth = self.current_zoom() * self.devicePixelRatioF() < 2.0
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
        restored = self._restored
        panes = self.panes()
        if self._mode == CompareMode.SIDE_BY_SIDE:
            self._draw_image(p, self._original, panes[0], panes[0])
            self._draw_image(p, restored, panes[1], panes[1])
            self._label(p, panes[0], "Original", left=True)
            self._label(p, panes[1], "Restored" if restored else "Restored: no preview", left=True)
        elif self._mode == CompareMode.SPLIT:
            x = self._divider_x()
            pane = panes[0]
            left = QRectF(pane.left(), pane.top(), x - pane.left(), pane.height())
            right = QRectF(x, pane.top(), pane.right() - x, pane.height())
            self._draw_image(p, self._original, pane, left)
            self._draw_image(p, restored, pane, right)
            self._label(p, pane, "Original", left=True)
            self._label(p, pane, "Restored" if restored else "Restored: no preview", left=False)
        elif self._mode == CompareMode.TOGGLE:
            show_restored = restored is not None and not self._show_original
            self._draw_image(p, restored if show_restored else self._original, panes[0], panes[0])
            self._label(p, panes[0], "Restored  (hold B: original)" if show_restored
                        else "Original", left=True)
        else:
            self._draw_image(p, self._original, panes[0], panes[0])
        self._draw_info(p)

    def _draw_image(self, p: QPainter, image: QImage | None, pane: QRectF, clip: QRectF) -> None:
        if clip.width() <= 0:
            return
        p.save()
        p.setClipRect(clip)
        if image is None:
            p.fillRect(clip, QColor(28, 28, 32))
            p.setPen(QColor(130, 132, 138))
            p.drawText(clip.adjusted(12, 0, -12, 0), Qt.AlignmentFlag.AlignCenter
                       | Qt.TextFlag.TextWordWrap, "No restored preview here yet.\n"
                       "Press Preview (P) to restore a short range around the playhead.")
        else:
            p.drawImage(self.image_rect(pane), image, QRectF(image.rect()))
        p.restore()

    def _label(self, p: QPainter, pane: QRectF, text: str, *, left: bool) -> None:
        p.save()
        font = QFont(p.font())
        font.setBold(True)
        p.setFont(font)
        metrics = p.fontMetrics()
        w, h = metrics.horizontalAdvance(text) + 12, metrics.height() + 6
        x = pane.left() + 8 if left else pane.right() - w - 8
        box = QRectF(x, pane.top() + 8, w, h)
        p.fillRect(box, QColor(0, 0, 0, 150))
        p.setPen(QColor(240, 240, 240))
        p.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
        p.restore()

    def _draw_info(self, p: QPainter) -> None:
        text = f"Frame {self._frame}   {timecode(self._frame, self._fps)}"
        if self._approximate:
            text += "   (nearest keyframe)"
        metrics = p.fontMetrics()
        box = QRectF(8, self.height() - metrics.height() - 14,
                     metrics.horizontalAdvance(text) + 12, metrics.height() + 6)
        p.fillRect(box, QColor(0, 0, 0, 150))
        p.setPen(QColor(240, 240, 240))
        p.drawText(box, Qt.AlignmentFlag.AlignCenter, text)

    def _draw_centered_text(self, p: QPainter, text: str) -> None:
        p.setPen(QColor(150, 152, 158))
        p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, text)


def _as_qimage(image: np.ndarray | QImage | None) -> QImage | None:
    if image is None or isinstance(image, QImage):
        return image
    return qimage_from_array(image)
