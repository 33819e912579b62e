"""Caption text to anti-aliased coverage masks, through Pillow's FreeType renderer.

Pillow's wheels bundle FreeType (and usually Raqm for shaping), so any TrueType, OpenType/CFF or
collection font works, with kerning and complex scripts, and no Qt is needed outside the UI
package. A font file is looked up once: the SEEDVR_DESKTOP_CAPTION_FONT setting, then common
sans-serif fonts of each OS; without any, Pillow's own built-in scalable font is used, so
captions always appear (machines with no fonts at all, minimal containers).
"""

from __future__ import annotations

import functools
import logging
import math
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

log = logging.getLogger(__name__)

FONT_ENV = "SEEDVR_DESKTOP_CAPTION_FONT"
BUILTIN = "pillow-default"  # identity of Pillow's built-in font

_FONT_NAMES = (
    "DejaVuSans-Bold.ttf", "DejaVuSans.ttf", "LiberationSans-Bold.ttf",
    "LiberationSans-Regular.ttf", "NotoSans-Bold.ttf", "NotoSans-Regular.ttf",
    "arialbd.ttf", "arial.ttf", "segoeuib.ttf", "segoeui.ttf", "Arial Bold.ttf", "Arial.ttf",
    "Helvetica.ttc",
)  # fmt: skip
_FONT_DIRS = {
    "linux": ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts"),
    "win32": (os.path.join(os.environ.get("WINDIR", "C:\\Windows"), "Fonts"),),
    "darwin": ("/System/Library/Fonts/Supplemental", "/System/Library/Fonts", "/Library/Fonts",
               "~/Library/Fonts"),
}


class CaptionFont:
    """A font file (or Pillow's built-in font when `path` is None), opened once per pixel size.

    `identity` names what is drawn with, for resume fingerprints: output drawn with another
    font must not be mixed with frames drawn earlier.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = None if path is None else os.fspath(path)
        self.identity = BUILTIN if self.path is None else f"{Path(self.path).name}"
        self._sizes: dict[int, ImageFont.FreeTypeFont | ImageFont.ImageFont] = {}
        if self.path is not None:
            ImageFont.truetype(self.path, 12)  # fail now (OSError) for an unusable file

    def at(self, px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
        """The font at an em size of `px` pixels (opened once per size: a caption block
        uses one size, a render a handful)."""
        face = self._sizes.get(px)
        if face is None:
            if self.path is None:
                face = ImageFont.load_default(px)  # a bitmap font only without FreeType
            else:
                face = ImageFont.truetype(self.path, px)
            self._sizes[px] = face
        return face

    def __repr__(self) -> str:
        return f"CaptionFont({self.identity!r})"


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
    rank = {name: i for i, name in enumerate(_FONT_NAMES)}
    head = found[:1] if env else []
    rest = sorted(set(found[len(head) :]), key=lambda p: rank.get(p.name, len(rank)))
    return head + rest


@functools.lru_cache(maxsize=1)
def default_font() -> CaptionFont:
    """The first usable font file on this system, else Pillow's built-in font."""
    for path in _candidate_fonts():
        try:
            font = CaptionFont(path)
        except OSError as exc:
            log.debug("skipping font %s: %s", path, exc)
            continue
        log.info("captions use font %s", path)
        return font
    log.warning("no font file found; captions use Pillow's built-in font")
    return CaptionFont(None)


_BUILTIN_FONT = CaptionFont(None)


def _sized(font: CaptionFont | None, px: float) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return (font or _BUILTIN_FONT).at(max(1, round(px)))


def text_width(text: str, px: float, font: CaptionFont | None) -> float:
    """Advance width in pixels of one line of `text` at an em size of `px` pixels."""
    return float(_sized(font, px).getlength(text))


def render_line(text: str, px: float, font: CaptionFont | None) -> np.ndarray:
    """Coverage mask (H, W) float32 in [0, 1] of one line; H is the font's line height.

    Drawn from the ascender line so every line of a block has the same height and baseline;
    the width covers both the advance and any ink beyond it (italic overhangs).
    """
    face = _sized(font, px)
    ascent, descent = face.getmetrics() if isinstance(face, ImageFont.FreeTypeFont) \
        else (round(px), 0)
    left, _top, right, bottom = face.getbbox(text or " ", anchor="la") \
        if isinstance(face, ImageFont.FreeTypeFont) else face.getbbox(text or " ")
    pad = 1 + max(0, -math.floor(left))
    width = max(math.ceil(face.getlength(text)), math.ceil(right)) + pad + 1
    height = max(ascent + descent, math.ceil(bottom)) + 2
    canvas = Image.new("L", (max(width, 1), height), 0)
    draw = ImageDraw.Draw(canvas)
    if isinstance(face, ImageFont.FreeTypeFont):
        draw.text((pad, 1), text, font=face, fill=255, anchor="la")
    else:
        draw.text((pad, 1), text, font=face, fill=255)
    return np.asarray(canvas, dtype=np.float32) / 255.0
