"""Temporal windows and spatial tiles over a chunk, with the smooth weights that blend them."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def plan_spans(n: int, size: int, overlap: int) -> list[tuple[int, int]]:
    """Cover [0, n) with spans of `size` overlapping by `overlap`; the last span ends at n.

    Spans are as even as possible so no tiny leftover span has too little context.
    """
    if size >= n:
        return [(0, n)]
    overlap = max(0, min(overlap, size - 1))
    step = size - overlap
    count = math.ceil((n - overlap) / step)
    starts = [round(i * (n - size) / (count - 1)) for i in range(count)] if count > 1 else [0]
    return [(s, s + size) for s in starts]


def ramp(n: int) -> Tensor:
    """(n,) weights of the later span over an n-long overlap: smooth, strictly inside (0, 1)."""
    t = (torch.arange(n, dtype=torch.float32) + 1) / (n + 1)
    return 0.5 - 0.5 * torch.cos(math.pi * t)


def span_weights(spans: list[tuple[int, int]], index: int) -> Tensor:
    """(size,) weights of span `index` so that overlapping spans sum to one at every position."""
    a, b = spans[index]
    w = torch.ones(b - a)
    if index > 0:
        ov = spans[index - 1][1] - a
        if ov > 0:
            w[:ov] = ramp(ov)
    if index + 1 < len(spans):
        ov = b - spans[index + 1][0]
        if ov > 0:
            w[b - a - ov:] = torch.minimum(w[b - a - ov:], 1 - ramp(ov))
    return w


def tile_weights(rows: list[tuple[int, int]], cols: list[tuple[int, int]], i: int,
                 j: int) -> Tensor:
    """(h, w) separable blending weights of tile (i, j)."""
    return span_weights(rows, i)[:, None] * span_weights(cols, j)[None, :]
