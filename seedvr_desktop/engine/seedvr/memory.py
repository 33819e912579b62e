"""Peak-memory estimates for SeedVR inference, and the settings that make a job fit.

Users' most common SeedVR failure is running out of memory, so the engine never starts a stage
it expects not to fit. Each stage's peak is modelled as resident weights plus activations:

* DiT: weights (all blocks, or the outer layers and two block buffers when streaming) plus
  activations proportional to the tokens of one DiT pass, L * K * dim elements (K per block
  family, fitted to the full-size models on the meta device), plus the attention score matrix
  where the backend materialises it (CPU, MPS).
* VAE: weights plus one slice's (or one tile's) activations *and causal-conv carries*, measured
  by running the real VAE code for two slices on the meta device (`meta_measure`), plus the
  blended tile buffers and the colour fix.

`fit` searches every combination of tiles, offload, streaming and DiT window and takes the
fastest (`plan_seconds`) whose estimate fits the budget, exact before approximate at equal
cost. `degrade` gives the next more frugal settings after a real out-of-memory error.
`bench/memory_sim.py` checks the estimates against the whole chunk path on the meta device.
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
# DiT working set in elements per token per model width, by family, fitted to the full-size
# models' peaks on the meta device with CUDA's fused attention (bench/memory_sim.py): the v2
# (3B) blocks keep more per-token tensors alive at their peak than the v1 (7B) ones.
DIT_K = {"v2": 11.7, "v1": 8.9}
DIT_OVERHEAD = 24 * MIB  # per pass: timestep embedding, window plans, RoPE tables
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
    vae_config: Any = None  # for the FLOP count and the VAE's meta-device measurement
    dit_family: str = "v2"  # "v2" (3B) or "v1" (7B) blocks: their working sets differ

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
        dit_family="v2" if getattr(dit_cfg, "is_v2", True) else "v1",
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


def _weight_bytes(nbytes: int, weight_bytes: float | None) -> float:
    return float(weight_bytes) if weight_bytes else float(nbytes)


def dit_bytes(sizes: ModelSizes, t_lat: int, h_lat: int, w_lat: int, nbytes: int, *,
              stream_blocks: bool, scores: bool, weight_bytes: float | None = None) -> int:
    """Peak of one DiT pass over t_lat latent frames of h_lat x w_lat."""
    h_tok, w_tok = h_lat // 2, w_lat // 2
    tokens = t_lat * h_tok * w_tok + sizes.txt_len
    # Below 4 bytes some tensors stay float32 (RoPE, norms): count 3 bytes per element then.
    per_element = nbytes if nbytes >= 4 else 1.5 * nbytes
    act = tokens * DIT_K[sizes.dit_family] * sizes.dim * per_element + DIT_OVERHEAD
    if scores:  # math attention materialises (queries x keys) per head, float32
        act += tokens * window_keys(h_tok, w_tok, t_lat, sizes.txt_len) * sizes.heads * 4
    wb = _weight_bytes(nbytes, weight_bytes)
    if stream_blocks:  # outer layers resident, two block buffers of the ring
        weights = (sizes.dit_outside_blocks + 2 * sizes.dit_block_params) * wb
    else:
        weights = sizes.dit_params * wb
    latents = 3 * t_lat * h_lat * w_lat * 33 * 4
    return int(weights + act + latents)


def vae_stage_bytes(sizes: ModelSizes, settings: RunSettings, frames: int, ph: int, pw: int,
                    nbytes: int, *, decode: bool, scores: bool,
                    color_fix: str = "wavelet") -> int:
    """Activations, carries and buffers (no weights) of the VAE stage of one chunk of `frames`
    padded frames at ph x pw, measured slice-wise on the meta device (`meta_measure`)."""
    from seedvr_desktop.engine.seedvr.meta_measure import color_fix_bytes, vae_slice_bytes
    from seedvr_desktop.engine.seedvr.windows import plan_spans

    cfg = sizes.vae_config
    sf = cfg.spatial_factor
    h_lat, w_lat = ph // sf, pw // sf
    th, tw = h_lat, w_lat
    if settings.tile:
        th = plan_spans(h_lat, settings.tile, TILE_OVERLAP)[0][1]
        tw = plan_spans(w_lat, settings.tile, TILE_OVERLAP)[0][1]
    n = settings.decode_slice if decode else settings.encode_slice
    first = 1 + n
    peak, carry = vae_slice_bytes(cfg, nbytes, th * sf, tw * sf, first, n,
                                  settings.conv_max_bytes, decode=decode, fused=not scores)
    t_lat = latent_count(max(frames, 1))
    latent = t_lat * h_lat * w_lat * sizes.latent_channels * 4
    if not decode:
        pixels = first * 3 * ph * pw * nbytes  # the whole slice, cropped tile by tile
        buffers = (2 * latent + pixels) if settings.tile else 0  # blended mean and logvar
        return int(peak + buffers + 2 * latent)
    out_frames = TEMPORAL_FACTOR * n + 1
    tile_px = 3 * out_frames * th * tw * sf * sf
    if settings.tile:
        acc = 3 * (TEMPORAL_FACTOR * (t_lat - 1) + 1) * ph * pw * 4  # blended pixels, float32
        blend = carry + tile_px * (nbytes + 2 * 4)  # the tile's slice, float32 and weighted
        fix = color_fix_bytes(color_fix, out_frames, ph, pw)
        return int(acc + max(peak, blend, fix) + 2 * latent)
    fix = carry + tile_px * nbytes + color_fix_bytes(color_fix, out_frames, ph, pw)
    return int(max(peak, fix) + 2 * latent)


def estimate(sizes: ModelSizes, settings: RunSettings, frames: int, width: int, height: int,
             nbytes: int, *, scores: bool, weight_bytes: float | None = None) -> StageMemory:
    """Per-stage device peaks for a chunk of `frames` source frames at the output size.

    `nbytes`: bytes per element of the compute dtype; `weight_bytes`: bytes per DiT weight
    parameter as stored on the device (fp8 1, Q4_K_M about 0.56; default `nbytes`)."""
    pw, ph = padded_size(width, height)
    h_lat, w_lat = ph // 8, pw // 8
    t_lat = latent_count(max(frames, 1))
    window = min(settings.dit_window or t_lat, t_lat)
    wb = _weight_bytes(nbytes, weight_bytes)
    offloaded = settings.offload_dit or settings.stream_blocks
    dit_resident_in_vae = 0 if offloaded else int(sizes.dit_params * wb)
    vae_w = sizes.vae_params * nbytes
    padded = TEMPORAL_FACTOR * (t_lat - 1) + 1
    enc = vae_stage_bytes(sizes, settings, padded, ph, pw, nbytes, decode=False, scores=scores)
    dec = vae_stage_bytes(sizes, settings, padded, ph, pw, nbytes, decode=True, scores=scores)
    dit = dit_bytes(sizes, window, h_lat, w_lat, nbytes, stream_blocks=settings.stream_blocks,
                    scores=scores, weight_bytes=weight_bytes)
    return StageMemory(enc + vae_w + dit_resident_in_vae, dit + vae_w,
                       dec + vae_w + dit_resident_in_vae)


# ------------------------------------------------------------------------------ planning
PCIE_BYTES_PER_S = 12e9  # host -> device copies of offloaded/streamed weights (PCIe 4 x16)


def plan_seconds(sizes: ModelSizes, settings: RunSettings, frames: int, width: int,
                 height: int, nbytes: int, *, rates: dict[str, float] | None = None,
                 weight_bytes: float | None = None, steps: int = 1) -> float:
    """Expected seconds of one chunk under `settings`: compute (VAE with its tile overlaps,
    DiT with its window overlaps) plus the weight transfers offloading and streaming add."""
    from seedvr_desktop.engine.seedvr.windows import plan_spans

    r = rates or DEFAULT_RATES["cuda"]
    fl = chunk_flops(sizes, frames, width, height, steps=steps, guided=False)
    pw, ph = padded_size(width, height)
    h_lat, w_lat = ph // 8, pw // 8
    t_lat = latent_count(max(frames, 1))
    vae_factor = 1.0
    if settings.tile:
        rows = plan_spans(h_lat, settings.tile, TILE_OVERLAP)
        cols = plan_spans(w_lat, settings.tile, TILE_OVERLAP)
        covered = sum(b - a for a, b in rows) * sum(b - a for a, b in cols)
        vae_factor = covered / (h_lat * w_lat) * 1.05  # and smaller, less efficient kernels
    spans = plan_spans(t_lat, settings.dit_window or t_lat, settings.dit_overlap)
    dit_factor = sum(b - a for a, b in spans) / t_lat
    seconds = (fl["encode"] + fl["decode"]) * vae_factor / r["vae"]
    seconds += fl["dit"] * dit_factor / r["dit"]
    wb = _weight_bytes(nbytes, weight_bytes)
    if settings.stream_blocks:  # every block crosses the bus once per window and step
        seconds += len(spans) * steps * sizes.dit_params * wb / PCIE_BYTES_PER_S
    elif settings.offload_dit:  # the DiT leaves and comes back once per chunk
        seconds += 2 * sizes.dit_params * wb / PCIE_BYTES_PER_S
    return seconds


def candidates(frames: int, base: RunSettings, *, can_offload: bool) -> list[RunSettings]:
    """Every combination the planner considers: tiles x offload x streaming x DiT window."""
    t_lat = latent_count(max(frames, 1))
    windows, w = [], t_lat
    while w >= 1:
        windows.append(w)
        w = w // 2 if w > 2 else w - 1
    out = []
    for tile in TILES:
        for offload in (False, True) if can_offload else (False,):
            for stream in (False, True) if offload else (False,):
                for w in windows:
                    out.append(replace(base, tile=tile, offload_dit=offload, stream_blocks=stream,
                                       dit_window=None if w == t_lat else w,
                                       dit_overlap=min(base.dit_overlap, max(w - 1, 0))))
    return out


def fit(sizes: ModelSizes, frames: int, width: int, height: int, budget: int, nbytes: int, *,
        scores: bool, start: RunSettings | None = None, can_offload: bool = True,
        weight_bytes: float | None = None, rates: dict[str, float] | None = None
        ) -> RunSettings:
    """The fastest settings whose estimated peak fits `budget` (bytes), exact before
    approximate at equal cost; the most frugal ones when nothing fits (the OOM retry path then
    has the last word).

    Order: no block streaming before streaming, longer DiT windows before shorter, then speed
    (`plan_seconds`: compute plus the weight transfers offloading adds), so e.g. on a 24 GB
    card the exact "DiT offloaded, whole frames" beats approximate tiles.
    `can_offload` is False where the DiT cannot leave the compute device (the CPU itself).
    """
    limit = budget * SAFETY
    base = start or RunSettings()
    best: tuple[tuple[bool, int, int, bool], RunSettings] | None = None
    t_lat = latent_count(max(frames, 1))
    frugal: tuple[int, RunSettings] | None = None
    for cand in candidates(frames, base, can_offload=can_offload):
        peak = estimate(sizes, cand, frames, width, height, nbytes, scores=scores,
                        weight_bytes=weight_bytes).peak
        if frugal is None or peak < frugal[0]:
            frugal = (peak, cand)
        if peak > limit:
            continue
        secs = plan_seconds(sizes, cand, frames, width, height, nbytes, rates=rates,
                            weight_bytes=weight_bytes)
        # Streaming only where nothing else fits: it pins the DiT's bytes of host RAM and
        # repeats its transfers for every DiT call (50-100 per chunk for SeedVR). Then the
        # longest DiT window (temporal context: shorter windows change the pictures most),
        # then the time, rounded to 1 %, so at "equal cost" exact settings (no tiles) win.
        key = (cand.stream_blocks, -(cand.dit_window or t_lat),
               round(math.log(max(secs, 1e-9)) / math.log(1.01)), cand.tile is not None)
        if best is None or key < best[0]:
            best = (key, cand)
    if best is not None:
        return best[1]
    log.warning("even the most frugal settings are estimated not to fit %.1f GiB",
                budget / GIB)
    assert frugal is not None
    return frugal[1]


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
# Uncalibrated CUDA guesses by card class (bf16 dense tensor throughput reached by the DiT's
# large matmuls is about half the datasheet figure; the VAE's convolutions about a quarter of
# the DiT's): a consumer card is 3-10x slower than the data-centre figure above.
CUDA_CLASSES: tuple[tuple[tuple[str, ...], dict[str, float]], ...] = (
    (("h100", "h200", "h800", "gh200", "b100", "b200"), {"dit": 350e12, "vae": 80e12}),
    (("a100", "a800"), {"dit": 150e12, "vae": 40e12}),
    (("5090", "4090", "l40", "6000 ada", "a6000"), {"dit": 80e12, "vae": 20e12}),
    (("5080", "4080", "3090", "a5000", "l4"), {"dit": 45e12, "vae": 12e12}),
    (("5070", "4070", "3080", "a4000"), {"dit": 30e12, "vae": 8e12}),
    (("4060", "3070", "3060", "2080", "a2000", "t4"), {"dit": 15e12, "vae": 4e12}),
)
CUDA_UNKNOWN = {"dit": 25e12, "vae": 6e12}  # an unlisted card: assume a mid-range consumer one


def default_rates(kind: str, device_name: str = "") -> dict[str, float]:
    """Uncalibrated FLOP/s for a device kind ("cuda", "mps", "cpu") and, on CUDA, its name."""
    if kind != "cuda":
        return dict(DEFAULT_RATES.get(kind, DEFAULT_RATES["cpu"]))
    name = device_name.lower()
    for keys, rates in CUDA_CLASSES:
        if any(k in name for k in keys):
            return dict(rates)
    return dict(CUDA_UNKNOWN if name else DEFAULT_RATES["cuda"])


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


def load_rates(device_key: str, precision: str, kind: str,
               device_name: str = "") -> tuple[dict[str, float], bool]:
    """({"dit": FLOP/s, "vae": FLOP/s}, calibrated?) for this machine, device and precision;
    uncalibrated, a guess for the device class (`default_rates`)."""
    try:
        data = json.loads(calibration_path().read_text(encoding="utf-8"))
        rec = data[device_key][precision]
        return {"dit": float(rec["dit"]), "vae": float(rec["vae"])}, True
    except (OSError, ValueError, KeyError, TypeError):
        return default_rates(kind, device_name), False


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
