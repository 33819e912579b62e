"""Window partition of one sample's token grid (both official methods, any grid size).

The window size is chosen as if the frame were resized to the 720p token area (45x80 tokens)
with the same aspect ratio, so a window covers about a third of the frame in height and width
whatever the resolution, and up to 8 latent frames. The plain method tiles from the origin; the
shifted one offsets the tiling by half a window on every axis that has more than one window.

Windows are listed with the w index outermost, then h, then t innermost, as the official code
does: the order changes only the floating-point summation order of the text mean, but parity
needs it. Every token belongs to exactly one window.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

WindowSlice = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]

# Token grid of a 720p frame: 720/8 (VAE) /2 (patch) = 45 rows, 1280/16 = 80 columns.
_REF_AREA = 45 * 80
_MAX_WINDOW_FRAMES = 30


def window_size(grid: Sequence[int], num_windows: Sequence[int]) -> tuple[int, int, int]:
    """Window extent (wt, wh, ww) in tokens for a (t, h, w) grid and the (nt, nh, nw) config."""
    t, h, w = (int(v) for v in grid)
    nt, nh, nw = (int(v) for v in num_windows)
    scale = math.sqrt(_REF_AREA / (h * w))
    # Python round (half to even) and float64, exactly as the official code computes it.
    resized_h, resized_w = round(h * scale), round(w * scale)
    return math.ceil(min(t, _MAX_WINDOW_FRAMES) / nt), math.ceil(resized_h / nh), math.ceil(
        resized_w / nw
    )


def _plain_axis(n: int, size: int) -> list[tuple[int, int]]:
    """[i*s, min((i+1)*s, n)) for every i; the last window may be short."""
    return [(i * size, min((i + 1) * size, n)) for i in range(math.ceil(n / size))]


def _shifted_axis(n: int, size: int) -> list[tuple[int, int]]:
    """Tiling offset by half a window (when the axis holds more than one window).

    Boundaries sit at int((i - 0.5) * size) (truncation toward zero, in float arithmetic as the
    official code does); windows left empty by the clipping are dropped.
    """
    if size >= n:
        return [(0, n)]
    shift = 0.5
    count = math.ceil((n - shift) / size) + 1
    out = []
    for i in range(count):
        start = max(int((i - shift) * size), 0)
        stop = min(int((i - shift + 1) * size), n)
        if stop > start:
            out.append((start, stop))
    return out


_AXIS_FN = {
    "720pwin_by_size_bysize": _plain_axis,
    "720pswin_by_size_bysize": _shifted_axis,
}


@functools.lru_cache(maxsize=256)
def _cached_windows(
    grid: tuple[int, int, int], num_windows: tuple[int, int, int], method: str
) -> tuple[WindowSlice, ...]:
    try:
        axis_fn = _AXIS_FN[method]
    except KeyError:
        raise ValueError(f"unknown window method {method!r}") from None
    sizes = window_size(grid, num_windows)
    t_axis, h_axis, w_axis = (axis_fn(n, s) for n, s in zip(grid, sizes))
    return tuple((ts, hs, ws) for ws in w_axis for hs in h_axis for ts in t_axis)


def make_windows(
    grid: Sequence[int], num_windows: Sequence[int], method: str
) -> list[WindowSlice]:
    """The windows of a (t, h, w) token grid as ((t0, t1), (h0, h1), (w0, w1)) half-open ranges.

    `num_windows` is the config's `window` entry, (4, 3, 3) in every released model.
    """
    g = tuple(int(v) for v in grid)
    if len(g) != 3 or min(g) < 1:
        raise ValueError(f"token grid must be three positive sizes, got {tuple(grid)}")
    nw = tuple(int(v) for v in num_windows)
    if len(nw) != 3 or min(nw) < 1:
        raise ValueError(f"window config must be three positive counts, got {tuple(num_windows)}")
    return list(_cached_windows(g, nw, method))
