"""Building blocks of the SeedVR engine that do not depend on a loaded model.

* Preprocessing as the official inference (antialiased bicubic resize, clamp, [-1, 1]) but with
  reflect padding to a multiple of 16 instead of a centre crop, so no border pixel is lost.
* Position-keyed noise: every latent frame's noise comes from its own generator seeded by
  (job seed, purpose, absolute index of the last source frame it covers). The same frame gets
  the same noise whichever chunk or DiT window it falls in, so a resumed job, a re-chunked job
  after an out-of-memory retry and two overlapping windows all see identical noise, and the
  noise is drawn on the CPU so it does not depend on the device either.
* Temporal windows and spatial tiles with smooth blending weights.
* Hooks on the DiT blocks: a cancel check before every block (cancel within one block's time)
  and optional streaming of block weights from CPU memory for GPUs too small for the model.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seedvr_desktop.errors import Cancelled

SIZE_MULTIPLE = 16  # VAE x8 and DiT patch x2
TEMPORAL_FACTOR = 4


# ------------------------------------------------------------------------------ cancel
def check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled()


# ------------------------------------------------------------------------------ geometry
def padded_size(width: int, height: int) -> tuple[int, int]:
    """(W, H) rounded up to the model's multiple of 16."""
    m = SIZE_MULTIPLE
    return -(-width // m) * m, -(-height // m) * m


def valid_frames(n: int) -> int:
    """Smallest 4k+1 >= n (the VAE's causal frame count)."""
    return n if n <= 1 else ((n - 1 + TEMPORAL_FACTOR - 1) // TEMPORAL_FACTOR) * TEMPORAL_FACTOR + 1


def latent_count(frames: int) -> int:
    """Latent frames for a 4k+1-frame clip."""
    return (frames - 1) // TEMPORAL_FACTOR + 1


def latent_keys(first_frame: int, n_latents: int) -> list[int]:
    """Absolute index of the last source frame each latent covers (its noise key)."""
    return [first_frame + TEMPORAL_FACTOR * j for j in range(n_latents)]


def preprocess(frames: np.ndarray | Tensor, out_w: int, out_h: int, device: torch.device,
               dtype: torch.dtype) -> Tensor:
    """(T, H, W, 3) float [0,1] -> (1, 3, T, Hp, Wp) in [-1, 1] at the output size, padded to /16.

    Resizing is antialiased bicubic (what torchvision's resize does for the official scripts) and
    runs in float32 on the device; padding reflects the picture (replicates when the picture is
    smaller than the pad), which gives the model natural texture instead of a hard black edge.
    """
    x = torch.as_tensor(frames).to(device=device, dtype=torch.float32)
    x = x.permute(0, 3, 1, 2)  # (T, 3, H, W)
    if x.shape[-2:] != (out_h, out_w):
        x = F.interpolate(x, size=(out_h, out_w), mode="bicubic", align_corners=False,
                          antialias=True)
    x = x.clamp_(0, 1).mul_(2).sub_(1)
    pw, ph = padded_size(out_w, out_h)
    if (pw, ph) != (out_w, out_h):
        pad = (0, pw - out_w, 0, ph - out_h)
        mode = "reflect" if pw - out_w < out_w and ph - out_h < out_h else "replicate"
        x = F.pad(x, pad, mode=mode)
    return x.permute(1, 0, 2, 3).unsqueeze(0).to(dtype)  # (1, 3, T, Hp, Wp)


def postprocess(x: Tensor, out_w: int, out_h: int) -> np.ndarray:
    """(1, 3, T, Hp, Wp) in [-1, 1] -> (T, out_h, out_w, 3) float32 [0, 1] on the CPU."""
    x = x[0, :, :, :out_h, :out_w].float().clamp(-1, 1).add(1).mul(0.5)
    return x.permute(1, 2, 3, 0).contiguous().cpu().numpy()


# ------------------------------------------------------------------------------ noise
def _key_seed(seed: int, tag: str, key: int) -> int:
    digest = hashlib.blake2b(f"{seed}:{tag}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def keyed_noise(seed: int, tag: str, keys: Sequence[int], frame_shape: Sequence[int]) -> Tensor:
    """(len(keys), *frame_shape) standard normal float32 noise, one generator per key, CPU."""
    out = torch.empty((len(keys), *frame_shape), dtype=torch.float32)
    gen = torch.Generator(device="cpu")
    for i, key in enumerate(keys):
        gen.manual_seed(_key_seed(seed, tag, key))
        out[i] = torch.randn(tuple(frame_shape), generator=gen, dtype=torch.float32)
    return out


# ------------------------------------------------------------------------------ windows
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


# ------------------------------------------------------------------------------ hooks
@contextmanager
def cancel_hooks(model: nn.Module, cancel: threading.Event | None,
                 kinds: tuple[type[nn.Module], ...]) -> Iterator[None]:
    """Check `cancel` before every submodule of the given kinds runs (e.g. each VAE conv), so
    a long VAE slice at high resolution stops within one convolution's time."""
    if cancel is None:
        yield
        return
    handles = [m.register_forward_pre_hook(lambda _m, _a: check_cancel(cancel))
               for m in model.modules() if isinstance(m, kinds)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@contextmanager
def dit_block_hooks(dit: nn.Module, cancel: threading.Event | None,
                    stream_to: torch.device | None = None) -> Iterator[None]:
    """Check `cancel` before each DiT block; with `stream_to`, keep block weights on the CPU
    and move each block's weights to the device just for its forward.

    Streaming swaps `param.data` between a CPU master copy and a device copy, so weights never
    travel back to the CPU and the GPU holds one block at a time (plus its successor in flight).
    """
    blocks = getattr(dit, "blocks", None)
    if blocks is None:
        yield
        return
    handles = []
    masters: dict[int, list[tuple[nn.Parameter | Tensor, Tensor]]] = {}
    if stream_to is not None:
        for i, block in enumerate(blocks):
            pin = stream_to.type == "cuda"
            masters[i] = []
            for t in [*block.parameters(), *block.buffers()]:
                master = t.data.to("cpu")
                if pin and not master.is_pinned():
                    master = master.pin_memory()  # pinned: asynchronous copies to the GPU
                t.data = master
                masters[i].append((t, master))

    def before(index: int):
        def hook(module: nn.Module, args: object) -> None:
            check_cancel(cancel)
            if stream_to is not None:
                for t, master in masters[index]:
                    t.data = master.to(stream_to, non_blocking=True)

        return hook

    def after(index: int):
        def hook(module: nn.Module, args: object, output: object) -> None:
            for t, master in masters[index]:
                t.data = master

        return hook

    for i, block in enumerate(blocks):
        handles.append(block.register_forward_pre_hook(before(i)))
        if stream_to is not None:
            handles.append(block.register_forward_hook(after(i)))
    try:
        yield
    finally:
        for h in handles:
            h.remove()
        if stream_to is not None:
            for i in masters:
                for t, master in masters[i]:
                    t.data = master
