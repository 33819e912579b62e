"""Deinterlacing with FFmpeg's bwdif through a PyAV filter graph, and field order guessing.

DV and VHS captures store two fields per frame, taken 1/50 or 1/60 s apart; any motion shows as
combs. bwdif (yadif's successor) rebuilds every missing line from the field's own lines and from
the neighbouring frames, which is far better than any purely spatial filter. It needs to know which
field was shown first: a wrong guess makes motion jitter back and forth. FFmpeg's field order names
say which field is *coded* first and which is *displayed* first; only the display order matters:

    tt: top first    bb: bottom first    tb: top coded, bottom displayed first -> bottom first
    bt: bottom coded, top displayed first -> top first

Frames are sent through the graph as 16-bit planar RGB so neither precision nor chroma resolution
is lost on the way (the engine works on float RGB).
"""

from __future__ import annotations

import itertools
import logging
from fractions import Fraction

import av
import numpy as np

log = logging.getLogger(__name__)

# FFmpeg field order name -> the field displayed first ("tff" or "bff")
_DISPLAY_FIRST = {"tt": "tff", "bt": "tff", "bb": "bff", "tb": "bff"}


def parity_for(field_order: str) -> str | None:
    """bwdif parity ("tff"/"bff") for an FFmpeg field order name; None when it is not known."""
    return _DISPLAY_FIRST.get(field_order)


def deinterlace(frames: np.ndarray, parity: str, *, method: str = "bwdif") -> np.ndarray:
    """Deinterlace (T, H, W, 3) float32 [0, 1] frames; returns the same shape, one frame per frame.

    `parity` is "tff" or "bff". Each output frame shows the moment of its first field, so frame
    count and timing stay as they are (bwdif's send_frame mode). The first and last frames have
    no neighbour on one side; bwdif then leans on the frame itself.
    """
    if parity not in ("tff", "bff"):
        raise ValueError(f"parity must be 'tff' or 'bff', got {parity!r}")
    if method not in ("bwdif", "yadif"):
        raise ValueError(f"unknown deinterlacer {method!r}")
    t, h, w, _ = frames.shape
    if h < 4:
        return frames.copy()
    graph = av.filter.Graph()
    src = graph.add_buffer(width=w, height=h, format="rgb48le", time_base=Fraction(1, 25))
    to_planar = graph.add("format", "gbrp16le")
    deint = graph.add(method, f"mode=send_frame:parity={parity}:deint=all")
    to_packed = graph.add("format", "rgb48le")
    sink = graph.add("buffersink")
    src.link_to(to_planar)
    to_planar.link_to(deint)
    deint.link_to(to_packed)
    to_packed.link_to(sink)
    graph.configure()

    out = np.empty_like(frames)
    done = 0

    def drain() -> None:
        nonlocal done
        while True:
            try:
                frame = graph.pull()
            except (av.BlockingIOError, av.EOFError):
                return
            # (H, W, 3) uint16 -> float32 [0, 1]
            out[done] = frame.to_ndarray().astype(np.float32) * (1.0 / 65535.0)
            done += 1

    for i, image in enumerate(frames):
        u16 = np.clip(np.rint(image * 65535.0), 0, 65535).astype(np.uint16)
        frame = av.VideoFrame.from_ndarray(u16, format="rgb48le")
        frame.pts = i
        graph.push(frame)
        drain()
    graph.push(None)
    drain()
    if done != t:
        raise RuntimeError(f"{method} returned {done} frames for {t}")
    return out


def _field_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean difference between field `a` and the next field `b` half a line lower."""
    # b's line i sits between a's lines i and i+1
    between = 0.5 * (a[:-1] + a[1:])
    return float(np.mean(np.abs(between - b[: len(between)])))


def guess_field_order(frames: np.ndarray) -> str:
    """Guess which field comes first in time: "tff" or "bff" (from grey (T, H, W) or RGB frames).

    Fields shown one after another are closer in content than fields three steps apart. With
    top-first fields the order is T0 B0 T1 B1 ..., so B(t) -> T(t+1) is one step and
    T(t) -> B(t+1) is three; bottom-first swaps them. The within-frame pair is shared by both
    hypotheses and tells nothing. Without motion both are equal and "tff" (the common case) wins.
    """
    grey = frames.mean(axis=-1) if frames.ndim == 4 else frames
    if len(grey) < 2:
        return "tff"
    tff_cost = bff_cost = 0.0
    for cur, nxt in itertools.pairwise(grey):
        tff_cost += _field_distance(nxt[0::2], cur[1::2])  # B(t) -> T(t+1), top shifted up
        bff_cost += _field_distance(cur[0::2], nxt[1::2])  # T(t) -> B(t+1)
    guess = "bff" if bff_cost < tff_cost * 0.95 else "tff"
    log.debug("field order guess %s (tff cost %.4f, bff cost %.4f)", guess, tff_cost, bff_cost)
    return guess


def combing(frames: np.ndarray) -> float:
    """How combed the frames look: mean of the line-alternating vertical structure (0 = none).

    A line that is brighter (or darker) than both its neighbours is what interlacing of moving
    content produces; the product of the two differences is positive exactly there.
    """
    grey = frames.mean(axis=-1) if frames.ndim == 4 else frames
    mid = grey[..., 1:-1, :]
    product = (mid - grey[..., :-2, :]) * (mid - grey[..., 2:, :])
    return float(np.mean(np.maximum(product, 0.0)))
