"""NaDiT: the SeedVR / SeedVR2 diffusion transformer (both families), weight-compatible.

Call it like the official model on a packed batch:

    vid_sample = dit(vid, txt, vid_shape, txt_shape, timestep)
    vid (L, 33): per sample (T, H, W) latent grid, channels [noisy 16 | condition 16 | mask 1]
    txt (Lt, txt_in_dim), vid_shape (B, 3) long latent T,H,W, txt_shape (B, 1) long,
    timestep (B,) on the 0..1000 scale  ->  vid_sample (L, 16) in the same packed order.

The shapes may also be given as Python ints, [(T, H, W), ...] and [Lt, ...]; as CPU tensors or
ints they are read without a device round trip. A `vid_shape` on the GPU costs one device->host
synchronisation per call to read (nothing else in the forward reads device values back).

Module names reproduce the official state-dict keys exactly (see seedvr-layout/*.tsv).
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seedvr_desktop.models.dit.blocks import MMSRBlock
from seedvr_desktop.models.dit.config import DiTConfig
from seedvr_desktop.models.dit.layers import AdaSingle, RMSNorm, emb_chunks
from seedvr_desktop.models.dit.packing import Packing

log = logging.getLogger(__name__)

_SINUSOID_DIM = 256
_PACKING_CACHE = 8  # shapes remembered across calls (pos/neg text x a few clip sizes)


class PatchIn(nn.Module):
    """(T, H, W, C) per sample -> (T, H/2, W/2) tokens of (dh, dw, c) features -> Linear."""

    def __init__(self, in_channels: int, patch: tuple[int, int, int], dim: int) -> None:
        super().__init__()
        self.patch = patch
        self.proj = nn.Linear(in_channels * patch[0] * patch[1] * patch[2], dim)

    def forward(self, vid: Tensor, grids: list[tuple[int, int, int]]) -> tuple[Tensor, Tensor]:
        """vid (L, C) packed latents -> (tokens (L/4, dim), token grid shape (B, 3), on the CPU:
        made from the host-side grids, so no block needs to read a shape from the device)."""
        _, ph, pw = self.patch
        pieces = vid.split([t * h * w for t, h, w in grids])
        tokens = []
        for x, (t, h, w) in zip(pieces, grids):
            x = x.view(t, h // ph, ph, w // pw, pw, -1).permute(0, 1, 3, 2, 4, 5)
            tokens.append(x.reshape(t * (h // ph) * (w // pw), -1))  # (tokens, ph·pw·C)
        flat = tokens[0] if len(tokens) == 1 else torch.cat(tokens)
        token_shape = torch.tensor([(t, h // ph, w // pw) for t, h, w in grids], dtype=torch.long)
        return self.proj(flat), token_shape


class PatchOut(nn.Module):
    """Linear -> (dh, dw, c) features back to (T, H, W, C) per sample, packed."""

    def __init__(self, out_channels: int, patch: tuple[int, int, int], dim: int) -> None:
        super().__init__()
        self.patch = patch
        self.proj = nn.Linear(dim, out_channels * patch[0] * patch[1] * patch[2])

    def forward(self, vid: Tensor, grids: list[tuple[int, int, int]]) -> Tensor:
        _, ph, pw = self.patch
        out = self.proj(vid)
        pieces = out.split([t * h * w for t, h, w in grids])
        frames = []
        for x, (t, h, w) in zip(pieces, grids):
            x = x.view(t, h, w, ph, pw, -1).permute(0, 1, 3, 2, 4, 5)
            frames.append(x.reshape(t * h * ph * w * pw, -1))
        return frames[0] if len(frames) == 1 else torch.cat(frames)


class TimeEmbedding(nn.Module):
    """Sinusoid(256) of the 0..1000 timestep -> Linear, SiLU, Linear, SiLU, Linear(6·dim)."""

    def __init__(self, hidden: int, out: int) -> None:
        super().__init__()
        self.proj_in = nn.Linear(_SINUSOID_DIM, hidden)
        self.proj_hid = nn.Linear(hidden, hidden)
        self.proj_out = nn.Linear(hidden, out)

    def forward(self, timestep: Tensor, dtype: torch.dtype) -> Tensor:
        emb = sinusoid(timestep, _SINUSOID_DIM).to(dtype)
        emb = F.silu(self.proj_in(emb))
        emb = F.silu(self.proj_hid(emb))
        return self.proj_out(emb)


def sinusoid(timestep: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """[sin(t·f_i), cos(t·f_i)] with f_i = exp(-ln(max_period)·i/(dim/2)), float32, sines first.

    Same operation sequence as diffusers' get_timestep_embedding(flip_sin_to_cos=False,
    downscale_freq_shift=0), so the float32 values match bit for bit.
    """
    half = dim // 2
    exponent = -math.log(max_period) * torch.arange(
        0, half, dtype=torch.float32, device=timestep.device
    )
    freqs = torch.exp(exponent / half)
    args = timestep[:, None].float() * freqs[None, :]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=-1)


class OutputAda(AdaSingle):
    """v2 `vid_out_ada`: only `out_shift`/`out_scale`, applied with externally chosen rows."""

    def __init__(self, dim: int) -> None:
        super().__init__(dim, layers=("out",), modes=("in",))

    def forward(self, x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
        return self.modulate_in(x, shift, scale, "out")


class NaDiT(nn.Module):
    """The SeedVR DiT. `config.family` "v2" is the 3B model, "v1" the 7B model."""

    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        self.config = cfg = config
        dim = cfg.vid_dim
        self.vid_in = PatchIn(cfg.vid_in_channels, cfg.patch_size, dim)
        self.txt_in: nn.Module = (
            nn.Linear(cfg.txt_in_dim, cfg.txt_dim)
            if cfg.txt_in_dim and cfg.txt_in_dim != cfg.txt_dim
            else nn.Identity()
        )
        self.emb_in = TimeEmbedding(max(cfg.vid_dim, cfg.txt_dim), cfg.emb_dim)
        self.blocks = nn.ModuleList(MMSRBlock(cfg, i) for i in range(cfg.num_layers))
        if cfg.is_v2 and cfg.vid_out_norm is not None:
            self.vid_out_norm: RMSNorm | None = RMSNorm(dim, cfg.norm_eps, affine=True)
            self.vid_out_ada: OutputAda | None = OutputAda(dim)
        else:
            self.vid_out_norm = None
            self.vid_out_ada = None
        self.vid_out = PatchOut(cfg.vid_out_channels, cfg.patch_size, dim)
        self._packings: OrderedDict[tuple, Packing] = OrderedDict()

    @property
    def dtype(self) -> torch.dtype:
        """The compute dtype. Read from a bias, which low-precision files never quantise (their
        linear weights may be fp8 or GGUF blocks that are dequantised to this dtype at use)."""
        bias = self.vid_in.proj.bias
        return bias.dtype if bias is not None else self.vid_in.proj.weight.dtype

    def forward(
        self,
        vid: Tensor,  # (L, vid_in_channels) packed latent pixels
        txt: Tensor,  # (Lt, txt_in_dim) packed text embeddings
        vid_shape: Tensor | Sequence[Sequence[int]],  # (B, 3) latent T, H, W per sample
        txt_shape: Tensor | Sequence[int],  # (B, 1) text length per sample
        timestep: Tensor | float,  # (B,) on the 0..1000 scale
    ) -> Tensor:  # (L, vid_out_channels)
        dtype = self.dtype
        grids = _latent_grids(vid_shape, vid.shape[0])
        token_grids = [(t, h // 2, w // 2) for t, h, w in grids]
        txt_lens = _text_lengths(txt_shape, len(grids))
        if sum(txt_lens) != txt.shape[0]:
            raise ValueError(f"txt has {txt.shape[0]} rows but txt_shape sums to {sum(txt_lens)}")
        packing = self._packing(token_grids, txt_lens, vid.device)
        timestep = _timesteps(timestep, len(grids), vid.device)

        txt = self.txt_in(txt.to(dtype))
        vid, tok_shape = self.vid_in(vid.to(dtype), grids)
        txt_shape = torch.tensor(txt_lens, dtype=torch.long)[:, None]  # host side, as tok_shape
        emb = self.emb_in(timestep, vid.dtype)  # (B, 6·dim)
        for block in self.blocks:
            vid, txt, tok_shape, txt_shape = block(
                vid, txt, tok_shape, txt_shape, emb=emb, packing=packing
            )
        if self.vid_out_norm is not None and self.vid_out_ada is not None:
            vid = self.vid_out_norm(vid)
            # Official quirk: the output modulation reads the cached per-token embedding of the
            # first block's *attn* layer (shift/scale of layer 0), not a chunk of its own.
            shift, scale, _ = emb_chunks(emb, self.config.vid_dim, 0)
            index = packing.token_sample("vid")
            if index is not None:
                shift, scale = shift.index_select(0, index), scale.index_select(0, index)
            vid = self.vid_out_ada(vid, shift, scale)
        return self.vid_out(vid, token_grids)

    def _packing(self, grids: list, txt_lens: list[int], device: torch.device) -> Packing:
        """Per-shape plans and RoPE tables, kept for the next calls with the same shapes."""
        key = (tuple(grids), tuple(txt_lens), str(device))
        packing = self._packings.pop(key, None)
        if packing is None:
            packing = Packing(grids, txt_lens, device)
        self._packings[key] = packing
        while len(self._packings) > _PACKING_CACHE:
            self._packings.popitem(last=False)
        return packing

    def set_exact_attention(self, exact: bool | None) -> None:
        """True: reference arithmetic (per-window float32 math attention, slow, bit-faithful);
        False: fused SDPA batched by window shape (fast); None: exact only for float32 models."""
        for block in self.blocks:
            assert isinstance(block, MMSRBlock)  # the only kind of block built
            block.attn.exact = exact

    def set_attention_rounding(self, dtype: torch.dtype | None) -> None:
        """The dtype attention inputs/outputs are rounded to: None = official bf16 (fp16 for fp16
        models); float32 = no rounding, for devices without bf16 (older Apple GPUs)."""
        for block in self.blocks:
            setattr(block.attn, "round_dtype", dtype)  # noqa: B010 - blocks are untyped here

    def clear_cache(self) -> None:
        """Forget cached window plans and RoPE tables (e.g. to free GPU memory)."""
        self._packings.clear()

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> NaDiT:
        # Moving the model invalidates device-resident caches.
        self._packings.clear()
        return super()._apply(fn, recurse)


def _latent_grids(vid_shape: Tensor | Sequence[Sequence[int]],
                  rows: int) -> list[tuple[int, int, int]]:
    if isinstance(vid_shape, Tensor):
        if vid_shape.dim() != 2 or vid_shape.shape[1] != 3:
            raise ValueError(f"vid_shape must be (B, 3), got {tuple(vid_shape.shape)}")
        given: Sequence[Sequence[int]] = vid_shape.tolist()  # host read (a sync if on a GPU)
    else:
        given = vid_shape
    if any(len(row) != 3 for row in given):
        raise ValueError(f"vid_shape must be (B, 3), got {given!r}")
    grids = [tuple(int(v) for v in row) for row in given]
    for t, h, w in grids:
        if t < 1 or h < 2 or w < 2 or h % 2 or w % 2:
            raise ValueError(f"latent size (T={t}, H={h}, W={w}) must have even H and W >= 2")
    total = sum(t * h * w for t, h, w in grids)
    if total != rows:
        raise ValueError(f"vid has {rows} rows but vid_shape describes {total} latent pixels")
    return grids  # type: ignore[return-value]


def _text_lengths(txt_shape: Tensor | Sequence[int], batch: int) -> list[int]:
    """Text rows per sample from a (B, 1) tensor or a list of ints (read on the host)."""
    if isinstance(txt_shape, Tensor):
        return [int(n) for n in txt_shape.reshape(batch, -1).prod(-1).tolist()]
    lens = [int(n) for n in txt_shape]
    if len(lens) != batch:
        raise ValueError(f"txt_shape has {len(lens)} lengths for a batch of {batch}")
    return lens


def _timesteps(timestep: Tensor | float, batch: int, device: torch.device) -> Tensor:
    t = torch.as_tensor(timestep, device=device)
    if t.dim() == 0:
        t = t[None]
    if t.numel() == 1 and batch > 1:
        t = t.expand(batch)
    if t.numel() != batch:
        raise ValueError(f"timestep has {t.numel()} values for a batch of {batch}")
    return t
