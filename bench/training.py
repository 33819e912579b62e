"""Training throughput and memory: latent cache vs on-the-fly encoding; 3B/7B memory per stage.

1. Steps per second of a tiny random model (CPU, 5 x 32² samples, batch 2) reading the latent
   cache, against degrading and VAE-encoding every sample on the fly (what the cache saves).
2. Peak training memory of the full SeedVR2-3B and SeedVR2-7B DiTs per default progressive
   stage, full fine-tune vs LoRA rank 16, with per-block gradient checkpointing, measured on
   the meta device (training/memory.py: weights + grads + AdamW + EMA + live activations).

    python bench/training.py [--steps 20] [--skip-memory]

Prints a table and writes bench/results/training.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"


class OnTheFly:
    """Duck-typed LatentCache that re-degrades and re-encodes pixels at every load."""

    def __init__(self, cache: Any, pixels: dict[str, Any], encoder: Any) -> None:
        self.cache, self.pixels, self.encoder = cache, pixels, encoder

    def text(self) -> Any:
        return self.cache.text()

    def eligible(self, frames: int, size: int) -> list[int]:
        return self.cache.eligible(frames, size)

    def load(self, index: int) -> Any:
        from seedvr_desktop.training.cache import CachedSample
        from seedvr_desktop.training.degrade import degrade_clip, sample_params

        e = self.cache.entries[index]
        hq_px = self.pixels[e.id]
        hq, hq_std = self.encoder.encode(hq_px)
        lq, lq_std = self.encoder.encode(degrade_clip(hq_px, sample_params(e.degradation_seed)))
        return CachedSample(e, hq, hq_std, lq, lq_std)


def throughput(steps: int) -> dict[str, float]:
    import torch

    from seedvr_desktop.training.cache import Encoder, LatentCache
    from seedvr_desktop.training.config import Stage, TrainConfig
    from seedvr_desktop.training.model_io import load_for_training
    from seedvr_desktop.training.samples import cut_samples
    from seedvr_desktop.training.session import build_trainer, run_prepare
    from seedvr_desktop.training.trainer import Trainer
    from tests.clips import make_video
    from tests.engine.seedvr_tiny import write_tiny_model

    torch.set_num_threads(2)
    cpu = torch.device("cpu")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = write_tiny_model(root / "model")
        (root / "data").mkdir()
        for i in range(3):
            make_video(root / "data" / f"c{i}.mp4", frames=16, size=(48, 40))
        run_prepare([root / "data"], model, root / "cache", shapes=[(5, 32)], per_clip=2,
                    device=cpu)
        cfg = TrainConfig(stages=(Stage(5, 32, steps),), batch=2, save_every=10**6).validate()
        out: dict[str, float] = {}
        trainer = build_trainer(model, root / "cache", root / "run_cache", cfg, device=cpu)
        trainer.run(2)  # warm-up: packing plans, allocator
        t0 = time.perf_counter()
        trainer.run()
        out["cache_steps_per_s"] = (steps - 2) / (time.perf_counter() - t0)

        cache = LatentCache(root / "cache")
        pixels = {}
        for e in cache.entries:
            for raw in cut_samples(Path(e.source), e.size, e.frames, 2):
                if raw.start == e.start:
                    pixels[e.id] = raw.pixels
        tm = load_for_training(model, device=cpu)
        enc = Encoder(tm.loaded.vae.eval(), tm.pos_emb, tm.neg_emb, tm.fingerprint, cpu)
        fly = Trainer(cfg, tm.loaded.dit.requires_grad_(True), OnTheFly(cache, pixels, enc),
                      root / "run_fly", device=cpu)  # type: ignore[arg-type]
        fly.run(2)
        t0 = time.perf_counter()
        fly.run()
        out["on_the_fly_steps_per_s"] = (steps - 2) / (time.perf_counter() - t0)
    return out


def memory() -> list[dict[str, Any]]:
    from seedvr_desktop.models import presets
    from seedvr_desktop.training.config import DEFAULT_STAGES
    from seedvr_desktop.training.memory import GIB, measure

    rows = []
    for name, cfg in (("3B", presets.dit_config_3b()), ("7B", presets.dit_config_7b())):
        for stage in DEFAULT_STAGES:
            for lora in (0, 16):
                r = measure(cfg, stage.frames, stage.size, lora_rank=lora)
                rows.append({"model": name, "stage": f"{stage.frames}x{stage.size}",
                             "mode": f"LoRA r{lora}" if lora else "full",
                             "params": r.params, "trainable": r.trainable,
                             "weights_gib": r.weights_bytes / GIB,
                             "grads_adam_ema_gib": r.grads_optimizer_bytes / GIB,
                             "activations_gib": r.activation_bytes / GIB,
                             "total_gib": r.total_bytes / GIB})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--skip-memory", action="store_true")
    args = ap.parse_args()
    result: dict[str, Any] = {"throughput_tiny_cpu": throughput(args.steps)}
    tp = result["throughput_tiny_cpu"]
    print(f"tiny model, CPU, batch 2 of 5x32²: cache {tp['cache_steps_per_s']:.1f} steps/s, "
          f"on the fly {tp['on_the_fly_steps_per_s']:.1f} steps/s "
          f"({tp['cache_steps_per_s'] / tp['on_the_fly_steps_per_s']:.1f}x)")
    if not args.skip_memory:
        rows = memory()
        result["memory_meta"] = rows
        print(f"{'model':<5} {'stage':<8} {'mode':<9} {'trainable':>13} {'weights':>8} "
              f"{'grad+opt':>9} {'activ.':>8} {'total':>8}  (GiB, grad checkpointing on)")
        for r in rows:
            print(f"{r['model']:<5} {r['stage']:<8} {r['mode']:<9} {r['trainable']:>13,} "
                  f"{r['weights_gib']:>8.1f} {r['grads_adam_ema_gib']:>9.1f} "
                  f"{r['activations_gib']:>8.2f} {r['total_gib']:>8.1f}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "training.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
