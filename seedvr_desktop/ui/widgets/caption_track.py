"""The caption lane under the clips: add at a time, edit text in place, drag either end.

Drags are previewed locally (a draft start/end) and committed once on release, so an undo step is
one whole gesture rather than every mouse move.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QKeyEvent, QMouseEvent, QPainter, QPaintEvent
from PySide6.QtWidgets import QLineEdit, QWidget

from seedvr_desktop.ui.theme import ACCENT

if TYPE_CHECKING:
    from seedvr_desktop.ui.timeline_model import CaptionSpan
    from seedvr_desktop.ui.widgets.time_scale import TimeScale


class TimelineHost(Protocol):
    """What the caption track reads from the timeline it sits in (and its scrub gestures)."""

    captions: list[CaptionSpan]
    scale: TimeScale
    playhead: float

    def begin_scrub(self, x: float) -> None: ...
    def move_scrub(self, x: float) -> None: ...
    def end_scrub(self, x: float) -> None: ...

EDGE_PX = 6
MIN_CAPTION_S = 0.1


class CaptionTrack(QWidget):
    """Paints `timeline.captions` and turns gestures into caption signals."""

    add_requested = Signal(float)  # timeline seconds
    text_edited = Signal(str, int, str)  # clip id, caption index, text
    retimed = Signal(str, int, float, float)  # clip id, index, timeline start, end
    delete_requested = Signal(str, int)

    def __init__(self, timeline: TimelineHost, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("captionTrack")
        self.setFixedHeight(34)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.setToolTip(
            "Captions: double-click to add or edit, drag the ends to retime, Del removes"
        )
        self._tl = timeline
        self.selected: tuple[str, int] | None = None
        self._drag: tuple[CaptionSpan, str, float] | None = None  # caption, part, grab time
        self._draft: tuple[float, float] | None = None
        self.editor: QLineEdit | None = None
        self._editing: CaptionSpan | None = None

    # ---------------------------------------------------------------- geometry
    def caption_rect(self, caption: CaptionSpan) -> QRectF:
        start, end = caption.start, caption.end
        if self._drag is not None and self._draft is not None and self._same(caption):
            start, end = self._draft
        scale = self._tl.scale
        return QRectF(scale.x(start), 3, max(4.0, scale.x(end) - scale.x(start)), self.height() - 6)

    def _same(self, caption: CaptionSpan) -> bool:
        return self._drag is not None and (
            (self._drag[0].clip_id, self._drag[0].index) == (caption.clip_id, caption.index)
        )

    def _hit(self, x: float) -> tuple[CaptionSpan | None, str]:
        for caption in reversed(self._tl.captions):
            rect = self.caption_rect(caption)
            if rect.left() - EDGE_PX <= x <= rect.right() + EDGE_PX:
                if abs(x - rect.left()) <= EDGE_PX:
                    return caption, "start"
                if abs(x - rect.right()) <= EDGE_PX:
                    return caption, "end"
                if rect.left() <= x <= rect.right():
                    return caption, "body"
        return None, ""

    # ---------------------------------------------------------------- painting
    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(34, 36, 40))
        p.setPen(QColor(110, 112, 118))
        if not self._tl.captions:
            p.drawText(self.rect().adjusted(6, 0, 0, 0), Qt.AlignmentFlag.AlignVCenter,
                       "Captions — double-click to add one here")
        for caption in self._tl.captions:
            rect = self.caption_rect(caption)
            selected = self.selected == (caption.clip_id, caption.index)
            p.fillRect(rect, QColor(150, 110, 40) if selected else QColor(110, 84, 40))
            p.setPen(QColor(250, 230, 190))
            p.drawRect(rect)
            p.drawText(rect.adjusted(4, 0, -4, 0), Qt.AlignmentFlag.AlignVCenter, caption.text)
        x = self._tl.scale.x(self._tl.playhead)
        p.setPen(ACCENT)
        p.drawLine(QPointF(x, 0), QPointF(x, self.height()))

    # ---------------------------------------------------------------- mouse
    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        x = event.position().x()
        caption, part = self._hit(x)
        if caption is None:
            self.selected = None
            self._tl.begin_scrub(x)
        else:
            self.selected = (caption.clip_id, caption.index)
            self._drag = (caption, part, self._tl.scale.t(x))
            self._draft = (caption.start, caption.end)
        self.update()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        x = event.position().x()
        if self._drag is None:
            if event.buttons() & Qt.MouseButton.LeftButton:
                self._tl.move_scrub(x)
            return
        caption, part, grab = self._drag
        delta = self._tl.scale.t(x) - grab
        start, end = caption.start, caption.end
        if part == "start":
            start = min(end - MIN_CAPTION_S, max(0.0, start + delta))
        elif part == "end":
            end = max(start + MIN_CAPTION_S, end + delta)
        else:
            shift = max(-start, delta)
            start, end = start + shift, end + shift
        self._draft = (start, end)
        self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._drag is None:
            self._tl.end_scrub(event.position().x())
            return
        caption, _, _ = self._drag
        draft = self._draft
        self._drag, self._draft = None, None
        if draft is not None and (abs(draft[0] - caption.start) > 1e-6
                                  or abs(draft[1] - caption.end) > 1e-6):
            self.retimed.emit(caption.clip_id, caption.index, draft[0], draft[1])
        self.update()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        caption, _ = self._hit(event.position().x())
        if caption is None:
            self.add_requested.emit(self._tl.scale.t(event.position().x()))
        else:
            self.edit_caption(caption)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and self.selected:
            clip_id, index = self.selected
            self.selected = None
            self.delete_requested.emit(clip_id, index)
        else:
            super().keyPressEvent(event)

    # ---------------------------------------------------------------- inline text editing
    def edit_caption(self, caption: CaptionSpan) -> QLineEdit:
        """Open an in-place editor over the caption; Enter commits, Escape cancels."""
        self._close_editor()
        rect = self.caption_rect(caption).toRect()
        editor = QLineEdit(caption.text, self)
        editor.setObjectName("captionEditor")
        editor.setGeometry(rect.left(), rect.top(), max(160, rect.width()), rect.height())
        editor.selectAll()
        editor.returnPressed.connect(self._commit_editor)
        editor.editingFinished.connect(self._commit_editor)
        editor.installEventFilter(self)
        self.editor, self._editing = editor, caption
        editor.show()
        editor.setFocus()
        return editor

    def eventFilter(self, watched, event) -> bool:
        if (watched is self.editor and event.type() == event.Type.KeyPress
                and event.key() == Qt.Key.Key_Escape):
            self._close_editor()
            return True
        return super().eventFilter(watched, event)

    def _commit_editor(self) -> None:
        editor, caption = self.editor, self._editing
        if editor is None or caption is None:
            return
        text = editor.text().strip()
        self._close_editor()
        if text and text != caption.text:
            self.text_edited.emit(caption.clip_id, caption.index, text)

    def _close_editor(self) -> None:
        editor = self.editor
        self.editor, self._editing = None, None
        if editor is not None:
            editor.removeEventFilter(self)
            editor.hide()
            editor.deleteLater()
