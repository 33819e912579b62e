"""Small building blocks of the DiT: RMS norm, video/text module pairs, ada modulation, MLPs.

Every operation keeps the official operation order (e.g. `x * (scale_emb + scale_param)` then
`+ (shift_emb + shift_param)`, in place) because the float32 reference is reproduced bit for bit
and the bf16 casts inside the attention turn a one-ulp difference into a visible one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Generic, Literal, TypeVar, overload

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class RMSNorm(nn.Module):
    """x * rsqrt(mean(x², -1) + eps), statistics in float32, optional per-channel weight.

    Mirrors apex FusedRMSNorm's reference path: `weight * normalized` with the weight on the left.
    """

    def __init__(self, dim: int, eps: float, affine: bool) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim)) if affine else None

    def forward(self, x: Tensor) -> Tensor:
        xf = x.float()
        variance = xf.pow(2).mean(-1, keepdim=True)
        y = xf * torch.rsqrt(variance + self.eps)
        if self.weight is not None:
            w = self.weight
            if w.dtype in (torch.float16, torch.bfloat16):
                y = y.to(w.dtype)
            y = w * y
        return y.to(x.dtype)


_M = TypeVar("_M", bound=nn.Module)


class MMPair(nn.Module, Generic[_M]):
    """One module per branch (`vid`, `txt`) or one shared module (`all`), like official MMModule.

    `vid_only` (v2 last layer) builds no text module; the text then passes through unchanged.
    """

    def __init__(
        self, factory: Callable[[], _M], *, shared: bool = False, vid_only: bool = False
    ) -> None:
        super().__init__()
        self.shared = shared
        self.vid_only = vid_only
        if shared:
            self.all = factory()
        else:
            self.vid = factory()
            if not vid_only:
                self.txt = factory()

    @overload
    def branch(self, name: Literal["vid"]) -> _M: ...
    @overload
    def branch(self, name: str) -> _M | None: ...

    def branch(self, name: str) -> _M | None:
        """The module applied to branch `name` ('vid'/'txt'), or None when text skips it."""
        if name == "txt" and self.vid_only:
            return None
        return self.all if self.shared else getattr(self, name)


def mm_apply(pair: MMPair[_M], vid: Tensor, txt: Tensor, *args: object) -> tuple[Tensor, Tensor]:
    """Apply a pair to both branches (text unchanged when the pair is vid-only)."""
    vid = pair.branch("vid")(vid, *args)
    txt_mod = pair.branch("txt")
    if txt_mod is not None:
        txt = txt_mod(txt, *args)
    return vid, txt


class AdaSingle(nn.Module):
    """Learned per-layer offsets added to the shared timestep embedding ("ada single").

    The embedding row (6·dim) is laid out as (dim, layer, [shift, scale, gate]), interleaved, so
    channel d of layer l uses emb[6d + 3l + {0,1,2}]. There is no "1 +": the 1 lives in the
    learned scale (initialised near 1).
    """

    def __init__(
        self,
        dim: int,
        layers: Sequence[str] = ("attn", "mlp"),
        modes: Sequence[str] = ("in", "out"),
    ) -> None:
        super().__init__()
        self.dim = dim
        self.layers = tuple(layers)
        for name in self.layers:
            if "in" in modes:
                setattr(self, f"{name}_shift", nn.Parameter(torch.randn(dim) / dim**0.5))
                setattr(self, f"{name}_scale", nn.Parameter(torch.randn(dim) / dim**0.5 + 1))
            if "out" in modes:
                setattr(self, f"{name}_gate", nn.Parameter(torch.randn(dim) / dim**0.5))

    def modulate_in(self, x: Tensor, shift: Tensor, scale: Tensor, layer: str) -> Tensor:
        """x (L, dim) *= scale_emb + scale_param; += shift_emb + shift_param (in place)."""
        x.mul_(scale + getattr(self, f"{layer}_scale"))
        return x.add_(shift + getattr(self, f"{layer}_shift"))

    def gate_out(self, x: Tensor, gate: Tensor, layer: str) -> Tensor:
        """x (L, dim) *= gate_emb + gate_param (in place)."""
        return x.mul_(gate + getattr(self, f"{layer}_gate"))


def emb_chunks(emb: Tensor, dim: int, layer_index: int, num_layers: int = 2) -> tuple[Tensor, ...]:
    """(B, 6·dim) embedding -> (shift, scale, gate), each (B, dim), for one layer."""
    view = emb.view(emb.shape[0], dim, num_layers, 3)[:, :, layer_index, :]
    return view.unbind(-1)


class SwiGLU(nn.Module):
    """v2 MLP: proj_out(silu(proj_in_gate(x)) * proj_in(x)), no biases.

    Registration order (gate, out, in) is the official one and fixes the state-dict key order.
    """

    def __init__(self, dim: int, expand_ratio: int, multiple_of: int = 256) -> None:
        super().__init__()
        hidden = int(2 * dim * expand_ratio / 3)
        hidden = multiple_of * math.ceil(hidden / multiple_of)
        self.proj_in_gate = nn.Linear(dim, hidden, bias=False)
        self.proj_out = nn.Linear(hidden, dim, bias=False)
        self.proj_in = nn.Linear(dim, hidden, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj_out(F.silu(self.proj_in_gate(x)) * self.proj_in(x))


class GeluMLP(nn.Module):
    """v1 MLP: proj_out(gelu_tanh(proj_in(x))), with biases."""

    def __init__(self, dim: int, expand_ratio: int) -> None:
        super().__init__()
        self.proj_in = nn.Linear(dim, dim * expand_ratio)
        self.proj_out = nn.Linear(dim * expand_ratio, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj_out(F.gelu(self.proj_in(x), approximate="tanh"))
