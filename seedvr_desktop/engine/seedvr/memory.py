"""Peak-memory estimates for SeedVR inference, and the settings that make a job fit.

Users' most common SeedVR failure is running out of memory, so the engine never starts a stage
it expects not to fit. Each stage's peak is modelled as resident weights plus activations:

* DiT: weights (all blocks, or two blocks when streaming them from CPU memory) plus activations
  proportional to the tokens of one DiT pass, L * (A*dim + B*mlp_hidden) elements, plus the
  attention score matrix where the backend materialises it (CPU). A and B were fitted to
  measured peaks of the tiny models (bench/engine.py prints estimate against measurement).
* VAE: weights plus K times the largest activation tensor of one temporal slice (or one spatial
  tile), read off the block structure, plus the conv's padded copy (capped by the conv tiling
  limit) and the decoded slice.

`fit` chooses, stage by stage, the fastest settings whose estimate fits the budget: first the
VAE (conv tiling limit, then approximate spatial tiles, DiT offloaded to the CPU meanwhile), then
the DiT window (latent frames per pass) and, if even one latent does not fit, block streaming.
`degrade` gives the next more frugal settings after a real out-of-memory error.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from seedvr_desktop.engine.seedvr.geometry import TEMPORAL_FACTOR, latent_count, padded_size
from seedvr_desktop.fsutil import atomic_write_text

log = logging.getLogger(__name__)

GIB = 1024**3
MIB = 1024**2
SAFETY = 0.85  # use at most this share of the budget: allocator fragmentation, CUDA context
# Fitted to peaks measured on the CPU in float32 (bench/engine.py prints estimate against
# measurement): the DiT's working set is about 8 model widths per token at its peak (attention
# phase), plus the score matrices where attention is not fused; the VAE holds 5-8 (encode) and
# 10-12.5 (decode) copies of its largest activation tensor (full-size VAE at the low end, tiny
# ones at the high end); the larger values are used so the estimate errs on the safe side.
DIT_A = 9.0  # elements per token per model width
DIT_B = 0.5  # elements per token per MLP hidden width
VAE_K_ENCODE = 7.0
VAE_K_DECODE = 12.0
VAE_OVERHEAD = 96 * MIB  # per call: kernel workspaces and carries that do not scale with size
CONV_LIMIT = 0.5 * GIB  # the official conv tiling limit (exact; memory-neutral in our measure)
TILES = (None, 64, 32, 16)  # latent tile side for approximate spatial VAE tiling
TILE_OVERLAP = 4  # latents shared by neighbouring tiles


@dataclass(frozen=True)
class RunSettings:
    """The memory/speed knobs of one chunk; none changes the result except `tile` (approximate)
    and `dit_window` (windows are blended in latent space)."""

    dit_window: int | None = None  # latent frames per DiT pass; None = whole chunk
    dit_overlap: int = 2  # latent frames shared by neighbouring DiT windows
    encode_slice: int = 4  # frames per VAE encode slice after the first
    decode_slice: int = 1  # latents per VAE decode slice
    conv_max_bytes: float | None = CONV_LIMIT  # exact conv tiling above this input size
    tile: int | None = None  # latent tile side for approximate spatial tiling; None = off
    offload_dit: bool = False  # DiT weights on the CPU while the VAE works
    stream_blocks: bool = False  # DiT blocks streamed from CPU memory one at a time

    def describe(self) -> str:
        parts = [f"DiT window {self.dit_window or 'whole chunk'}"]
        if self.tile:
            parts.append(f"VAE tiles {self.tile * 8}px")
        if self.offload_dit:
            parts.append("DiT offloaded during VAE")
        if self.stream_blocks:
            parts.append("DiT blocks streamed from CPU")
        return ", ".join(parts)


@dataclass(frozen=True)
class ModelSizes:
    """The model facts memory and time depend on (no weights needed)."""

    dit_params: int
    dit_block_params: int  # largest block
    dit_outside_blocks: int  # embeddings and head: what stays on the GPU when streaming
    dim: int
    hidden: int
    layers: int
    heads: int
    txt_len: int
    vae_params: int
    vae_channels: tuple[int, ...]
    temporal_scale_num: int
    latent_channels: int
    vae_config: Any = None  # for the FLOP count (computed on first use: it takes a second)

    @classmethod
    def from_configs(cls, dit_cfg: Any, vae_cfg: Any, txt_len: int) -> ModelSizes:
        return _sizes(dit_cfg, vae_cfg, txt_len)

    def dit_flops_per_token(self, keys_per_window: int) -> float:
        """Multiply-adds x2 of one token through every block (linear layers + attention)."""
        mlp = (3 if self.hidden != 4 * self.dim else 2) * self.dim * self.hidden
        return 2.0 * self.layers * (4 * self.dim * self.dim + mlp + 2 * self.dim * keys_per_window)

    def vae_flops_per_pixel(self) -> tuple[float, float]:
        """(encode, decode) FLOPs per output pixel and frame."""
        return _vae_flops(self.vae_config)


@functools.lru_cache(maxsize=8)
def _sizes(dit_cfg: Any, vae_cfg: Any, txt_len: int) -> ModelSizes:
    from seedvr_desktop.models.loading import build_dit
    from seedvr_desktop.models.vae.loading import build_vae

    dit = build_dit(dit_cfg, device="meta")
    vae = build_vae(vae_cfg, device="meta")
    blocks = [sum(p.numel() for p in b.parameters()) for b in dit.blocks]
    total = sum(p.numel() for p in dit.parameters())
    return ModelSizes(
        dit_params=total,
        dit_block_params=max(blocks),
        dit_outside_blocks=total - sum(blocks),
        dim=dit_cfg.vid_dim,
        hidden=dit_cfg.mlp_hidden,
        layers=dit_cfg.num_layers,
        heads=dit_cfg.heads,
        txt_len=txt_len,
        vae_params=sum(p.numel() for p in vae.parameters()),
        vae_channels=tuple(vae_cfg.block_out_channels),
        temporal_scale_num=vae_cfg.temporal_scale_num,
        latent_channels=vae_cfg.latent_channels,
        vae_config=vae_cfg,
    )


@functools.lru_cache(maxsize=8)
def _vae_flops(vae_cfg: Any) -> tuple[float, float]:
    """Counted on the meta device (no memory, no arithmetic) for a 9-frame clip, whole."""
    from torch.utils.flop_counter import FlopCounterMode

    from seedvr_desktop.models.vae.loading import build_vae
    from seedvr_desktop.models.vae.model import VAEOptions

    vae = build_vae(vae_cfg, device="meta")
    whole = VAEOptions(encode_slice=None, decode_slice=None)
    sf, tf = vae_cfg.spatial_factor, vae_cfg.temporal_factor
    frames = 2 * tf + 1
    x = torch.zeros(1, vae_cfg.in_channels, frames, 2 * sf, 2 * sf, device="meta")
    with FlopCounterMode(display=False) as enc:
        vae.encode(x, whole)
    z = torch.zeros(1, vae_cfg.latent_channels, 3, 2, 2, device="meta")
    with FlopCounterMode(display=False) as dec:
        vae.decode(z, whole)
    px = frames * (2 * sf) ** 2
    return enc.get_total_flops() / px, dec.get_total_flops() / px


@dataclass(frozen=True)
class StageMemory:
    """Estimated peak bytes on the compute device per stage."""

    encode: int
    dit: int
    decode: int

    @property
    def peak(self) -> int:
        return max(self.encode, self.dit, self.decode)


# ------------------------------------------------------------------------------ estimates
def window_keys(h_tok: int, w_tok: int, t_lat: int, txt_len: int) -> int:
    """Keys one query attends to: its window's tokens plus the text (architecture doc §3.5.1)."""
    scale = math.sqrt(3600 / max(h_tok * w_tok, 1))
    wh = math.ceil(round(h_tok * scale) / 3)
    ww = math.ceil(round(w_tok * scale) / 3)
    wt = math.ceil(min(t_lat, 30) / 4)
    return min(wh, h_tok) * min(ww, w_tok) * min(wt, t_lat) + txt_len


def dit_bytes(sizes: ModelSizes, t_lat: int, h_lat: int, w_lat: int, nbytes: int, *,
              stream_blocks: bool, scores: bool) -> int:
    """Peak of one DiT pass over t_lat latent frames of h_lat x w_lat."""
    h_tok, w_tok = h_lat // 2, w_lat // 2
    tokens = t_lat * h_tok * w_tok + sizes.txt_len
    # Below 4 bytes some tensors stay float32 (RoPE, norms): count 3 bytes per element then.
    per_element = nbytes if nbytes >= 4 else 1.5 * nbytes
    act = tokens * (DIT_A * sizes.dim + DIT_B * sizes.hidden) * per_element
    if scores:  # math attention materialises (queries x keys) per head, float32
        act += tokens * window_keys(h_tok, w_tok, t_lat, sizes.txt_len) * sizes.heads * 4
    if stream_blocks:
        weights = (sizes.dit_outside_blocks + 2 * sizes.dit_block_params) * nbytes
    else:
        weights = sizes.dit_params * nbytes
    latents = 3 * t_lat * h_lat * w_lat * 33 * 4
    return int(weights + act + latents)


def _vae_levels(sizes: ModelSizes, frames: int, h: int, w: int) -> list[int]:
    """Element counts of the largest activation at each VAE resolution level for one slice.

    Level i has channels max(C_{i-1}, C_i, C_{i+1}) (resnet in/out and the resampler's output)
    at 1/2^i of the pixel size, with frames reduced by the temporal downsampling so far.
    """
    ch = sizes.vae_channels
    n = len(ch)
    out = []
    for i in range(n):
        c = max(ch[max(i - 1, 0)], ch[i], ch[min(i + 1, n - 1)])
        t_down = max(0, min(i - (n - 1 - sizes.temporal_scale_num), sizes.temporal_scale_num))
        f = max(1, math.ceil(frames / 2**t_down))
        out.append(c * f * max(1, h >> i) * max(1, w >> i))
    return out


def vae_bytes(sizes: ModelSizes, frames: int, h: int, w: int, nbytes: int, tile: int | None,
              *, decode: bool) -> int:
    """Peak of one VAE slice of `frames` pixel frames at h x w (padded) pixels."""
    th, tw = h, w
    if tile:
        side = (tile + 2 * TILE_OVERLAP) * 8
        th, tw = min(h, side), min(w, side)
    largest = max(_vae_levels(sizes, frames, th, tw))
    k = VAE_K_DECODE if decode else VAE_K_ENCODE
    act = k * largest * max(nbytes, 2) + VAE_OVERHEAD
    output = 3 * 3 * frames * h * w * 4  # float32 slice, reference and colour-fixed copy
    return int(sizes.vae_params * nbytes + act + output)


def estimate(sizes: ModelSizes, settings: RunSettings, frames: int, width: int, height: int,
             nbytes: int, *, scores: bool) -> StageMemory:
    """Per-stage device peaks for a chunk of `frames` source frames at the output size."""
    pw, ph = padded_size(width, height)
    h_lat, w_lat = ph // 8, pw // 8
    t_lat = latent_count(max(frames, 1))
    window = min(settings.dit_window or t_lat, t_lat)
    dit_resident_in_vae = 0 if settings.offload_dit else sizes.dit_params * nbytes
    latent_bytes = 4 * t_lat * h_lat * w_lat * sizes.latent_channels * 4
    enc_frames = 1 + settings.encode_slice
    dec_frames = TEMPORAL_FACTOR * settings.decode_slice + 1
    enc = vae_bytes(sizes, enc_frames, ph, pw, nbytes, settings.tile, decode=False)
    dec = vae_bytes(sizes, dec_frames, ph, pw, nbytes, settings.tile, decode=True)
    dit = dit_bytes(sizes, window, h_lat, w_lat, nbytes, stream_blocks=settings.stream_blocks,
                    scores=scores)
    vae_w = sizes.vae_params * nbytes
    return StageMemory(enc + dit_resident_in_vae + latent_bytes, dit + vae_w + latent_bytes,
                       dec + dit_resident_in_vae + latent_bytes)


def fit(sizes: ModelSizes, frames: int, width: int, height: int, budget: int, nbytes: int, *,
        scores: bool, start: RunSettings | None = None, can_offload: bool = True) -> RunSettings:
    """The fastest settings whose estimated peak fits `budget` (bytes); the most frugal ones
    when nothing fits (the OOM retry path then has the last word).

    Preference order, cheapest first: whole frames and chunks; the DiT moved to the CPU during
    VAE work (exact, costs two transfers per chunk); approximate VAE tiles of shrinking size;
    shorter DiT windows (blended in latent space); DiT blocks streamed from CPU memory (slow).
    `can_offload` is False where the DiT cannot leave the compute device (the CPU itself).
    """
    limit = budget * SAFETY
    base = start or RunSettings()

    def est(s: RunSettings) -> StageMemory:
        return estimate(sizes, s, frames, width, height, nbytes, scores=scores)

    offloads = (False, True) if can_offload else (False,)
    vae_candidates = [replace(base, tile=None, offload_dit=False)]
    vae_candidates += [replace(base, tile=t, offload_dit=o) for t in TILES for o in offloads
                       if (t, o) != (None, False)]
    vae_candidates.sort(key=lambda s: (s.tile is not None, -(s.tile or 0), s.offload_dit))
    s = vae_candidates[-1]
    for cand in vae_candidates:
        m = est(cand)
        if max(m.encode, m.decode) <= limit:
            s = cand
            break
    t_lat = latent_count(max(frames, 1))
    for stream in (False, True) if can_offload else (False,):
        window = t_lat
        while window >= 1:
            cand = replace(s, dit_window=None if window == t_lat else window,
                           dit_overlap=min(s.dit_overlap, max(window - 1, 0)),
                           stream_blocks=stream, offload_dit=s.offload_dit or stream)
            if est(cand).dit <= limit:
                return cand
            window = window // 2 if window > 2 else window - 1
    log.warning("even the most frugal settings are estimated not to fit %.1f GiB",
                budget / GIB)
    return replace(s, dit_window=1, dit_overlap=0, stream_blocks=can_offload,
                   offload_dit=s.offload_dit or can_offload)


def degrade(settings: RunSettings, stage: str, t_lat: int) -> RunSettings | None:
    """The next more frugal settings after an out-of-memory error in `stage`, or None."""
    if stage in ("encode", "decode"):
        if not settings.offload_dit:
            return replace(settings, offload_dit=True)
        tiles = list(TILES)
        j = tiles.index(settings.tile) if settings.tile in tiles else 0
        if j + 1 < len(tiles):
            return replace(settings, tile=tiles[j + 1])
        return None
    window = settings.dit_window or t_lat
    if window > 1:
        new = max(1, window // 2)
        return replace(settings, dit_window=new, dit_overlap=min(settings.dit_overlap, new - 1))
    if not settings.stream_blocks:
        return replace(settings, stream_blocks=True, offload_dit=True)
    return None


# ------------------------------------------------------------------------------ time
DEFAULT_RATES = {  # effective FLOP/s when this machine has no calibration yet (rough)
    "cuda": {"dit": 250e12, "vae": 60e12},
    "mps": {"dit": 8e12, "vae": 4e12},
    "cpu": {"dit": 4e10, "vae": 2e10},
}


def chunk_flops(sizes: ModelSizes, frames: int, width: int, height: int, *, steps: int,
                guided: bool) -> dict[str, float]:
    """FLOPs of one chunk per stage: VAE encode, DiT (all steps), VAE decode."""
    pw, ph = padded_size(width, height)
    t_lat = latent_count(max(frames, 1))
    h_tok, w_tok = ph // 16, pw // 16
    tokens = t_lat * h_tok * w_tok
    keys = window_keys(h_tok, w_tok, t_lat, sizes.txt_len)
    calls = steps * (2 if guided else 1)
    px = frames * pw * ph
    enc, dec = sizes.vae_flops_per_pixel()
    return {"encode": enc * px, "dit": calls * tokens * sizes.dit_flops_per_token(keys),
            "decode": dec * px}


def calibration_path() -> Path:
    from seedvr_desktop.settings import data_dir

    return data_dir() / "calibration.json"


def load_rates(device_key: str, precision: str, kind: str) -> tuple[dict[str, float], bool]:
    """({"dit": FLOP/s, "vae": FLOP/s}, calibrated?) for this machine, device and precision."""
    try:
        data = json.loads(calibration_path().read_text(encoding="utf-8"))
        rec = data[device_key][precision]
        return {"dit": float(rec["dit"]), "vae": float(rec["vae"])}, True
    except (OSError, ValueError, KeyError, TypeError):
        return dict(DEFAULT_RATES.get(kind, DEFAULT_RATES["cpu"])), False


def record_rates(device_key: str, precision: str, measured: dict[str, float]) -> None:
    """Blend measured FLOP/s into the stored calibration (exponential average, atomic write)."""
    path = calibration_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            data = {}
    except (OSError, ValueError):
        data = {}
    rec = data.setdefault(device_key, {}).setdefault(precision, {})
    for k, v in measured.items():
        if v > 0 and math.isfinite(v):
            old = rec.get(k)
            rec[k] = v if not isinstance(old, (int, float)) else 0.7 * old + 0.3 * v
    rec["updated"] = int(time.time())
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True))
    except OSError as exc:  # a read-only data folder must not fail a job
        log.debug("cannot store calibration: %s", exc)


@dataclass(frozen=True)
class Plan:
    """What `--plan` prints before any work: memory, time and output size."""

    engine: str
    model: str
    device: str
    precision: str
    output_size: tuple[int, int]
    frames: int
    chunk_frames: int
    chunks: int
    settings: RunSettings
    peak_bytes: int
    budget_bytes: int
    seconds: float
    calibrated: bool

    def lines(self) -> list[str]:
        w, h = self.output_size
        cal = "calibrated on this machine" if self.calibrated else "uncalibrated guess"
        return [
            f"engine:        {self.engine} ({self.model}) on {self.device}, {self.precision}",
            f"output:        {w}x{h}, {self.frames} frames in {self.chunks} chunk(s) "
            f"of up to {self.chunk_frames}",
            f"peak memory:   {self.peak_bytes / GIB:.2f} GiB expected "
            f"(budget {self.budget_bytes / GIB:.2f} GiB)",
            f"settings:      {self.settings.describe()}",
            f"time:          about {_fmt_seconds(self.seconds)} ({cal})",
        ]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["settings"] = asdict(self.settings)
        return d


def _fmt_seconds(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"
