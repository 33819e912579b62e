"""The output frame size: one rule from the user, the engine's size multiple, sane limits.

The source size given here is the DISPLAY size (after sample aspect ratio and rotation), so
keeping its proportions keeps the picture's shape: a 720x576 PAL capture with a 16:9 sample aspect
ratio is 1024x576 on screen and scales from that. Engines need widths and heights that are
multiples of some number (2 for 4:2:0 encoders, more for models that work on latent patches), so
every side is rounded to the nearest multiple; the aspect ratio is then off by at most half a
multiple per side, which nobody can see.
"""

from __future__ import annotations

import logging
import math

from seedvr_desktop.engine.job import SizeRule
from seedvr_desktop.errors import UserError

log = logging.getLogger(__name__)

MIN_SIDE = 16  # smaller requests are typing mistakes, and encoders refuse some tiny sizes
MAX_SIDE = 16384  # beyond what H.264/H.265 levels allow and what fits in memory per chunk
MAX_SCALE = 16.0


def _round_to(value: float, multiple: int) -> int:
    """Nearest multiple of `multiple` (halves round up), never below `multiple`."""
    return max(multiple, math.floor(value / multiple + 0.5) * multiple)


def output_size(
    src_w: int,
    src_h: int,
    rule: SizeRule,
    *,
    multiple: int = 2,
    default_scale: float = 1.0,
    default_area: int | None = None,
) -> tuple[int, int]:
    """(width, height) of the output for a source shown at src_w x src_h.

    At most one of rule.scale, rule.short_side, rule.size may be set; with none set the source is
    scaled by `default_scale` (the engine's native factor), or to `default_area` pixels with its
    aspect ratio kept when that is given (how SeedVR's own inference sizes frames). An explicit
    size is honoured as given (rounded to the multiple) even if it changes the aspect ratio; one of
    its two numbers may be 0 to derive it from the other and the source's aspect ratio.
    """
    if src_w < 1 or src_h < 1:
        raise UserError(f"the source has no picture size ({src_w}x{src_h})")
    if multiple < 1:
        raise ValueError(f"size multiple must be >= 1, got {multiple}")
    chosen = [x is not None for x in (rule.scale, rule.short_side, rule.size)]
    if sum(chosen) > 1:
        raise UserError("choose only one of --scale, --short-side and --size")

    if rule.size is not None:
        width, height = _explicit(src_w, src_h, rule.size)
    elif rule.short_side is not None:
        short = rule.short_side
        if not isinstance(short, int) or not MIN_SIDE <= short <= MAX_SIDE:
            raise UserError(
                f"short side must be a whole number from {MIN_SIDE} to {MAX_SIDE}, got {short}"
            )
        factor = short / min(src_w, src_h)
        width, height = src_w * factor, src_h * factor
    else:
        if rule.scale is not None:
            scale = rule.scale
        elif default_area is not None:
            scale = math.sqrt(default_area / (src_w * src_h))
        else:
            scale = default_scale
        if not math.isfinite(scale) or not 0.0 < scale <= MAX_SCALE:
            raise UserError(f"scale must be above 0 and at most {MAX_SCALE:g}, got {scale}")
        width, height = src_w * scale, src_h * scale
        if min(width, height) < 1.0:
            raise UserError(
                f"scale {scale:g} leaves less than one pixel of a {src_w}x{src_h} picture"
            )

    out = (_round_to(width, multiple), _round_to(height, multiple))
    if max(out) > MAX_SIDE:
        raise UserError(
            f"output size {out[0]}x{out[1]} is too large (at most {MAX_SIDE} pixels per side)"
        )
    return out


def _explicit(src_w: int, src_h: int, size: tuple[int, int]) -> tuple[float, float]:
    """Check an explicit (width, height); a 0 takes that side from the source's aspect ratio."""
    try:
        width, height = (int(v) for v in size)
    except (TypeError, ValueError):
        raise UserError(f"size must be two whole numbers WIDTHxHEIGHT, got {size!r}") from None
    if (width, height) != tuple(size):
        raise UserError(f"size must be two whole numbers WIDTHxHEIGHT, got {size!r}")
    for side in (width, height):
        if side != 0 and not MIN_SIDE <= side <= MAX_SIDE:
            raise UserError(
                f"size {width}x{height}: each side must be from {MIN_SIDE} to "
                f"{MAX_SIDE} pixels (or 0 to keep the aspect ratio)"
            )
    if width == 0 and height == 0:
        raise UserError("size 0x0: give at least the width or the height")
    if width == 0:
        return height * src_w / src_h, float(height)
    if height == 0:
        return float(width), width * src_h / src_w
    if abs((width / height) / (src_w / src_h) - 1.0) > 0.01:
        log.warning(
            "output size %dx%d changes the picture's shape (source %dx%d)",
            width,
            height,
            src_w,
            src_h,
        )
    return float(width), float(height)
