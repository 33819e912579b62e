"""Peak device memory of the real SeedVR chunk path, simulated on the `meta` device.

For each model, weight format, output size and card size this chooses the memory plan the
engine would choose (`memory.fit` for the card's budget), then runs the *real* chunk code
(`engine/seedvr/chunk.py`: VAE encode -> DiT -> VAE decode, colour fix) with the full-size
presets on the `meta` device, where tensors have shapes and dtypes but no data. A
TorchDispatchMode counts the bytes of every live storage the run creates (activations, carries,
latents, caches, block buffers); the resident weights are added per stage from where the plan
puts them (the DiT leaves the device during VAE work when offloaded; when streamed only its
outer layers and the two block buffers stay). The host side (the pinned block arena) is
reported apart. Only the final device -> host copy of the output frames is replaced (meta
tensors have no data to copy).

    python bench/memory_sim.py            # the full table (2 models x 2 sizes x 5 cards)
    python bench/memory_sim.py --quick    # a subset in under a minute

Prints a table and writes bench/results/memory_sim.json (a list of rows: model, weights,
width, height, card_gb, plan, estimate_gib, peak_gib, host_pinned_gib, fits).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from seedvr_desktop.engine.base import ChunkContext  # noqa: E402
from seedvr_desktop.engine.seedvr import chunk as chunk_mod  # noqa: E402
from seedvr_desktop.engine.seedvr import memory  # noqa: E402
from seedvr_desktop.engine.seedvr.engine import CHUNK_FRAMES  # noqa: E402
from seedvr_desktop.engine.seedvr.hooks import BlockStreamer  # noqa: E402
from seedvr_desktop.engine.seedvr.meta_measure import FusedAttention, LiveBytes  # noqa: E402

GIB = 1024**3
MODELS = ("seedvr2-3b", "seedvr2-7b")
SIZES = ((1280, 720), (1920, 1080))
CARDS = (8, 12, 16, 24, 80)
# Bytes per weight parameter of each format (Q4_K_M: 4.5 bits plus its scales, about 0.5625).
WEIGHT_BYTES = {"bf16": 2.0, "fp8": 1.0, "q8_0": 1.0625, "q4_k_m": 0.5625}
TXT_LEN = 58  # rows of the released positive text embedding


@dataclass
class SimModel:
    name: str
    dit: Any
    vae: Any
    pos_emb: torch.Tensor
    sizes: memory.ModelSizes


_MODELS: dict[str, SimModel] = {}


def sim_model(name: str) -> SimModel:
    """The full-size preset on the meta device in bf16 (the on-device compute layout)."""
    if name not in _MODELS:
        from seedvr_desktop.models.loading import build_dit
        from seedvr_desktop.models.presets import get_preset
        from seedvr_desktop.models.vae.loading import build_vae

        preset = get_preset(name)
        dit = build_dit(preset.dit, device="meta").to(torch.bfloat16)
        # RoPE frequencies are recomputed from the config and keyed by value: real numbers.
        from seedvr_desktop.models.dit.rope import Rope3d, default_freqs

        for mod in dit.modules():
            if isinstance(mod, Rope3d):
                mod.rope.freqs = default_freqs(mod.kind, mod.head_dim, preset.dit.rope_dim)
        vae = build_vae(preset.vae, device="meta").to(torch.bfloat16)
        pos = torch.empty(TXT_LEN, preset.dit.txt_in_dim, device="meta")
        sizes = memory.ModelSizes.from_configs(preset.dit, preset.vae, TXT_LEN)
        _MODELS[name] = SimModel(name, dit, vae, pos, sizes)
    return _MODELS[name]


@contextmanager
def _cuda_like() -> Iterator[None]:
    """Meta tensors have no data: the final device -> host copy returns zeros instead; and
    attention allocates what the fused CUDA kernels do."""
    real_post = chunk_mod.postprocess

    def fake(x: torch.Tensor, out_w: int, out_h: int) -> np.ndarray:
        return np.zeros((x.shape[2], out_h, out_w, 3), np.float32)

    chunk_mod.postprocess = fake
    try:
        with FusedAttention():
            yield
    finally:
        chunk_mod.postprocess = real_post


def param_bytes(module: torch.nn.Module, per_param: float) -> int:
    return int(sum(p.numel() for p in module.parameters()) * per_param)


def simulate(model: str, width: int, height: int, settings: memory.RunSettings, *,
             frames: int = CHUNK_FRAMES, weights: str = "bf16") -> dict[str, float]:
    """Run one chunk on the meta device; {"peak": bytes, "encode"/"dit"/"decode": stage
    peaks, "host_pinned": bytes}."""
    m = sim_model(model)
    per_param = WEIGHT_BYTES[weights]
    scale = per_param / 2.0  # the meta model is bf16; other formats scale the weight bytes
    meta = torch.device("meta")
    engine = SimpleNamespace(
        model=SimpleNamespace(dit=m.dit, vae=m.vae, pos_emb=m.pos_emb, neg_emb=None),
        choice=SimpleNamespace(device=meta), host_device=meta, output_size=(width, height),
        recipe=SimpleNamespace(steps=1, cfg_scale=1.0, cfg_rescale=0.0, cond_noise_scale=0.0),
        color_fix="wavelet", block_streamer=None)
    streamer = None
    if settings.stream_blocks:
        streamer = BlockStreamer(m.dit, meta, meta)
        engine.block_streamer = streamer
    vae_w = param_bytes(m.vae, 2.0)
    dit_w = param_bytes(m.dit, per_param)
    outside = int(m.sizes.dit_outside_blocks * per_param)
    ring = int(streamer.device_bytes * scale) if streamer else 0
    src = np.zeros((frames, height, width, 3), np.float32)  # lazily mapped zero pages
    run = chunk_mod.ChunkRun(engine, src, ChunkContext(0, 0, 0), None, settings)
    dit_in_vae = 0 if (settings.offload_dit or settings.stream_blocks) else dit_w
    peaks: dict[str, float] = {}
    m.dit.clear_cache()  # per-shape tables are made (and counted) during the run
    live = LiveBytes()
    live.ignore([*m.dit.parameters(), *m.dit.buffers(), *m.vae.parameters(), m.pos_emb])
    if streamer is not None:
        live.ignore([streamer.arena, *streamer.ring])
    with _cuda_like(), live:
        live.set_resident(vae_w + dit_in_vae)
        live.reset_peak()
        cond = run.encode()
        peaks["encode"] = live.peak
        live.set_resident(vae_w + (outside + ring if streamer else dit_w))
        live.reset_peak()
        latent = run.denoise(cond)
        del cond
        peaks["dit"] = live.peak
        live.set_resident(vae_w + dit_in_vae)
        live.reset_peak()
        run.decode(latent)
        del latent
        peaks["decode"] = live.peak
    if streamer is not None:
        # Put the blocks' weights back into ordinary meta tensors for the next simulation.
        for block_slots in streamer.layout:
            for s in block_slots:
                s.tensor.data = torch.empty(s.tensor.shape, dtype=s.tensor.dtype, device="meta")
        m.dit.clear_cache()
    peaks["peak"] = max(peaks["encode"], peaks["dit"], peaks["decode"])
    peaks["host_pinned"] = streamer.host_bytes * scale if streamer else 0
    return peaks


def plan_for(model: str, width: int, height: int, card_gb: float, weights: str = "bf16",
             frames: int = CHUNK_FRAMES) -> tuple[memory.RunSettings, memory.StageMemory]:
    """The plan `memory.fit` chooses for a CUDA card of `card_gb` and its estimate."""
    sizes = sim_model(model).sizes
    wb = WEIGHT_BYTES[weights]
    settings = memory.fit(sizes, frames, width, height, int(card_gb * GIB), 2, scores=False,
                          weight_bytes=wb)
    est = memory.estimate(sizes, settings, frames, width, height, 2, scores=False,
                          weight_bytes=wb)
    return settings, est


def cell(model: str, width: int, height: int, card_gb: float, weights: str = "bf16",
         frames: int = CHUNK_FRAMES) -> dict[str, Any]:
    settings, est = plan_for(model, width, height, card_gb, weights, frames)
    sim = simulate(model, width, height, settings, frames=frames, weights=weights)
    return {"model": model, "weights": weights, "width": width, "height": height,
            "card_gb": card_gb, "plan": settings.describe(),
            "estimate_gib": round(est.peak / GIB, 2), "peak_gib": round(sim["peak"] / GIB, 2),
            "host_pinned_gib": round(sim["host_pinned"] / GIB, 2),
            "fits": sim["peak"] <= memory.SAFETY * card_gb * GIB,
            "stages_gib": {k: round(sim[k] / GIB, 2) for k in ("encode", "dit", "decode")},
            "estimate_stages_gib": {"encode": round(est.encode / GIB, 2),
                                    "dit": round(est.dit / GIB, 2),
                                    "decode": round(est.decode / GIB, 2)}}


def _card(text: str) -> float:
    value = float(text)
    return int(value) if value.is_integer() else value


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a subset (3B, 720p, 8 and 24 GB)")
    ap.add_argument("--weights", default="bf16", help="comma-separated: " + ", ".join(
        WEIGHT_BYTES))
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated presets")
    ap.add_argument("--cards", default=",".join(str(c) for c in CARDS),
                    help="comma-separated card sizes in GB")
    ap.add_argument("--heights", default="720,1080", help="output sizes: 720 and/or 1080")
    ap.add_argument("--append", action="store_true",
                    help="add the rows to --out instead of replacing it (other formats)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "memory_sim.json")
    args = ap.parse_args(argv)
    formats = [w.strip() for w in args.weights.split(",") if w.strip()]
    grid: list[tuple[str, int, int, float]]
    if args.quick:
        grid = [("seedvr2-3b", 1280, 720, c) for c in (8, 24)]
    else:
        heights = {int(v) for v in args.heights.split(",")}
        grid = [(m.strip(), w, h, _card(c)) for m in args.models.split(",")
                for w, h in SIZES if h in heights for c in args.cards.split(",")]
    rows = []
    header = (f"{'model':<11} {'weights':<7} {'size':<9} {'card':>4}  {'estimate':>8} "
              f"{'peak':>6} {'err':>6} {'pinned':>6}  fits  plan")
    print(header)
    for weights in formats:
        for model, w, h, card in grid:
            t0 = time.perf_counter()
            row = cell(model, w, h, card, weights)
            rows.append(row)
            err = row["estimate_gib"] / row["peak_gib"] - 1 if row["peak_gib"] else 0.0
            print(f"{model:<11} {weights:<7} {f'{w}x{h}':<9} {card:>4g}  "
                  f"{row['estimate_gib']:>8.2f} {row['peak_gib']:>6.2f} {err:>+6.1%} "
                  f"{row['host_pinned_gib']:>6.2f}  {'yes' if row['fits'] else 'NO ':<4}  "
                  f"{row['plan']}  ({time.perf_counter() - t0:.1f} s)", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.append and args.out.exists():
        new = {(r["model"], r["weights"], r["width"], r["height"], r["card_gb"]) for r in rows}
        old = [r for r in json.loads(args.out.read_text(encoding="utf-8"))
               if (r["model"], r["weights"], r["width"], r["height"], r["card_gb"]) not in new]
        rows = old + rows
    args.out.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    ok = all(r["fits"] for r in rows) and all(
        abs(r["estimate_gib"] / r["peak_gib"] - 1) <= 0.15 for r in rows if r["peak_gib"])
    print(f"wrote {args.out}; goals {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
