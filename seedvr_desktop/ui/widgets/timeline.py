"""The timeline: ruler, clips with filmstrips, playhead, preview ranges and the caption track.

The widget is a view over plain `ClipSpan`/`CaptionSpan` records (times in seconds on
the timeline); it never touches the project. Every edit leaves as a signal that the main window
turns into an undoable project command, and the new layout comes back through `set_items`.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QImage,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QLineEdit,
    QScrollBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from seedvr_desktop.ui.theme import ACCENT, PREVIEW_RANGE
from seedvr_desktop.ui.timecode import clock
from seedvr_desktop.ui.timeline_model import CaptionSpan, ClipSpan
from seedvr_desktop.ui.widgets.caption_track import CaptionTrack
from seedvr_desktop.ui.widgets.time_scale import TimeScale

RULER_H = 22
CLIP_H = 64
THUMB_H = CLIP_H - 18


class ClipTrack(QWidget):
    """Ruler and clip lane; press and drag anywhere to scrub."""

    def __init__(self, timeline: TimelineWidget) -> None:
        super().__init__(timeline)
        self._tl = timeline
        self.setFixedHeight(RULER_H + CLIP_H + 8)
        self.setMouseTracking(False)

    def paintEvent(self, event: QPaintEvent) -> None:
        tl, scale = self._tl, self._tl.scale
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(30, 32, 36))
        self._paint_ruler(p)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        for clip in tl.clips:
            x0, x1 = scale.x(clip.start), scale.x(clip.end)
            if x1 < 0 or x0 > self.width():
                continue
            box = QRectF(x0, RULER_H + 2, max(2.0, x1 - x0 - 1), CLIP_H)
            selected = clip.clip_id == tl.selected_clip
            p.setOpacity(0.45 if clip.clip_id == tl.dragged_clip else 1.0)
            p.fillRect(box, QColor(58, 84, 120) if selected else QColor(52, 62, 78))
            self._paint_filmstrip(p, clip, box)
            p.setPen(QColor(255, 255, 255) if selected else QColor(200, 204, 210))
            p.drawRect(box)
            p.fillRect(QRectF(box.left(), box.bottom() - 16, box.width(), 16), QColor(0, 0, 0, 140))
            p.drawText(box.adjusted(4, 0, -4, -2), Qt.AlignmentFlag.AlignLeft
                       | Qt.AlignmentFlag.AlignBottom, clip.name)
        p.setOpacity(1.0)
        self._paint_clip_drag(p)
        for start, end in tl.preview_ranges:
            x0, x1 = scale.x(start), scale.x(end)
            p.fillRect(QRectF(x0, RULER_H - 6, max(2.0, x1 - x0), 5), PREVIEW_RANGE)
        x = scale.x(tl.playhead)
        p.setPen(ACCENT)
        p.drawLine(QPointF(x, 0), QPointF(x, self.height()))
        p.setBrush(ACCENT)
        p.drawPolygon([QPointF(x - 6, 0), QPointF(x + 6, 0), QPointF(x, 8)])

    def _paint_clip_drag(self, p: QPainter) -> None:
        """Outline of the clip under the mouse and a bar where it would land on release."""
        tl, scale = self._tl, self._tl.scale
        clip = tl.dragged_span()
        if clip is None:
            return
        x0 = scale.x(clip.start) + tl.drag_dx()
        ghost = QRectF(x0, RULER_H + 2, max(2.0, (clip.end - clip.start) * scale.pps - 1), CLIP_H)
        p.setPen(QPen(QColor(255, 255, 255, 200), 1, Qt.PenStyle.DashLine))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRect(ghost)
        marker = tl.insertion_time()
        if marker is not None:
            x = scale.x(marker)
            p.fillRect(QRectF(x - 2, RULER_H, 4, CLIP_H + 6), ACCENT)

    def _paint_ruler(self, p: QPainter) -> None:
        scale = self._tl.scale
        p.fillRect(QRectF(0, 0, self.width(), RULER_H), QColor(38, 40, 45))
        step = _tick_step(scale.pps)
        t = math.floor(scale.offset / step) * step
        p.setPen(QColor(150, 152, 158))
        while scale.x(t) < self.width():
            x = scale.x(t)
            p.drawLine(QPointF(x, RULER_H - 7), QPointF(x, RULER_H))
            p.drawText(QPointF(x + 3, 12), clock(t))
            t += step

    def _paint_filmstrip(self, p: QPainter, clip: ClipSpan, box: QRectF) -> None:
        tl = self._tl
        thumb_w = THUMB_H * tl.aspect(clip.path)
        if thumb_w <= 0:
            return
        p.save()
        p.setClipRect(box)
        x = max(box.left(), 0.0) - ((max(box.left(), 0.0) - box.left()) % thumb_w)
        right = min(box.right(), float(self.width()))
        while x < right:
            frame = tl.thumb_frame(clip, x + thumb_w / 2)
            image = tl.thumbnail(clip.path, frame)
            if image is not None:
                p.drawImage(QRectF(x, box.top() + 1, thumb_w, THUMB_H), image)
            x += thumb_w
        p.restore()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            pos = event.position()
            self._tl.begin_scrub(pos.x())
            # A press on a clip block may turn into a reorder once the mouse travels far enough;
            # until then it is a click that moves the playhead, exactly as before.
            if RULER_H < pos.y() <= RULER_H + 2 + CLIP_H:
                self._tl.arm_clip_drag(pos.x())

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:
            x = event.position().x()
            if not self._tl.move_clip_drag(x):
                self._tl.move_scrub(x)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            x = event.position().x()
            if not self._tl.end_clip_drag(x):
                self._tl.end_scrub(x)

    def wheelEvent(self, event: QWheelEvent) -> None:
        self._tl.wheel(event)


def _tick_step(pps: float) -> float:
    """Ruler spacing in seconds giving labels at least ~70 px apart."""
    for step in (1 / 25, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600):
        if step * pps >= 70:
            return step
    return 7200.0


class TimelineWidget(QWidget):
    """Clips in order, a playhead, scrubbing, zoom and the caption track."""

    scrubbed = Signal(float, bool)  # timeline seconds, still dragging
    clip_selected = Signal(str)
    clip_move_requested = Signal(str, int)  # clip id, new position (counted without the clip)
    thumbnail_needed = Signal(str, int)  # media path, frame index
    caption_add_requested = Signal(float)  # timeline seconds
    caption_text_edited = Signal(str, int, str)  # clip id, caption index, text
    caption_retimed = Signal(str, int, float, float)  # clip id, index, timeline start, end
    caption_delete_requested = Signal(str, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("timeline")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.scale = TimeScale()
        self.clips: list[ClipSpan] = []
        self.captions: list[CaptionSpan] = []
        self.preview_ranges: list[tuple[float, float]] = []
        self.playhead = 0.0
        self.selected_clip = ""
        self._thumbs: dict[tuple[str, int], QImage] = {}
        self._aspects: dict[str, float] = {}
        self._requested: set[tuple[str, int]] = set()
        self._scrubbing = False
        self._drag_clip = ""  # clip under a press that may become a reorder drag
        self._drag_x0 = 0.0
        self._drag_x = 0.0
        self.dragged_clip = ""  # set once the press has become a reorder drag

        self.track = ClipTrack(self)
        self.caption_track = CaptionTrack(self, self)
        # The track owns its gesture signals; the timeline re-emits them as its own.
        self.caption_track.add_requested.connect(self.caption_add_requested)
        self.caption_track.text_edited.connect(self.caption_text_edited)
        self.caption_track.retimed.connect(self.caption_retimed)
        self.caption_track.delete_requested.connect(self.caption_delete_requested)
        self.scrollbar = QScrollBar(Qt.Orientation.Horizontal, self)
        self.scrollbar.valueChanged.connect(self._on_scrollbar_value_changed)
        zoom_in, zoom_out, zoom_fit = QToolButton(self), QToolButton(self), QToolButton(self)
        for button, text, tip, slot in (
            (zoom_out, "−", "Zoom out (Ctrl+wheel)", lambda: self.zoom(1 / 1.5)),
            (zoom_in, "+", "Zoom in (Ctrl+wheel)", lambda: self.zoom(1.5)),
            (zoom_fit, "Fit", "Show the whole timeline", self.zoom_to_fit),
        ):
            button.setText(text)
            button.setToolTip(tip)
            button.clicked.connect(slot)
        bottom = QHBoxLayout()
        bottom.setContentsMargins(0, 0, 0, 0)
        bottom.addWidget(self.scrollbar, 1)
        for button in (zoom_out, zoom_in, zoom_fit):
            bottom.addWidget(button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(1)
        layout.addWidget(self.track)
        layout.addWidget(self.caption_track)
        layout.addLayout(bottom)
        layout.addStretch(1)

    # ---------------------------------------------------------------- content
    def set_items(self, clips: list[ClipSpan], captions: list[CaptionSpan]) -> None:
        first_content = bool(clips) and not self.clips
        self.clips = list(clips)
        self.captions = list(captions)
        if first_content:
            self.zoom_to_fit()
        self._update_scrollbar()
        self._refresh()

    def set_playhead(self, seconds: float, *, follow: bool = True) -> None:
        self.playhead = max(0.0, min(seconds, self.duration()))
        if follow and not self._scrubbing:
            x = self.scale.x(self.playhead)
            if x < 0 or x > self.track.width():
                lead = 0.1 * self.track.width() / self.scale.pps
                self.scale.offset = max(0.0, self.playhead - lead)
                self._update_scrollbar()
        self._refresh()

    def set_preview_ranges(self, ranges: list[tuple[float, float]]) -> None:
        self.preview_ranges = list(ranges)
        self.track.update()

    def set_selected_clip(self, clip_id: str) -> None:
        self.selected_clip = clip_id
        self.track.update()

    def duration(self) -> float:
        return self.clips[-1].end if self.clips else 0.0

    def clip_at(self, t: float) -> ClipSpan | None:
        for clip in self.clips:
            if clip.start <= t < clip.end:
                return clip
        return self.clips[-1] if self.clips and t >= self.clips[-1].end else None

    # ---------------------------------------------------------------- thumbnails
    def set_aspect(self, path: str, aspect: float) -> None:
        self._aspects[path] = aspect

    def aspect(self, path: str) -> float:
        return self._aspects.get(path, 16 / 9)

    def thumb_frame(self, clip: ClipSpan, x: float) -> int:
        """Frame for a filmstrip cell, snapped to whole seconds so zooming reuses thumbnails."""
        t = self.scale.t(x)
        step = max(1, round(clip.fps))
        frame = clip.frame_at(t)
        return max(clip.in_frame, frame - frame % step)

    def thumbnail(self, path: str, frame: int) -> QImage | None:
        image = self._thumbs.get((path, frame))
        if image is None and (path, frame) not in self._requested:
            self._requested.add((path, frame))
            self.thumbnail_needed.emit(path, frame)
        return image

    def add_thumbnail(self, path: str, frame: int, image: QImage) -> None:
        self._thumbs[(path, frame)] = image
        if image.height() > 0:
            self._aspects.setdefault(path, image.width() / image.height())
        self.track.update()

    # ---------------------------------------------------------------- scrubbing
    def begin_scrub(self, x: float) -> None:
        self._scrubbing = True
        self._select_at(self.scale.t(x))
        self._scrub_to(x, dragging=True)

    def move_scrub(self, x: float) -> None:
        if self._scrubbing:
            self._scrub_to(x, dragging=True)

    def end_scrub(self, x: float) -> None:
        if self._scrubbing:
            self._scrubbing = False
            self._scrub_to(x, dragging=False)

    def _scrub_to(self, x: float, *, dragging: bool) -> None:
        t = max(0.0, min(self.scale.t(x), max(0.0, self.duration() - 1e-6)))
        self.playhead = t
        self._refresh()
        self.scrubbed.emit(t, dragging)

    # ---------------------------------------------------------------- reorder by dragging
    def arm_clip_drag(self, x: float) -> None:
        """Remember the clip under a press; it becomes a drag after the system drag distance."""
        clip = self.clip_at(self.scale.t(x))
        inside = clip is not None and clip.start <= self.scale.t(x) < clip.end
        self._drag_clip = (clip.clip_id if clip is not None and inside and len(self.clips) > 1
                           else "")
        self._drag_x0 = self._drag_x = x

    def move_clip_drag(self, x: float) -> bool:
        """Follow the mouse while reordering; False when this press is a scrub instead."""
        if not self._drag_clip:
            return False
        self._drag_x = x
        if not self.dragged_clip:
            if abs(x - self._drag_x0) < QApplication.startDragDistance():
                return False
            # The press was a click that moved the playhead; close that scrub where it began.
            self.end_scrub(self._drag_x0)
            self.dragged_clip = self._drag_clip
        self.track.update()
        return True

    def end_clip_drag(self, x: float) -> bool:
        """Finish a reorder (emitting `clip_move_requested` if the order changes)."""
        dragging = bool(self.dragged_clip)
        if dragging:
            self._drag_x = x
            target = self.drop_index()
            current = next(i for i, c in enumerate(self.clips) if c.clip_id == self.dragged_clip)
            clip_id = self.dragged_clip
            self.dragged_clip = ""
            self.track.update()
            if target != current:
                self.clip_move_requested.emit(clip_id, target)
        self._drag_clip = ""
        return dragging

    def dragged_span(self) -> ClipSpan | None:
        return next((c for c in self.clips if c.clip_id == self.dragged_clip), None)

    def drag_dx(self) -> float:
        return self._drag_x - self._drag_x0

    def drop_index(self) -> int:
        """Position the dragged clip would take: one past every other clip whose middle lies
        left of the dragged block's leading edge (its left edge moving left, right edge right)."""
        clip = self.dragged_span()
        if clip is None:
            return 0
        dt = self.drag_dx() / self.scale.pps
        edge = clip.start + dt if dt < 0 else clip.end + dt
        others = [c for c in self.clips if c.clip_id != clip.clip_id]
        return sum(1 for c in others if (c.start + c.end) / 2 < edge)

    def insertion_time(self) -> float | None:
        """Timeline time of the insertion marker, or None while the drop would change nothing."""
        clip = self.dragged_span()
        if clip is None:
            return None
        index = self.drop_index()
        if index == self.clips.index(clip):
            return None
        others = [c for c in self.clips if c.clip_id != clip.clip_id]
        return others[index].start if index < len(others) else others[-1].end

    def _select_at(self, t: float) -> None:
        clip = self.clip_at(t)
        if clip is not None and clip.clip_id != self.selected_clip:
            self.set_selected_clip(clip.clip_id)
            self.clip_selected.emit(clip.clip_id)

    # ---------------------------------------------------------------- zoom and scroll
    def zoom(self, factor: float, anchor_x: float | None = None) -> None:
        anchor_x = self.scale.x(self.playhead) if anchor_x is None else anchor_x
        anchor_t = self.scale.t(anchor_x)
        self.scale.pps = min(2000.0, max(0.5, self.scale.pps * factor))
        self.scale.offset = max(0.0, anchor_t - anchor_x / self.scale.pps)
        self._update_scrollbar()
        self._refresh()

    def zoom_to_fit(self) -> None:
        width = max(100, self.track.width() - 20)
        self.scale.pps = min(2000.0, max(0.5, width / max(1.0, self.duration())))
        self.scale.offset = 0.0
        self._update_scrollbar()
        self._refresh()

    def wheel(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120.0
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.zoom(1.25**steps, event.position().x())
        else:
            self.scrollbar.setValue(self.scrollbar.value() - round(steps * 60))
        event.accept()

    def _update_scrollbar(self) -> None:
        total = int(self.duration() * self.scale.pps) + 200
        page = max(1, self.track.width())
        self.scrollbar.blockSignals(True)
        self.scrollbar.setRange(0, max(0, total - page))
        self.scrollbar.setPageStep(page)
        self.scrollbar.setValue(int(self.scale.offset * self.scale.pps))
        self.scrollbar.blockSignals(False)

    def _on_scrollbar_value_changed(self, value: int) -> None:
        self.scale.offset = value / self.scale.pps
        self._refresh()

    def _refresh(self) -> None:
        self.track.update()
        self.caption_track.update()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._update_scrollbar()

    # ---------------------------------------------------------------- caption editing
    def inline_editor(self) -> QLineEdit | None:
        return self.caption_track.editor
