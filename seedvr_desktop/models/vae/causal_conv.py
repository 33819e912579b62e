"""Causal 3-D convolution with explicit streaming state and exact spatial tiling.

Causality: the temporal padding is moved out of the convolution and replaced by copies of the
first frame in front (the official `InflatedCausalConv3d`), so output frame k depends only on
input frames <= k. When a clip is processed in temporal slices, each conv instead puts the input
frames it has not finished using (its "carry") in front of the next slice; the result is then
identical to processing the whole clip. The carry is passed in and returned through a
`CausalContext` object owned by the caller — modules keep no state between calls, so one model
can serve several streams and a failed call leaves nothing behind.

Memory: at 720p the first/last VAE stages hold gigabytes per tensor. With `conv_max_bytes` set,
a conv whose padded input would exceed the budget is computed in tiles of output rows (then
columns), each tile reading the exact halo rows/cols it needs from its neighbours and zero
padding only at the outer edges, so tiling changes memory, not results.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class CausalContext:
    """Per-call settings and streaming carries, threaded through every block of one VAE call.

    `first`: this slice starts the clip (convs replicate frame 0; temporal upsamplers drop the
    duplicate of frame 0). `carry_in`: the carries returned by the previous slice (by conv key).
    `carry_out`: filled during this call when `streaming` is set; hand it to the next slice.
    """

    first: bool = True
    streaming: bool = False
    carry_in: Mapping[str, Tensor] = field(default_factory=dict)
    carry_out: dict[str, Tensor] = field(default_factory=dict)
    conv_max_bytes: float = math.inf  # tile convs whose padded input exceeds this
    norm_max_bytes: float = math.inf  # chunk GroupNorm over whole groups above this
    # Layout of the buffers the convs build: channels_last_3d on CUDA (cuDNN's fast NDHWC path).
    memory_format: torch.memory_format | None = None

    def format_for(self, x: Tensor) -> torch.memory_format:
        return self.memory_format if self.memory_format is not None else preferred_format(x)


def preferred_format(x: Tensor) -> torch.memory_format:
    """channels_last_3d when `x` already uses it (the CUDA fast path), else contiguous."""
    if (
        x.dim() == 5
        and not x.is_contiguous()
        and x.is_contiguous(memory_format=torch.channels_last_3d)
    ):
        return torch.channels_last_3d
    return torch.contiguous_format


class CausalConv3d(nn.Module):
    """Conv3d with causal (frame-0 replicating) temporal padding and zero spatial padding.

    Parameters are named `weight`/`bias` exactly like the official module so checkpoints load.
    `spatial_padding` is (top, bottom, left, right); the official downsamplers pad (0,1,0,1).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int, int],
        *,
        stride: int | tuple[int, int, int] = 1,
        temporal_padding: int = 0,
        spatial_padding: tuple[int, int, int, int] = (0, 0, 0, 0),
        bias: bool = True,
    ) -> None:
        super().__init__()
        k = (kernel_size,) * 3 if isinstance(kernel_size, int) else tuple(kernel_size)
        s = (stride,) * 3 if isinstance(stride, int) else tuple(stride)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size: tuple[int, int, int] = k  # type: ignore[assignment]
        self.stride: tuple[int, int, int] = s  # type: ignore[assignment]
        self.head = 2 * temporal_padding  # frames put in front at the start of a clip
        self.spatial_padding = tuple(spatial_padding)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, *k))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.stream_key = ""  # set by the owning model to the module path (names the carry)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default Conv init (only used when a checkpoint lacks these weights)."""
        if self.weight.is_meta:
            return
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight[0].numel()
            bound = 1 / math.sqrt(fan_in) if fan_in else 0.0
            nn.init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel={self.kernel_size}, "
            f"stride={self.stride}, head={self.head}, pad={self.spatial_padding}"
        )

    # ------------------------------------------------------------------ forward
    def forward(self, x: Tensor, ctx: CausalContext | None = None) -> Tensor:
        """x: (B, C, T, H, W) -> (B, C_out, T_out, H_out, W_out)."""
        kt, st = self.kernel_size[0], self.stride[0]
        fmt = ctx.format_for(x) if ctx is not None else preferred_format(x)
        prev: Tensor | None = None
        if ctx is not None and not ctx.first and kt > st:
            prev = ctx.carry_in.get(self.stream_key)
            if prev is None:
                raise RuntimeError(f"missing streaming carry for {self.stream_key or 'conv'}")
        n_head = prev.shape[2] if prev is not None else (self.head if kt > 1 else 0)
        length = n_head + x.shape[2]
        if length < kt:
            raise ValueError(f"{length} frames are too few for a temporal kernel of {kt}")
        if ctx is not None and ctx.streaming and kt > st:
            n_out = (length - kt) // st + 1
            ctx.carry_out[self.stream_key] = self._tail(prev, n_head, x, n_out * st, fmt)
        limit = ctx.conv_max_bytes if ctx is not None else math.inf
        top, bottom, left, right = self.spatial_padding
        b, c, _, h, w = x.shape
        padded_bytes = b * c * length * (h + top + bottom) * (w + left + right) * x.element_size()
        if padded_bytes <= limit:
            return self._conv_whole(x, prev, n_head, fmt)
        return self._conv_tiled(x, prev, n_head, fmt, padded_bytes, limit)

    @staticmethod
    def _tail(
        prev: Tensor | None, n_head: int, x: Tensor, start: int, fmt: torch.memory_format
    ) -> Tensor:
        """Frames [start:] of the virtual sequence head+x, copied (small) for the next slice."""
        if start >= n_head:
            return x[:, :, start - n_head :].clone(memory_format=fmt)
        head = prev if prev is not None else x[:, :, :1].expand(-1, -1, n_head, -1, -1)
        return torch.cat([head[:, :, start:], x], dim=2).contiguous(memory_format=fmt)

    def _conv_whole(
        self, x: Tensor, prev: Tensor | None, n_head: int, fmt: torch.memory_format
    ) -> Tensor:
        top, bottom, left, right = self.spatial_padding
        if top == bottom and left == right:
            # Fast path: the conv pads spatially itself; one copy only to put the head in front.
            if n_head == 0:
                full = x if x.is_contiguous(memory_format=fmt) else x.contiguous(memory_format=fmt)
            else:
                full = _assemble(x, prev, n_head, 0, x.shape[3], 0, x.shape[4], fmt)
            return F.conv3d(full, self.weight, self.bias, self.stride, (0, top, left))
        full = _assemble(x, prev, n_head, -top, x.shape[3] + bottom, -left, x.shape[4] + right, fmt)
        return F.conv3d(full, self.weight, self.bias, self.stride)

    def _conv_tiled(
        self,
        x: Tensor,
        prev: Tensor | None,
        n_head: int,
        fmt: torch.memory_format,
        padded_bytes: float,
        limit: float,
    ) -> Tensor:
        """Exact tiling over output rows, then (if a row band is still too big) columns."""
        _, kh, kw = self.kernel_size
        _, sh, sw = self.stride
        top, bottom, left, right = self.spatial_padding
        b, _, t, h, w = x.shape
        h_out = (h + top + bottom - kh) // sh + 1
        w_out = (w + left + right - kw) // sw + 1
        t_out = (n_head + t - self.kernel_size[0]) // self.stride[0] + 1
        n_rows = min(h_out, math.ceil(padded_bytes / limit))
        n_cols = min(w_out, math.ceil(padded_bytes / n_rows / limit))
        out = torch.empty(
            (b, self.out_channels, t_out, h_out, w_out),
            dtype=x.dtype,
            device=x.device,
            memory_format=fmt,
        )
        for r0, r1 in _even_splits(h_out, n_rows):
            i0, i1 = r0 * sh - top, (r1 - 1) * sh + kh - top  # input rows, may pass the edges
            for c0, c1 in _even_splits(w_out, n_cols):
                j0, j1 = c0 * sw - left, (c1 - 1) * sw + kw - left
                tile = _assemble(x, prev, n_head, i0, i1, j0, j1, fmt)
                out[:, :, :, r0:r1, c0:c1] = F.conv3d(tile, self.weight, self.bias, self.stride)
        return out


def _even_splits(n: int, parts: int) -> list[tuple[int, int]]:
    """`parts` contiguous ranges covering [0, n) with sizes differing by at most one."""
    parts = max(1, min(parts, n))
    edges = [round(i * n / parts) for i in range(parts + 1)]
    return [(edges[i], edges[i + 1]) for i in range(parts)]


def _assemble(
    x: Tensor,
    prev: Tensor | None,
    n_head: int,
    i0: int,
    i1: int,
    j0: int,
    j1: int,
    fmt: torch.memory_format,
) -> Tensor:
    """One buffer holding head+x over rows [i0, i1) and cols [j0, j1), zeros outside the frame.

    The head is `prev` (carried frames) or `n_head` copies of frame 0. Rows/cols outside
    [0, H) / [0, W) are the conv's zero padding. Exactly one copy of the data is made.
    """
    b, c, t, h, w = x.shape
    out = torch.empty(
        (b, c, n_head + t, i1 - i0, j1 - j0),
        dtype=x.dtype,
        device=x.device,
        memory_format=fmt,
    )
    si0, si1, sj0, sj1 = max(i0, 0), min(i1, h), max(j0, 0), min(j1, w)
    oi0, oi1, oj0, oj1 = si0 - i0, si1 - i0, sj0 - j0, sj1 - j0
    if oi0 > 0:
        out[:, :, :, :oi0].zero_()
    if oi1 < out.shape[3]:
        out[:, :, :, oi1:].zero_()
    if oj0 > 0:
        out[:, :, :, oi0:oi1, :oj0].zero_()
    if oj1 < out.shape[4]:
        out[:, :, :, oi0:oi1, oj1:].zero_()
    if n_head:
        src = prev if prev is not None else x[:, :, :1]
        out[:, :, :n_head, oi0:oi1, oj0:oj1] = src[:, :, :, si0:si1, sj0:sj1].to(x.dtype)
    out[:, :, n_head:, oi0:oi1, oj0:oj1] = x[:, :, :, si0:si1, sj0:sj1]
    return out
