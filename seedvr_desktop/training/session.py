"""Wiring for `train prepare` and `train run`: load the model, check the cache, start the loop."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from seedvr_desktop.errors import UserError
from seedvr_desktop.training import distributed
from seedvr_desktop.training.cache import Encoder, LatentCache, prepare
from seedvr_desktop.training.checkpoint import CHECKPOINT
from seedvr_desktop.training.config import TrainConfig
from seedvr_desktop.training.lora import add_lora
from seedvr_desktop.training.model_io import load_for_training
from seedvr_desktop.training.samples import find_sources
from seedvr_desktop.training.trainer import METRICS, Trainer

log = logging.getLogger(__name__)


def default_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def run_prepare(data: Sequence[Path], model_dir: Path, cache: Path, *,
                shapes: Sequence[tuple[int, int]], seed: int = 0, per_clip: int = 4,
                preview: Path | None = None, device: torch.device | None = None,
                progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    sources = find_sources(data)
    dev = device or default_device()
    model = load_for_training(model_dir, device=dev)
    model.loaded.dit = None  # only the VAE is needed here; free the DiT early
    enc = Encoder(model.loaded.vae.eval(), model.pos_emb, model.neg_emb, model.fingerprint, dev)
    return prepare(sources, cache, enc, shapes=shapes, seed=seed, per_clip=per_clip,
                   preview=preview, progress=progress)


def build_trainer(model_dir: Path, cache_dir: Path, out: Path, cfg: TrainConfig, *,
                  resume: bool = False, device: torch.device | None = None) -> Trainer:
    """Everything up to the first step: model (+LoRA), cache check, optimiser, resume."""
    dev = device or default_device()
    info = distributed.init_from_env(dev)
    if dev.type == "cuda" and info.enabled:
        dev = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(dev)
    out = Path(out)
    if not resume and (out / CHECKPOINT).exists():
        raise UserError(f"{out} already holds a training run; add --resume or choose another "
                        "--out folder")
    model = load_for_training(model_dir, device=dev)
    cache = LatentCache(cache_dir, model.fingerprint)
    dit = model.loaded.dit
    dit.requires_grad_(cfg.lora_rank == 0)
    if cfg.lora_rank:
        add_lora(dit, cfg.lora_rank, cfg.lora_alpha)
    meta = {"model": model.fingerprint, "model_dir": str(Path(model_dir).resolve()),
            "lora_rank": cfg.lora_rank, "lora_alpha": cfg.lora_alpha or cfg.lora_rank}
    trainer = Trainer(cfg, dit, cache, out, device=dev, info=info, meta=meta)
    if resume:
        trainer.resume()
    elif info.is_main and (out / METRICS).exists():
        (out / METRICS).unlink()
    return trainer
