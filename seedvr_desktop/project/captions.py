"""Captions in and out of a project: SRT, WebVTT and ASS through pysubs2, and burning them in.

Caption times are seconds from the clip's first frame, which is also the exported file's time
zero, so no offset is needed when writing sidecars or subtitle tracks for an exported clip.
Burn-in runs as the job's `frame_filter`, i.e. on the restored frames at the output size just
before encoding, so the text is crisp and never passes through the restoration model. Text is
drawn with Pillow's FreeType renderer (see textraster).
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import logging
import math
import os
import re
from collections.abc import Callable, Iterable, Sequence
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pysubs2

from seedvr_desktop.errors import UserError
from seedvr_desktop.project.model import Caption
from seedvr_desktop.project.textraster import CaptionFont, default_font, render_line, text_width

log = logging.getLogger(__name__)

_ASS_ALIGN = {"bottom": 2, "middle": 5, "top": 8}
_VTT_LINE = {"bottom": "", "middle": " line:50%", "top": " line:0"}
MARGIN = 0.05  # fraction of the frame height kept free above/below captions
MAX_WIDTH = 0.9  # fraction of the frame width a caption line may use
IMPORT_SUFFIXES = (".srt", ".vtt", ".ass", ".ssa")
# Bumped when burned-in pixels change for the same captions (another rasteriser): part of the
# burner's fingerprint, so a resumed export never mixes frames drawn both ways.
_RENDERER = "pillow-freetype-1"


def caption_problems(captions: Iterable[Caption], duration: float | None) -> list[str]:
    """One line per caption that would not show as written: empty text, starting at or after
    the clip's end, or running past it (cut). For the CLI and GUI to say, not to drop quietly."""
    out = []
    for number, caption in enumerate(sorted(captions, key=lambda c: (c.start, c.end)), 1):
        where = f"caption {number} ({caption.start:g}-{caption.end:g} s)"
        if not _clean_lines(caption.text):
            out.append(f"{where} has no text, so nothing is shown")
        elif duration is not None and caption.start >= duration:
            out.append(f"{where} starts after the clip ends ({duration:g} s) and is left out")
        elif duration is not None and caption.end > duration:
            out.append(f"{where} runs past the clip's end and is cut at {duration:g} s")
    return out


def clip_captions(captions: Iterable[Caption], duration: float | None) -> list[Caption]:
    """Captions sorted by start, cut to [0, duration); ones starting after the end are left
    out. Each of these, and each caption with no text, is logged as a warning (see
    caption_problems) instead of passing silently."""
    captions = list(captions)
    for problem in caption_problems(captions, duration):
        log.warning("%s", problem)
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


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))


def _subs(captions: Sequence[Caption], text: Callable[[Caption], str]) -> pysubs2.SSAFile:
    """An SSAFile with one event per caption in start order; `text(caption)` gives its Text."""
    subs = pysubs2.SSAFile()
    for caption in sorted(captions, key=lambda c: c.start):
        subs.append(pysubs2.SSAEvent(start=_ms(caption.start), end=_ms(caption.end),
                                     text=text(caption)))
    return subs


def _srt_text(caption: Caption) -> str:
    lines = _clean_lines(caption.text) or [" "]
    tag = "" if caption.position == "bottom" else f"{{\\an{_ASS_ALIGN[caption.position]}}}"
    return tag + "\\N".join(lines)


def to_srt(captions: Sequence[Caption]) -> str:
    """SubRip text; positions other than bottom become the widely supported {\\an8}/{\\an5}.

    The text goes out as written (SRT readers take <i>/<b> markup from it), so the writer keeps
    our one override tag instead of converting tags to HTML.
    """
    return _subs(captions, _srt_text).to_string("srt", keep_ssa_tags=True)


def _vtt_escape(line: str) -> str:
    line = line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return line.replace("-->", "->")


_VTT_TIMING = re.compile(r"^\d{2,}:\d{2}:\d{2}\.\d{3} --> \d{2,}:\d{2}:\d{2}\.\d{3}$")


def to_vtt(captions: Sequence[Caption]) -> str:
    """WebVTT text with cue settings for top/middle captions.

    WebVTT text is markup, so it is escaped. pysubs2 writes no cue settings; they are appended
    to its timing lines, which escaped text can never look like ("-->" is escaped).
    """
    ordered = sorted(captions, key=lambda c: c.start)
    subs = _subs(ordered, lambda c: "\\N".join(
        _vtt_escape(line) for line in _clean_lines(c.text)) or " ")
    settings = iter(_VTT_LINE[c.position] for c in ordered)
    lines = subs.to_string("vtt", keep_ssa_tags=True).split("\n")
    return "\n".join(line + next(settings, "") if _VTT_TIMING.match(line) else line
                     for line in lines)


def ass_color(hex_color: str) -> str:
    """#rrggbb -> ASS &H00BBGGRR (alpha 00 = opaque)."""
    r, g, b = hex_color[1:3], hex_color[3:5], hex_color[5:7]
    return f"&H00{b}{g}{r}".upper()


def _ass_file(width: int, height: int, font_size: float = 0.06) -> pysubs2.SSAFile:
    """Script whose PlayRes is the video size, so sizes and margins are in its pixels."""
    size = max(8, round(font_size * height))
    margin = round(MARGIN * height)
    subs = pysubs2.SSAFile()
    subs.info.update({"PlayResX": str(width), "PlayResY": str(height), "WrapStyle": "0",
                      "ScaledBorderAndShadow": "yes"})
    subs.styles = {"Default": pysubs2.SSAStyle(
        fontname="DejaVu Sans", fontsize=size, bold=True, outline=max(1, round(size * 0.08)),
        shadow=0, alignment=pysubs2.Alignment.BOTTOM_CENTER, marginl=margin, marginr=margin,
        marginv=margin, primarycolor=pysubs2.Color(255, 255, 255, 0),
        secondarycolor=pysubs2.Color(255, 255, 255, 0), outlinecolor=pysubs2.Color(0, 0, 0, 0),
        backcolor=pysubs2.Color(0, 0, 0, 128), encoding=1)}
    return subs


def ass_header(width: int, height: int, font_size: float = 0.06) -> str:
    """Script header (up to the [Events] Format line), as subtitle encoders want it."""
    return _ass_file(width, height, font_size).to_string("ass")


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


def to_ass(captions: Sequence[Caption], width: int, height: int) -> str:
    """A complete Advanced SubStation script (for MKV tracks or as a sidecar for players)."""
    subs = _ass_file(width, height)
    subs.events = list(_subs(captions, lambda c: ass_text(c, height)))
    return subs.to_string("ass")


# ----------------------------------------------------------------------------- import


@dataclasses.dataclass(frozen=True)
class ImportedCaptions:
    """Captions read from a subtitle file, plus one line for each one left out or cut."""

    captions: list[Caption]
    problems: list[str]


_AN_TAG = re.compile(r"\\an([1-9])")


def _position(event: pysubs2.SSAEvent, subs: pysubs2.SSAFile) -> str:
    """bottom/middle/top from an {\\an} tag in the text, else the event style's alignment."""
    tag = _AN_TAG.search(event.text)
    style = subs.styles.get(event.style)
    numpad = int(tag.group(1)) if tag else int(style.alignment) if style else 2
    return "top" if numpad >= 7 else "middle" if numpad >= 4 else "bottom"


def _decode(data: bytes, name: str, encoding: str | None) -> str:
    """Text of a subtitle file: UTF-8 (with or without BOM), else Windows-1252, the encoding
    of most old SRT files; binary data is refused before it reaches the parser."""
    if b"\0" in data[:4096]:
        raise UserError(f"{name} is not a subtitle file (it holds binary data)")
    for enc in (encoding,) if encoding else ("utf-8-sig", "cp1252"):
        try:
            text = data.decode(enc)
        except (UnicodeDecodeError, LookupError):
            continue
        if enc == "cp1252":
            log.info("%s is not UTF-8; reading it as Windows-1252", name)
        return text
    raise UserError(f"{name} is not readable as {encoding or 'UTF-8 or Windows-1252'} text")


def import_caption_file(path: str | os.PathLike[str], *, duration: float | None = None,
                        encoding: str | None = None) -> ImportedCaptions:
    """Captions of an .srt, .vtt, .ass or .ssa file (format from the content, via pysubs2).

    Times are taken as clip-relative seconds. Styling is not imported except the position
    (an {\\an} tag or the style's alignment; pysubs2 reads no WebVTT cue settings); text is
    plain, line breaks kept. Captions with no text, ending before they start or starting
    after `duration` (the clip's length, when known) are left out, ones running past it are
    cut; each is named in `problems` rather
    than dropped silently. A file that cannot be read, is not subtitles, or leaves no caption
    raises UserError with a one-line message.
    """
    p = Path(path)
    if p.suffix.lower() not in IMPORT_SUFFIXES:
        raise UserError(f"{p.name} is not a subtitle file (use {', '.join(IMPORT_SUFFIXES)})")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {p.name}: {exc.strerror or exc}") from exc
    text = _decode(data, p.name, encoding)
    try:
        subs = pysubs2.SSAFile.from_string(text)
    except pysubs2.exceptions.FormatAutodetectionError as exc:
        raise UserError(f"{p.name} is not a subtitle file (no SRT, WebVTT or ASS captions "
                        "found)") from exc
    except (pysubs2.exceptions.Pysubs2Error, ValueError, KeyError, IndexError) as exc:
        raise UserError(f"{p.name} could not be read as subtitles: {exc}") from exc
    events = [e for e in subs if not e.is_comment]
    if not events:
        raise UserError(f"{p.name} has no captions")
    captions: list[Caption] = []
    problems: list[str] = []
    for number, event in enumerate(events, 1):
        start, end = event.start / 1000, event.end / 1000
        where = f"caption {number} ({start:g}-{end:g} s)"
        body = "\n".join(_clean_lines(event.plaintext))
        if subs.format == "vtt":  # WebVTT text is markup: pysubs2 keeps &amp; and friends
            body = html.unescape(body)
        if not body:
            problems.append(f"{where} has no text and is left out")
            continue
        if end <= start or start < 0:
            problems.append(f"{where} ends before it starts and is left out")
            continue
        if duration is not None and start >= duration:
            problems.append(f"{where} starts after the clip ends ({duration:g} s) and is "
                            "left out")
            continue
        if duration is not None and end > duration:
            problems.append(f"{where} runs past the clip's end and is cut at {duration:g} s")
            end = duration
        captions.append(Caption(start, end, body, position=_position(event, subs)))
    for problem in problems:
        log.info("%s: %s", p.name, problem)
    if not captions:
        raise UserError(f"{p.name}: none of its {len(events)} caption(s) can be used "
                        f"({problems[0]})")
    return ImportedCaptions(sorted(captions, key=lambda c: (c.start, c.end)), problems)


# ----------------------------------------------------------------------------- burn-in


def _wrap(text: str, px: float, max_width: float, font: CaptionFont | None) -> list[str]:
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
    caption: Caption, width: int, height: int, font: CaptionFont | None
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
        font: CaptionFont | bool | None = True,
    ) -> None:
        self.captions = sorted(captions, key=lambda c: c.start)
        self.time_offset = time_offset
        # True: the system's font (default_font); False/None: Pillow's built-in font.
        self._font = default_font() if font is True else (font or None)
        self._cache: dict[tuple[int, int, int], _Overlay] = {}
        # Identity of what this filter draws, for resume checks: resuming an export whose
        # captions, font or rasteriser changed must not mix old and new frames.
        drawn_with = (_RENDERER, self._font.identity if self._font else "pillow-default")
        digest = hashlib.sha256(repr((self.captions, time_offset, drawn_with)).encode("utf-8"))
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
