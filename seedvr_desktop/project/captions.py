"""Captions out of a project: SRT, WebVTT and ASS text, and burning them into frames.

Caption times are seconds from the clip's first frame, which is also the exported file's time
zero, so no offset is needed when writing sidecars or subtitle tracks for an exported clip.
Burn-in runs as the job's `frame_filter`, i.e. on the restored frames at the output size just
before encoding, so the text is crisp and never passes through the restoration model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
from collections.abc import Iterable, Sequence
from fractions import Fraction

import cv2
import numpy as np

from seedvr_desktop.project.model import Caption
from seedvr_desktop.project.textraster import TrueTypeFont, default_font, render_line, text_width

log = logging.getLogger(__name__)

_ASS_ALIGN = {"bottom": 2, "middle": 5, "top": 8}
_VTT_LINE = {"bottom": "", "middle": " line:50%", "top": " line:0"}
MARGIN = 0.05  # fraction of the frame height kept free above/below captions
MAX_WIDTH = 0.9  # fraction of the frame width a caption line may use


def clip_captions(captions: Iterable[Caption], duration: float | None) -> list[Caption]:
    """Captions sorted by start, cut to [0, duration); ones starting after the end are dropped."""
    out = []
    for caption in sorted(captions, key=lambda c: (c.start, c.end)):
        if duration is not None:
            if caption.start >= duration:
                continue
            if caption.end > duration:
                caption = dataclasses.replace(caption, end=duration)
        out.append(caption)
    return out


def _clean_lines(text: str) -> list[str]:
    """Non-empty lines; a blank line would end a cue early in SRT and WebVTT."""
    return [line.strip() for line in text.replace("\r\n", "\n").split("\n") if line.strip()]


def _timestamp(seconds: float, sep: str) -> str:
    ms = max(0, round(seconds * 1000))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{sep}{ms:03d}"


def to_srt(captions: Sequence[Caption]) -> str:
    """SubRip text; positions other than bottom become the widely supported {\\an8}/{\\an5}."""
    blocks = []
    for number, caption in enumerate(sorted(captions, key=lambda c: c.start), start=1):
        lines = _clean_lines(caption.text) or [" "]
        tag = "" if caption.position == "bottom" else f"{{\\an{_ASS_ALIGN[caption.position]}}}"
        lines[0] = tag + lines[0]
        timing = f"{_timestamp(caption.start, ',')} --> {_timestamp(caption.end, ',')}"
        blocks.append(f"{number}\n{timing}\n" + "\n".join(lines) + "\n")
    return "\n".join(blocks)


def _vtt_escape(line: str) -> str:
    line = line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return line.replace("-->", "->")


def to_vtt(captions: Sequence[Caption]) -> str:
    """WebVTT text with cue settings for top/middle captions."""
    parts = ["WEBVTT", ""]
    for caption in sorted(captions, key=lambda c: c.start):
        lines = [_vtt_escape(line) for line in _clean_lines(caption.text)] or [" "]
        timing = f"{_timestamp(caption.start, '.')} --> {_timestamp(caption.end, '.')}"
        parts.append(timing + _VTT_LINE[caption.position])
        parts.extend(lines)
        parts.append("")
    return "\n".join(parts)


def ass_color(hex_color: str) -> str:
    """#rrggbb -> ASS &H00BBGGRR (alpha 00 = opaque)."""
    r, g, b = hex_color[1:3], hex_color[3:5], hex_color[5:7]
    return f"&H00{b}{g}{r}".upper()


def ass_header(width: int, height: int, font_size: float = 0.06) -> str:
    """Script header whose PlayRes is the video size, so sizes and margins are in its pixels."""
    size = max(8, round(font_size * height))
    outline = max(1, round(size * 0.08))
    margin = round(MARGIN * height)
    return (
        "[Script Info]\n"
        "; Written by SeedVR Desktop\n"
        "ScriptType: v4.00+\n"
        f"PlayResX: {width}\n"
        f"PlayResY: {height}\n"
        "WrapStyle: 0\n"
        "ScaledBorderAndShadow: yes\n"
        "\n"
        "[V4+ Styles]\n"
        "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, "
        "BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, "
        "BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\n"
        f"Style: Default,DejaVu Sans,{size},&H00FFFFFF,&H00FFFFFF,&H00000000,&H80000000,"
        f"-1,0,0,0,100,100,0,0,1,{outline},0,2,{margin},{margin},{margin},1\n"
        "\n"
        "[Events]\n"
        "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
    )


def ass_text(caption: Caption, height: int) -> str:
    """The Text field of an ASS event: override tags for position/size/colour, \\N line breaks."""
    tags = []
    if caption.position != "bottom":
        tags.append(f"\\an{_ASS_ALIGN[caption.position]}")
    if abs(caption.size - Caption.size) > 1e-9:
        tags.append(f"\\fs{max(8, round(caption.size * height))}")
    if caption.color.lower() != "#ffffff":
        tags.append(f"\\c{ass_color(caption.color)}&")
    if not caption.outline:
        tags.append("\\bord0")
    # ASS has no escape for braces; round brackets keep the text readable.
    body = "\\N".join(_clean_lines(caption.text)).replace("{", "(").replace("}", ")")
    return ("{" + "".join(tags) + "}" if tags else "") + body


def _ass_time(seconds: float) -> str:
    cs = max(0, round(seconds * 100))
    hours, cs = divmod(cs, 360_000)
    minutes, cs = divmod(cs, 6000)
    secs, cs = divmod(cs, 100)
    return f"{hours}:{minutes:02d}:{secs:02d}.{cs:02d}"


def to_ass(captions: Sequence[Caption], width: int, height: int) -> str:
    """A complete Advanced SubStation script (for MKV tracks or as a sidecar for players)."""
    events = [
        f"Dialogue: 0,{_ass_time(c.start)},{_ass_time(c.end)},Default,,0,0,0,,{ass_text(c, height)}"
        for c in sorted(captions, key=lambda c: c.start)
    ]
    return ass_header(width, height) + "".join(e + "\n" for e in events)


# ----------------------------------------------------------------------------- burn-in


def _wrap(text: str, px: float, max_width: float, font: TrueTypeFont | None) -> list[str]:
    """Greedy word wrap of each paragraph so that no line is wider than max_width."""
    lines: list[str] = []
    for paragraph in _clean_lines(text):
        current = ""
        for word in paragraph.split(" "):
            trial = f"{current} {word}" if current else word
            if current and text_width(trial, px, font) > max_width:
                lines.append(current)
                current = word
            else:
                current = trial
        lines.append(current)
    return lines


class _Overlay:
    """Pre-rendered coverage of one caption block at one frame size."""

    def __init__(self, top: int, left: int, fill: np.ndarray, edge: np.ndarray, rgb: np.ndarray):
        self.top, self.left = top, left
        self.fill = fill  # (h, w, 1) float32 coverage of the letters
        self.edge = edge  # (h, w, 1) float32 coverage of the dark outline
        self.rgb = rgb  # (3,) float32 fill colour

    def draw(self, frame: np.ndarray) -> None:
        """Composite onto frame (H, W, 3) float32 in place."""
        h, w = self.fill.shape[:2]
        y0, x0 = max(self.top, 0), max(self.left, 0)
        y1, x1 = min(self.top + h, frame.shape[0]), min(self.left + w, frame.shape[1])
        if y1 <= y0 or x1 <= x0:
            return
        sy, sx = y0 - self.top, x0 - self.left
        fill = self.fill[sy : sy + y1 - y0, sx : sx + x1 - x0]
        edge = self.edge[sy : sy + y1 - y0, sx : sx + x1 - x0]
        region = frame[y0:y1, x0:x1]
        region *= 1.0 - edge  # dark outline (black)
        region[:] = region * (1.0 - fill) + self.rgb * fill


def render_caption_block(
    caption: Caption, width: int, height: int, font: TrueTypeFont | None
) -> _Overlay:
    """Lay out one caption for a width x height frame: wrapped, centred, outlined."""
    px = max(8.0, caption.size * height)
    lines = _wrap(caption.text, px, MAX_WIDTH * width, font) or [" "]
    masks = [render_line(line, px, font) for line in lines]
    block_w = max(m.shape[1] for m in masks)
    block_h = sum(m.shape[0] for m in masks)
    pad = max(1, round(px * 0.08)) if caption.outline else 0
    fill = np.zeros((block_h + 2 * pad, block_w + 2 * pad), np.float32)
    y = pad
    for mask in masks:
        x = pad + (block_w - mask.shape[1]) // 2
        fill[y : y + mask.shape[0], x : x + mask.shape[1]] = mask
        y += mask.shape[0]
    if pad:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pad + 1, 2 * pad + 1))
        edge = cv2.dilate(fill, kernel)
    else:
        edge = np.zeros_like(fill)
    h, w = fill.shape
    left = (width - w) // 2
    margin = round(MARGIN * height)
    if caption.position == "top":
        top = margin
    elif caption.position == "middle":
        top = (height - h) // 2
    else:
        top = height - margin - h
    rgb = np.array([int(caption.color[i : i + 2], 16) / 255.0 for i in (1, 3, 5)], np.float32)
    return _Overlay(top, left, fill[..., None], edge[..., None], rgb)


class CaptionBurner:
    """A `RestoreJob.frame_filter` drawing the captions active at each frame's time.

    `time_offset` is subtracted from the frame time the pipeline passes (for jobs whose frame
    times do not start at the clip's first frame). Rendering is cached per caption and frame
    size, so a caption costs one layout and then only a blend per frame.
    """

    def __init__(
        self,
        captions: Sequence[Caption],
        *,
        time_offset: float = 0.0,
        font: TrueTypeFont | bool | None = True,
    ) -> None:
        self.captions = sorted(captions, key=lambda c: c.start)
        self.time_offset = time_offset
        self._font = default_font() if font is True else (font or None)
        self._cache: dict[tuple[int, int, int], _Overlay] = {}
        # Identity of what this filter draws, for resume checks: resuming an export whose
        # captions changed must not mix old and new frames.
        digest = hashlib.sha256(repr((self.captions, time_offset)).encode("utf-8"))
        self.fingerprint = f"captions:{digest.hexdigest()[:16]}"

    def active(self, seconds: float) -> list[int]:
        return [i for i, c in enumerate(self.captions) if c.start <= seconds < c.end]

    def __call__(self, index: int, time: Fraction, frame: np.ndarray) -> np.ndarray:
        seconds = float(time) - self.time_offset
        active = self.active(seconds) if math.isfinite(seconds) else []
        if not active:
            return frame
        out = np.array(frame, dtype=np.float32, copy=True)  # (H, W, 3) float32 in [0, 1]
        height, width = out.shape[:2]
        stacked: dict[str, int] = {}  # captions sharing a position are stacked, not overdrawn
        for i in active:
            overlay = self._overlay(i, width, height)
            caption = self.captions[i]
            shift = stacked.get(caption.position, 0)
            h = overlay.fill.shape[0]
            sign = 1 if caption.position == "top" else -1
            moved = _Overlay(overlay.top + sign * shift, overlay.left, overlay.fill,
                             overlay.edge, overlay.rgb)
            moved.draw(out)
            stacked[caption.position] = shift + h
        np.clip(out, 0.0, 1.0, out=out)
        return out

    def _overlay(self, i: int, width: int, height: int) -> _Overlay:
        key = (i, width, height)
        if key not in self._cache:
            self._cache[key] = render_caption_block(self.captions[i], width, height, self._font)
        return self._cache[key]
