"""Turning caption text into an anti-aliased coverage mask, with a real font when one exists.

The headless OpenCV wheels have no FreeType module and Qt is off limits outside the UI package, so
this module reads TrueType outlines itself (the `glyf` flavour every desktop OS ships: DejaVu,
Liberation, Noto, Arial, Segoe UI), flattens the quadratic curves and fills them with OpenCV at 4x
supersampling. When no such font can be found it falls back to OpenCV's Hershey stroke font,
which only knows ASCII, so captions still appear, just plainer.
"""

from __future__ import annotations

import functools
import logging
import os
import struct
import sys
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)

SUPERSAMPLE = 4
FONT_ENV = "SEEDVR_DESKTOP_CAPTION_FONT"

_FONT_NAMES = (
    "DejaVuSans-Bold.ttf", "DejaVuSans.ttf", "LiberationSans-Bold.ttf",
    "LiberationSans-Regular.ttf", "NotoSans-Bold.ttf", "NotoSans-Regular.ttf",
    "arialbd.ttf", "arial.ttf", "segoeuib.ttf", "segoeui.ttf", "Arial Bold.ttf", "Arial.ttf",
)  # fmt: skip
_FONT_DIRS = {
    "linux": ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts"),
    "win32": (os.path.join(os.environ.get("WINDIR", "C:\\Windows"), "Fonts"),),
    "darwin": ("/System/Library/Fonts/Supplemental", "/Library/Fonts", "~/Library/Fonts"),
}


class FontError(Exception):
    """A font file this reader cannot use (CFF outlines, truncated tables...)."""


class TrueTypeFont:
    """Just enough of a TrueType reader for captions: cmap, advances and glyph outlines."""

    def __init__(self, data: bytes, path: str = "") -> None:
        self.path = path
        self.data = data
        base = 0
        if data[:4] == b"ttcf":  # collection: use the first face
            base = struct.unpack_from(">I", data, 12)[0]
        if data[base : base + 4] == b"OTTO":
            raise FontError("CFF (PostScript) outlines are not supported")
        try:
            count = struct.unpack_from(">H", data, base + 4)[0]
            self.tables: dict[str, tuple[int, int]] = {}
            for i in range(count):
                tag, _, offset, length = struct.unpack_from(">4sIII", data, base + 12 + 16 * i)
                self.tables[tag.decode("latin-1")] = (offset, length)
            head = self._table("head")
            self.units_per_em = struct.unpack_from(">H", data, head + 18)[0]
            self.long_loca = struct.unpack_from(">h", data, head + 50)[0] == 1
            self.num_glyphs = struct.unpack_from(">H", data, self._table("maxp") + 4)[0]
            hhea = self._table("hhea")
            self.ascender, self.descender = struct.unpack_from(">hh", data, hhea + 4)
            self.num_hmetrics = struct.unpack_from(">H", data, hhea + 34)[0]
            self._cmap = self._read_cmap()
        except (struct.error, KeyError) as exc:
            raise FontError(f"unreadable font {path}: {exc}") from None

    def _table(self, tag: str) -> int:
        if tag not in self.tables:
            raise FontError(f"font has no {tag} table")
        return self.tables[tag][0]

    def _read_cmap(self) -> dict[int, int]:
        data, cmap = self.data, self._table("cmap")
        count = struct.unpack_from(">H", data, cmap + 2)[0]
        subtables = {}
        for i in range(count):
            platform, encoding, offset = struct.unpack_from(">HHI", data, cmap + 4 + 8 * i)
            subtables[(platform, encoding)] = cmap + offset
        for key in ((3, 10), (0, 4), (3, 1), (0, 3), (0, 1), (0, 0)):
            if key in subtables:
                start = subtables[key]
                fmt = struct.unpack_from(">H", data, start)[0]
                if fmt == 4:
                    return self._cmap_format4(start)
                if fmt == 12:
                    return self._cmap_format12(start)
        raise FontError("font has no Unicode character map")

    def _cmap_format4(self, start: int) -> dict[int, int]:
        data = self.data
        segs = struct.unpack_from(">H", data, start + 6)[0] // 2
        ends = struct.unpack_from(f">{segs}H", data, start + 14)
        starts = struct.unpack_from(f">{segs}H", data, start + 16 + 2 * segs)
        deltas = struct.unpack_from(f">{segs}h", data, start + 16 + 4 * segs)
        range_base = start + 16 + 6 * segs
        ranges = struct.unpack_from(f">{segs}H", data, range_base)
        mapping: dict[int, int] = {}
        for i in range(segs):
            for code in range(starts[i], ends[i] + 1):
                if code == 0xFFFF:
                    continue
                if ranges[i] == 0:
                    glyph = (code + deltas[i]) & 0xFFFF
                else:
                    addr = range_base + 2 * i + ranges[i] + 2 * (code - starts[i])
                    glyph = struct.unpack_from(">H", data, addr)[0]
                    glyph = (glyph + deltas[i]) & 0xFFFF if glyph else 0
                if glyph:
                    mapping[code] = glyph
        return mapping

    def _cmap_format12(self, start: int) -> dict[int, int]:
        groups = struct.unpack_from(">I", self.data, start + 12)[0]
        mapping: dict[int, int] = {}
        for i in range(groups):
            first, last, glyph = struct.unpack_from(">III", self.data, start + 16 + 12 * i)
            for code in range(first, min(last, first + 0xFFFF) + 1):
                mapping[code] = glyph + code - first
        return mapping

    def glyph_index(self, char: str) -> int:
        return self._cmap.get(ord(char), 0)

    def advance(self, glyph: int) -> int:
        """Horizontal advance in font units."""
        index = min(glyph, self.num_hmetrics - 1)
        return struct.unpack_from(">H", self.data, self._table("hmtx") + 4 * index)[0]

    def _glyph_range(self, glyph: int) -> tuple[int, int]:
        loca = self._table("loca")
        if self.long_loca:
            a, b = struct.unpack_from(">II", self.data, loca + 4 * glyph)
        else:
            a, b = (2 * v for v in struct.unpack_from(">HH", self.data, loca + 2 * glyph))
        glyf = self._table("glyf")
        return glyf + a, b - a

    @functools.lru_cache(maxsize=512)  # noqa: B019 - fonts live for the whole process
    def contours(self, glyph: int, depth: int = 0) -> tuple[np.ndarray, ...]:
        """Closed polylines of the glyph outline in font units, y up; curves flattened."""
        if glyph >= self.num_glyphs or depth > 8:
            return ()
        start, length = self._glyph_range(glyph)
        if length == 0:
            return ()
        n_contours = struct.unpack_from(">h", self.data, start)[0]
        if n_contours >= 0:
            return tuple(_flatten(c) for c in self._simple(start, n_contours))
        return self._composite(start, depth)

    def _simple(self, start: int, n_contours: int) -> list[list[tuple[float, float, bool]]]:
        data = self.data
        pos = start + 10
        ends = struct.unpack_from(f">{n_contours}H", data, pos)
        pos += 2 * n_contours
        pos += 2 + struct.unpack_from(">H", data, pos)[0]  # skip hinting instructions
        n_points = ends[-1] + 1 if ends else 0
        flags: list[int] = []
        while len(flags) < n_points:
            flag = data[pos]
            pos += 1
            flags.append(flag)
            if flag & 8:  # repeat
                flags.extend([flag] * data[pos])
                pos += 1
        coords = []
        for short_bit, same_bit in ((2, 16), (4, 32)):
            value, values = 0, []
            for flag in flags[:n_points]:
                if flag & short_bit:
                    delta = data[pos]
                    pos += 1
                    value += delta if flag & same_bit else -delta
                elif not flag & same_bit:
                    value += struct.unpack_from(">h", data, pos)[0]
                    pos += 2
                values.append(value)
            coords.append(values)
        points = [(x, y, bool(f & 1)) for x, y, f in zip(coords[0], coords[1], flags)]
        contours, first = [], 0
        for end in ends:
            contours.append(points[first : end + 1])
            first = end + 1
        return contours

    def _composite(self, start: int, depth: int) -> tuple[np.ndarray, ...]:
        data, pos = self.data, start + 10
        result: list[np.ndarray] = []
        while True:
            flags, glyph = struct.unpack_from(">HH", data, pos)
            pos += 4
            if flags & 1:  # 16-bit args
                dx, dy = struct.unpack_from(">hh", data, pos)
                pos += 4
            else:
                dx, dy = struct.unpack_from(">bb", data, pos)
                pos += 2
            matrix = np.eye(2)
            if flags & 8:
                scale = struct.unpack_from(">h", data, pos)[0] / 16384
                matrix = np.eye(2) * scale
                pos += 2
            elif flags & 0x40:
                sx, sy = struct.unpack_from(">hh", data, pos)
                matrix = np.diag([sx / 16384, sy / 16384])
                pos += 4
            elif flags & 0x80:
                a, b, c, d = struct.unpack_from(">hhhh", data, pos)
                matrix = np.array([[a, c], [b, d]]) / 16384
                pos += 8
            if not flags & 2:  # args are point numbers, not offsets: rare, ignore the shift
                dx = dy = 0
            for contour in self.contours(glyph, depth + 1):
                result.append(contour @ matrix.T + np.array([dx, dy]))
            if not flags & 0x20:  # no more components
                return tuple(result)


def _flatten(points: list[tuple[float, float, bool]], steps: int = 6) -> np.ndarray:
    """A TrueType contour (on/off-curve points) as a polyline: (N, 2) float64."""
    if not points:
        return np.zeros((0, 2))
    # Insert the implied on-curve midpoint between consecutive off-curve points.
    full: list[tuple[float, float, bool]] = []
    for i, point in enumerate(points):
        prev = points[i - 1]
        if not point[2] and not prev[2]:
            full.append(((prev[0] + point[0]) / 2, (prev[1] + point[1]) / 2, True))
        full.append(point)
    first_on = next((i for i, p in enumerate(full) if p[2]), None)
    if first_on is None:
        return np.array([(p[0], p[1]) for p in full], dtype=np.float64)
    full = full[first_on:] + full[:first_on]
    out = [full[0][:2]]
    t = np.linspace(0, 1, steps + 1)[1:, None]
    i = 1
    while i <= len(full):
        point = full[i % len(full)]
        if point[2]:
            out.append(point[:2])
            i += 1
            continue
        p0 = np.array(out[-1])
        ctrl = np.array(point[:2])
        p2 = np.array(full[(i + 1) % len(full)][:2])
        curve = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * ctrl + t**2 * p2
        out.extend(map(tuple, curve))
        i += 2
    return np.array(out, dtype=np.float64)


def _candidate_fonts() -> list[Path]:
    env = os.environ.get(FONT_ENV)
    found = [Path(env)] if env else []
    key = "win32" if sys.platform == "win32" else "darwin" if sys.platform == "darwin" else "linux"
    for folder in _FONT_DIRS[key]:
        root = Path(os.path.expanduser(folder))
        if not root.is_dir():
            continue
        for name in _FONT_NAMES:
            direct = root / name
            if direct.is_file():
                found.append(direct)
            elif key == "linux":
                found.extend(sorted(root.rglob(name))[:1])
    # keep preference order, then by name list, drop duplicates
    rank = {name: i for i, name in enumerate(_FONT_NAMES)}
    head = found[:1] if env else []
    rest = sorted(set(found[len(head) :]), key=lambda p: rank.get(p.name, len(rank)))
    return head + rest


@functools.lru_cache(maxsize=1)
def default_font() -> TrueTypeFont | None:
    """The first usable TrueType font on this system, or None (Hershey fallback)."""
    for path in _candidate_fonts():
        try:
            font = TrueTypeFont(path.read_bytes(), str(path))
        except (OSError, FontError) as exc:
            log.debug("skipping font %s: %s", path, exc)
            continue
        log.info("captions use font %s", path)
        return font
    log.warning("no TrueType font found; captions use OpenCV's built-in stroke font")
    return None


def text_width(text: str, px: float, font: TrueTypeFont | None) -> float:
    """Width in pixels of one line of `text` at a font size (em height) of `px` pixels."""
    if font is None:
        scale = px / 30.0
        return float(cv2.getTextSize(_ascii(text), cv2.FONT_HERSHEY_DUPLEX, scale, 1)[0][0])
    units = sum(font.advance(font.glyph_index(ch)) for ch in text)
    return units * px / font.units_per_em


def _ascii(text: str) -> str:
    return "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in text)


def render_line(text: str, px: float, font: TrueTypeFont | None) -> np.ndarray:
    """Coverage mask (H, W) float32 in [0, 1] of one line; H is the font's line height."""
    if font is None:
        return _render_hershey(text, px)
    s = SUPERSAMPLE
    scale = px * s / font.units_per_em
    ascent = font.ascender * scale
    height = int(np.ceil((font.ascender - font.descender) * scale)) + 2 * s
    width = int(np.ceil(text_width(text, px, font) * s)) + 2 * s
    canvas = np.zeros((height, max(width, s)), dtype=np.uint8)
    polys: list[np.ndarray] = []
    pen = float(s)
    for ch in text:
        glyph = font.glyph_index(ch)
        for contour in font.contours(glyph):
            if len(contour) < 3:
                continue
            xy = np.empty_like(contour)
            xy[:, 0] = pen + contour[:, 0] * scale
            xy[:, 1] = s + ascent - contour[:, 1] * scale
            polys.append(np.round(xy * 16).astype(np.int32))  # 4 fractional bits
        pen += font.advance(glyph) * scale
    if polys:
        # One fillPoly call over all contours gives even-odd filling, which cuts the holes of
        # letters like "o" and "A" out for well-formed fonts.
        cv2.fillPoly(canvas, polys, 255, lineType=cv2.LINE_8, shift=4)
    small = cv2.resize(
        canvas, (canvas.shape[1] // s, canvas.shape[0] // s), interpolation=cv2.INTER_AREA
    )
    return small.astype(np.float32) / 255.0


def _render_hershey(text: str, px: float) -> np.ndarray:
    text = _ascii(text)
    scale = px / 30.0
    thickness = max(1, round(px / 14))
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_DUPLEX, scale, thickness)
    canvas = np.zeros((h + base + 2 * thickness, w + 2 * thickness), dtype=np.uint8)
    cv2.putText(canvas, text, (thickness, h + thickness), cv2.FONT_HERSHEY_DUPLEX, scale, 255,
                thickness, cv2.LINE_AA)
    return canvas.astype(np.float32) / 255.0
