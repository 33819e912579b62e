"""3-D rotary position embedding, both official kinds, with interleaved (GPT-J style) pairs.

* v2 `mmrope3d`: "lang" frequencies 1/10000^(2i/42), integer window-local positions; video token
  (τ, η, ω) of a window gets (L_txt + τ, η, ω), text token j gets (j, j, j); 126 of the 128 head
  channels rotate.
* v1 "pixel": frequencies linspace(1, 128, 10)·π, positions linspace(-1, 1, n) along each axis of
  the window (n = the window's extent there); video only; 60 channels rotate.

For bit parity every angle is one float32 product `float(pos) * inv_freq` (what the official
table holds), each angle is repeated for the two channels of its pair, and the axes are
concatenated in [t, h, w] order. The rotation runs in float32 and casts back to the input dtype.
The frequency values come from the persistent `rope.freqs` buffer (part of the checkpoint), which
is kept in float32 even when the model is cast to bf16/fp16.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

ROPE_KINDS = ("mmrope3d", "pixel")


def default_freqs(kind: str, head_dim: int, rope_dim: int) -> Tensor:
    """The frequency buffer the official constructor creates (used for fresh random models)."""
    if kind == "mmrope3d":
        axis_dim = rope_dim // 3
        exponents = torch.arange(0, axis_dim, 2)[: axis_dim // 2].float() / axis_dim
        return 1.0 / (10000 ** exponents)
    if kind == "pixel":
        axis_dim = (head_dim // 2) // 3
        return torch.linspace(1.0, 256 / 2, axis_dim // 2) * math.pi
    raise ValueError(f"unknown rope kind {kind!r}")


def _stamp(t: Tensor) -> tuple[int, int, str, torch.dtype]:
    """Identity of a tensor's current contents, read without touching the device."""
    return t.data_ptr(), t._version, str(t.device), t.dtype


class RopeFreqs(nn.Module):
    """Holder of the persistent `freqs` buffer (state-dict key `...attn.rope.rope.freqs`).

    It also keeps the frequency values on the host (`values_key`): the RoPE tables are cached
    by value, and reading a GPU buffer back for the key would stall the GPU in every block of
    every DiT call. The host copy is taken where the values are on the host anyway (built,
    assigned or loaded on the CPU) and carried across device moves, which keep the values.
    """

    freqs: Tensor

    def __init__(self, freqs: Tensor) -> None:
        super().__init__()
        self._host: tuple[tuple[int, int, str, torch.dtype], tuple[float, ...]] | None = None
        self.register_buffer("freqs", freqs, persistent=True)
        self._note_host(freqs)

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name == "freqs" and isinstance(value, Tensor):
            self._note_host(value)

    def _note_host(self, t: Tensor) -> None:
        if t.device.type == "cpu":
            self._host = (_stamp(t), tuple(t.detach().float().tolist()))

    def values_key(self) -> tuple[float, ...]:
        """The frequency values as a hashable tuple, read from the device only when they were
        put there without passing the host (e.g. loaded straight onto the GPU, or changed in
        place there): then once, not per call."""
        f = self.freqs
        if self._host is not None and self._host[0] == _stamp(f):
            return self._host[1]
        if f.is_meta:
            raise RuntimeError("the RoPE frequencies have no values (meta tensor)")
        values = tuple(f.detach().float().cpu().tolist())
        self._host = (_stamp(f), values)
        return values

    def _load_from_state_dict(self, state_dict: Any, prefix: str, *args: Any,
                              **kwargs: Any) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        given = state_dict.get(prefix + "freqs")
        if isinstance(given, Tensor) and given.device.type == "cpu" and not given.is_meta:
            self._host = (_stamp(self.freqs), tuple(given.detach().float().tolist()))

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> RopeFreqs:
        # Module.to(dtype) would round the frequencies to bf16 and move every angle; keep the
        # checkpoint's float32 values and follow only device moves.
        before = self.freqs
        known = self._host[1] if self._host is not None and self._host[0] == _stamp(before) \
            else None
        super()._apply(fn, recurse)
        after = self.freqs
        if (
            before.dtype == torch.float32
            and after.dtype != torch.float32
            and not before.is_meta
            and after.is_floating_point()
        ):
            self.freqs = before.to(after.device)
        if known is not None and self.freqs.dtype == torch.float32 and self._host is not None \
                and self._host[0] != _stamp(self.freqs):
            self._host = (_stamp(self.freqs), known)  # a move keeps the values
        return self


class Rope3d(nn.Module):
    """Angles for 3-D positions, and the rotation of q/k by those angles."""

    def __init__(self, kind: str, head_dim: int, rope_dim: int) -> None:
        super().__init__()
        if kind not in ROPE_KINDS:
            raise ValueError(f"unknown rope kind {kind!r}")
        self.kind = kind
        self.head_dim = head_dim
        self.rope = RopeFreqs(default_freqs(kind, head_dim, rope_dim))

    def freq_key(self) -> tuple[float, ...]:
        """The frequency values as a hashable key, kept on the host (no device read per call)."""
        return self.rope.values_key()

    @property
    def rotated_channels(self) -> int:
        """Leading channels of each head that rotate: 3 axes x 2 channels per frequency."""
        return 6 * self.rope.freqs.numel()

    def angles(self, pos: Tensor) -> Tensor:
        """(N, 3) float32 positions -> (N, rotated_channels) float32 angles, pairs interleaved."""
        inv = self.rope.freqs.to(device=pos.device, dtype=torch.float32)
        ang = pos.to(torch.float32)[:, :, None] * inv  # (N, 3, F): one rounding per angle
        return ang.repeat_interleave(2, dim=-1).reshape(pos.shape[0], -1)  # (N, 3*2F)

    def cos_sin(self, pos: Tensor) -> tuple[Tensor, Tensor]:
        ang = self.angles(pos)
        return ang.cos(), ang.sin()


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate the first R channels of x (N, heads, D) by per-token angles (N, R) in float32.

    y = x·cos + rot(x)·sin with rot((a, b)) = (-b, a) on adjacent pairs; channels R.. unchanged.
    """
    r = cos.shape[-1]
    xf = x.float()
    head = xf[..., :r]
    pairs = head.unflatten(-1, (r // 2, 2))  # (N, heads, R/2, 2)
    rot = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)
    out = head * cos[:, None, :] + rot * sin[:, None, :]
    if r < xf.shape[-1]:
        out = torch.cat((out, xf[..., r:]), dim=-1)
    return out.to(x.dtype)
