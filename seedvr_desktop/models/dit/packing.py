"""Packed-batch bookkeeping and precomputed window plans for the windowed attention.

A packed batch concatenates B samples' tokens without padding (official `na` format): video
tokens of sample b are its (t, h, w) grid in row-major order, text tokens are its L_b rows.
`Packing` holds the sizes and caches everything derived from them (window index tensors, RoPE
positions, cos/sin tables), so a denoising loop that calls the DiT with the same shapes 50-100
times computes them once. Nothing here loops over tokens in Python: loops run over samples and
windows (tens to a few hundred), and per-token work is done with tensor ops.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from seedvr_desktop.models.dit.window import make_windows


@dataclass(frozen=True)
class SegmentGroup:
    """Attention segments with equal video and text lengths, run as one batched SDPA call.

    A segment is one window's video tokens (row-major in the window) followed by the text tokens
    of the window's sample.
    """

    vid_idx: Tensor  # (n, S) long: rows of the packed video tokens
    txt_idx: Tensor  # (n, Lt) long: rows of the packed text tokens
    txt_slot: Tensor  # (n, Lt) long: where each text output copy goes (see WindowPlan)


@dataclass(frozen=True)
class WindowPlan:
    """Everything about one (window config, method) partition of a packed batch.

    Text output copies are stored per sample as an (L_b, n_b) block (text row major, window
    minor) starting at `txt_copy_base[b]`, so the mean over the sample's windows is a `.mean(1)`
    of a view in the same layout as the official code's.
    """

    groups: tuple[SegmentGroup, ...]
    windows_per_sample: tuple[int, ...]
    txt_copy_base: tuple[int, ...]
    txt_copy_len: int
    vid_pos: Tensor  # (L, 3) float32 window-local RoPE positions, original token order
    window_count: int


class Packing:
    """Sizes of one packed batch plus caches of the plans derived from them."""

    def __init__(
        self,
        grids: Sequence[tuple[int, int, int]],
        txt_lens: Sequence[int],
        device: torch.device,
    ) -> None:
        if len(grids) != len(txt_lens) or not grids:
            raise ValueError("vid_shape and txt_shape must describe the same, non-zero batch")
        self.grids = tuple(tuple(int(v) for v in g) for g in grids)
        self.txt_lens = tuple(int(n) for n in txt_lens)
        if min(self.txt_lens) < 1:
            raise ValueError("every sample needs at least one text token")
        self.device = device
        self.vid_lens = tuple(t * h * w for t, h, w in self.grids)
        self.vid_offsets = _offsets(self.vid_lens)
        self.txt_offsets = _offsets(self.txt_lens)
        self._cache: dict[Any, Any] = {}

    @property
    def batch(self) -> int:
        return len(self.grids)

    @property
    def vid_total(self) -> int:
        return sum(self.vid_lens)

    @property
    def txt_total(self) -> int:
        return sum(self.txt_lens)

    def cached(self, key: Any, build: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def token_sample(self, branch: str) -> Tensor | None:
        """Per-token sample index (L,) for per-sample values, or None when B == 1 (broadcast)."""
        if self.batch == 1:
            return None
        lens = self.vid_lens if branch == "vid" else self.txt_lens

        def build() -> Tensor:
            counts = torch.tensor(lens, device=self.device)
            return torch.repeat_interleave(torch.arange(self.batch, device=self.device), counts)

        return self.cached(("token_sample", branch), build)

    def window_plan(self, num_windows: tuple[int, int, int], method: str, rope: str) -> WindowPlan:
        return self.cached(
            ("plan", num_windows, method, rope),
            lambda: _build_plan(self, num_windows, method, rope),
        )

    def txt_rope_rows(self, counts: tuple[int, ...]) -> tuple[Tensor, Tensor]:
        """v2 text q/k rows and positions, reproducing the official packed-batch indexing.

        The official code rotates a copy of each sample's text per window ([s0 x n0, s1 x n1,
        ...]) but then reads it as if it were not repeated, so row Σ_{b'<b} L_b' + j of that
        repeated layout feeds sample b's text token j. For B == 1 this is the identity.
        `counts` is the number of windows of each sample in this layer's partition.
        Returns (source row in the packed text (Lt,), RoPE position (Lt,) float32).
        """

        def build() -> tuple[Tensor, Tensor]:
            src, pos = [], []
            total = self.txt_total
            for p in range(total):
                r = p
                for s, (length, n) in enumerate(zip(self.txt_lens, counts)):
                    if r < length * n:
                        j = r % length
                        src.append(self.txt_offsets[s] + j)
                        pos.append(float(j))
                        break
                    r -= length * n
            return (
                torch.tensor(src, dtype=torch.long, device=self.device),
                torch.tensor(pos, dtype=torch.float32, device=self.device),
            )

        return self.cached(("txt_rope_rows", counts), build)


def _offsets(lens: Sequence[int]) -> tuple[int, ...]:
    out, acc = [], 0
    for n in lens:
        out.append(acc)
        acc += n
    return tuple(out)


def _axis_positions(rope: str, start: int, stop: int, offset: int) -> Tensor:
    """Window-local positions along one axis: integers (+offset) for v2, linspace(-1,1) for v1."""
    n = stop - start
    if rope == "pixel":
        return torch.linspace(-1.0, 1.0, n, dtype=torch.float32)
    return torch.arange(offset, offset + n, dtype=torch.float32)


def _build_plan(
    packing: Packing, num_windows: tuple[int, int, int], method: str, rope: str
) -> WindowPlan:
    """Window partition of every sample, grouped by segment shape, plus RoPE positions."""
    vid_pos = torch.empty(packing.vid_total, 3, dtype=torch.float32)
    segments: list[tuple[Tensor, Tensor, int]] = []  # (video rows, text rows, text offset)
    counts: list[int] = []
    bases: list[int] = []
    copy_len = 0
    for b, (grid, txt_len) in enumerate(zip(packing.grids, packing.txt_lens)):
        _, h, w = grid
        windows = make_windows(grid, num_windows, method)
        counts.append(len(windows))
        bases.append(copy_len)
        copy_len += len(windows) * txt_len
        txt_rows = torch.arange(txt_len) + packing.txt_offsets[b]
        for (t0, t1), (h0, h1), (w0, w1) in windows:
            tt = torch.arange(t0, t1)[:, None, None]
            hh = torch.arange(h0, h1)[None, :, None]
            ww = torch.arange(w0, w1)[None, None, :]
            rows = ((tt * h + hh) * w + ww).reshape(-1) + packing.vid_offsets[b]
            # Video token (τ, η, ω) of the window: v2 uses (L_txt + τ, η, ω), v1 linspace.
            pt = _axis_positions(rope, t0, t1, txt_len)
            ph = _axis_positions(rope, h0, h1, 0)
            pw = _axis_positions(rope, w0, w1, 0)
            grid_pos = torch.stack(
                torch.broadcast_tensors(pt[:, None, None], ph[None, :, None], pw[None, None, :]),
                dim=-1,
            )
            vid_pos[rows] = grid_pos.reshape(-1, 3)
            segments.append((rows, txt_rows, packing.txt_offsets[b]))

    slots = _text_copy_slots(segments)
    groups: dict[tuple[int, int], tuple[list[Tensor], list[Tensor], list[Tensor]]] = {}
    for (rows, txt_rows, _), slot in zip(segments, slots):
        entry = groups.setdefault((rows.numel(), txt_rows.numel()), ([], [], []))
        entry[0].append(rows)
        entry[1].append(txt_rows)
        entry[2].append(slot)
    dev = packing.device
    built = tuple(
        SegmentGroup(
            vid_idx=torch.stack(v).to(dev),
            txt_idx=torch.stack(x).to(dev),
            txt_slot=torch.stack(s).to(dev),
        )
        for v, x, s in groups.values()
    )
    return WindowPlan(
        groups=built,
        windows_per_sample=tuple(counts),
        txt_copy_base=tuple(bases),
        txt_copy_len=copy_len,
        vid_pos=vid_pos.to(dev),
        window_count=sum(counts),
    )


def _text_copy_slots(segments: list[tuple[Tensor, Tensor, int]]) -> list[Tensor]:
    """For each segment, the buffer slots of its text output copies.

    The official code lays all segments out as [window video | sample text] index runs and
    recovers the text copies with an (unstable) CPU argsort of that layout; the resulting copy
    order is the summation order of the text mean. Running the same argsort on the same int64
    layout reproduces it exactly. Slots of sample b fill an (L_b, n_b) block, text row major.
    """
    vid_total = sum(rows.numel() for rows, _, _ in segments)
    layout, txt_starts, pos, vid_next = [], [], 0, 0
    for rows, txt_rows, txt_offset in segments:
        n_vid, n_txt = rows.numel(), txt_rows.numel()
        layout.append(torch.arange(vid_next, vid_next + n_vid))
        layout.append(vid_total + txt_offset + torch.arange(n_txt))
        txt_starts.append(pos + n_vid)
        vid_next += n_vid
        pos += n_vid + n_txt
    order = torch.argsort(torch.cat(layout))  # int64 on CPU, as in the reference
    flat_to_slot = torch.empty(pos, dtype=torch.long)
    flat_to_slot[order[vid_total:]] = torch.arange(pos - vid_total)
    return [
        flat_to_slot[start : start + txt_rows.numel()]
        for start, (_, txt_rows, _) in zip(txt_starts, segments)
    ]
