"""Device bytes measured on the `meta` device: the planner's VAE figures and the memory bench.

A VAE slice's peak depends on the block structure, the conv tiling limit and the causal-conv
carries in ways a formula gets wrong by a factor of two (carries alone outweigh the largest
activation at full resolution), so the planner runs the real VAE code on the `meta` device,
where tensors have shapes but no data, and counts live storages (`LiveBytes`). Two temporal
slices are enough: the second holds the first's carries and every later slice repeats it.
A few tenths of a second per size, cached; no weights are needed.

`FusedAttention` makes attention allocate what CUDA's flash / memory-efficient kernels do
(output and a log-sum-exp row), since on `meta` SDPA decomposes into the math kernel.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class LiveBytes(TorchDispatchMode):
    """Bytes of the live storages on `device` created while the mode is active, and the peak
    of that plus `resident` (what the caller holds outside the mode, e.g. weights).

    Storages made before the mode (weights, block buffers) are named with `ignore`, so views of
    them are not counted as new memory.
    """

    def __init__(self, device: str = "meta") -> None:
        super().__init__()
        self.device = device
        self.live: dict[int, int] = {}
        self.known: set[int] = set()
        self.current = 0
        self.resident = 0
        self.peak = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.device.type == self.device:
                storage = t.untyped_storage()
                key = storage._cdata
                if key not in self.live and key not in self.known:
                    n = storage.nbytes()
                    self.live[key] = n
                    self.current += n
                    weakref.finalize(storage, self._free, key)
                    self.peak = max(self.peak, self.current + self.resident)
        return out

    def ignore(self, tensors: Iterable[torch.Tensor]) -> None:
        for t in tensors:
            self.known.add(t.untyped_storage()._cdata)

    def _free(self, key: int) -> None:
        self.current -= self.live.pop(key, 0)

    def set_resident(self, nbytes: int) -> None:
        self.resident = int(nbytes)
        self.peak = max(self.peak, self.current + self.resident)

    def reset_peak(self) -> None:
        self.peak = self.current + self.resident


class FusedAttention(TorchFunctionMode):
    """SDPA as the fused CUDA kernels allocate it: the output and a float32 log-sum-exp per
    query row, never the (queries x keys) score matrix. Thread-local, like every mode."""

    def __torch_function__(self, func: Any, types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:
        if func is F.scaled_dot_product_attention:
            q, _, v = args[:3]
            lse = torch.empty(q.shape[:-1], dtype=torch.float32, device=q.device)
            del lse
            return q.new_empty((*q.shape[:-1], v.shape[-1]))
        return func(*args, **(kwargs or {}))


@functools.lru_cache(maxsize=4)
def _meta_vae(vae_cfg: Any, dtype: torch.dtype) -> Any:
    from seedvr_desktop.models.vae.loading import build_vae

    return build_vae(vae_cfg, device="meta").to(dtype)


def _dtype(nbytes: int) -> torch.dtype:
    return {4: torch.float32, 2: torch.bfloat16, 1: torch.bfloat16}.get(nbytes, torch.bfloat16)


@functools.lru_cache(maxsize=256)
def vae_slice_bytes(vae_cfg: Any, nbytes: int, h: int, w: int, first: int, later: int,
                    conv_limit: float | None, *, decode: bool, fused: bool) -> tuple[int, int]:
    """(peak, carry) bytes of the VAE over its first two temporal slices at h x w pixels.

    `first`/`later`: frames (encode) or latents (decode) per slice. The peak counts the slice
    inputs, activations, outputs and carries (weights excluded); `carry` is what one slice
    hands to the next (alive until the tile or chunk is done).
    """
    from seedvr_desktop.models.vae.model import VAEOptions

    dtype = _dtype(nbytes)
    vae = _meta_vae(vae_cfg, dtype)
    opts = VAEOptions(encode_slice=later, decode_slice=later, conv_max_bytes=conv_limit,
                      norm_max_bytes=conv_limit, channels_last=True)
    sf = vae_cfg.spatial_factor
    live = LiveBytes()
    live.ignore([*vae.parameters(), *vae.buffers()])
    modes: list[Any] = [live]
    if fused:
        modes.insert(0, FusedAttention())
    carry = 0
    with torch.no_grad():
        for m in modes:
            m.__enter__()
        try:
            state = None
            for n in (first, later):
                if decode:
                    z = torch.empty(1, vae_cfg.latent_channels, n, h // sf, w // sf,
                                    device="meta", dtype=dtype)
                    out, state = vae.decode_slice(z, state, opts)
                else:
                    x = torch.empty(1, vae_cfg.in_channels, n, h, w, device="meta", dtype=dtype)
                    out, state = vae.encode_slice(x, state, opts)
                del out
                carry = sum(t.untyped_storage().nbytes() for t in state.carry.values())
        finally:
            for m in reversed(modes):
                m.__exit__(None, None, None)
    return live.peak, carry


@functools.lru_cache(maxsize=64)
def color_fix_bytes(kind: str, frames: int, h: int, w: int) -> int:
    """Peak bytes of the colour fix of `frames` float32 frames of h x w, inputs included."""
    from seedvr_desktop.models.color_fix import apply_color_fix

    live = LiveBytes()
    with torch.no_grad(), live:
        px = torch.empty(frames, 3, h, w, device="meta")
        ref = torch.empty(frames, 3, h, w, device="meta")
        out = apply_color_fix(kind, px, ref)
        del out
    return live.peak
