"""The training loop: stages, sampler, AdamW with warm-up, grad clip, EMA, checkpoints, metrics.

A step's content depends only on (config, step): the sampler is a seeded permutation per stage
and epoch read at a position, and each sample's noise comes from a generator keyed by the step
and its slot in the global batch. So `--resume` from a checkpoint reproduces the losses of an
uninterrupted run exactly (on the CPU), and 2 ranks with half the batch each match 1 rank.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from seedvr_desktop.errors import UserError
from seedvr_desktop.fsutil import atomic_write_text, remove_library_temps, remove_stale_temps
from seedvr_desktop.models.dit.model import NaDiT
from seedvr_desktop.training import distributed
from seedvr_desktop.training.cache import LatentCache
from seedvr_desktop.training.checkpoint import (
    CHECKPOINT,
    load_checkpoint,
    restore_rng,
    save_checkpoint,
)
from seedvr_desktop.training.config import TrainConfig
from seedvr_desktop.training.ema import EMA
from seedvr_desktop.training.objective import batch_loss, build_batch

log = logging.getLogger(__name__)

METRICS = "metrics.jsonl"


def stage_sample(eligible: list[int], seed: int, stage: int, position: int) -> int:
    """The cache index at `position` of a stage's endless stream of shuffled epochs."""
    n = len(eligible)
    epoch, offset = divmod(position, n)
    gen = torch.Generator().manual_seed(seed * 1_000_003 + stage * 7919 + epoch)
    return eligible[int(torch.randperm(n, generator=gen)[offset])]


def enable_block_checkpointing(dit: nn.Module) -> None:
    """Recompute each block's activations in backward (torch.utils.checkpoint, non-reentrant):
    activation memory drops to one block's worth plus the block inputs, for ~30% more time.
    Done by overriding each block's `forward` on the instance, so state-dict keys stay."""
    from torch.utils.checkpoint import checkpoint

    for block in getattr(dit, "blocks", []):
        inner = block.forward

        def forward(*args: Any, _inner: Callable[..., Any] = inner, **kwargs: Any) -> Any:
            return checkpoint(_inner, *args, use_reentrant=False, **kwargs)

        block.forward = forward


def autocast_for(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    use_bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    if not use_bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


@dataclass
class StepResult:
    step: int  # 1-based count of finished steps
    stage: int
    loss: float
    lr: float
    grad_norm: float


class Trainer:
    """Owns model, optimiser, EMA and the loop; drive it with `steps()` or `run()`."""

    def __init__(self, cfg: TrainConfig, dit: nn.Module, cache: LatentCache, out: Path, *,
                 device: torch.device, info: distributed.DistInfo | None = None,
                 meta: dict[str, Any] | None = None) -> None:
        self.cfg = cfg
        self.cache = cache
        self.out = Path(out)
        self.device = device
        self.info = info or distributed.DistInfo()
        self.meta = dict(meta or {})
        if cfg.batch % self.info.world:
            raise UserError(f"batch {cfg.batch} does not split over {self.info.world} processes")
        self.pos, self.neg = (t.to(torch.float32) for t in cache.text())
        self.eligible = []
        for i, stage in enumerate(cfg.stages):
            ids = cache.eligible(stage.frames, stage.size)
            if not ids:
                raise UserError(f"stage {i + 1} ({stage.label()}) has no samples in the cache; "
                                f"prepare it with --frames {stage.frames} --size {stage.size}")
            self.eligible.append(ids)
        self.dit = dit
        self.named = [(n, p) for n, p in dit.named_parameters() if p.requires_grad]
        if not self.named:
            raise UserError("nothing to train: every parameter is frozen")
        if isinstance(dit, NaDiT):
            dit.set_exact_attention(False)  # fused SDPA: the exact path is for parity only
            fp32 = cfg.precision == "fp32" or (cfg.precision == "auto" and device.type != "cuda")
            dit.set_attention_rounding(torch.float32 if fp32 else None)
        if cfg.grad_checkpoint:
            enable_block_checkpointing(dit)
        dit.train()
        self.model = distributed.wrap(dit, self.info, device, fsdp=cfg.fsdp)
        self.optimizer = torch.optim.AdamW([p for _, p in self.named], lr=cfg.lr,
                                           betas=(cfg.beta1, cfg.beta2),
                                           weight_decay=cfg.weight_decay, foreach=False)
        self.ema = EMA(self.named, cfg.ema_decay, cfg.ema_warmup)
        self.step = 0
        self.positions = [0 for _ in cfg.stages]

    # ------------------------------------------------------------------ state
    def lr_at(self, step: int) -> float:
        if self.cfg.warmup_steps <= 0:
            return self.cfg.lr
        return self.cfg.lr * min(1.0, (step + 1) / self.cfg.warmup_steps)

    def trainable_state(self) -> dict[str, Tensor]:
        # FSDP parameters are sharded DTensors: gather each one whole for the checkpoint.
        return {n: (p.full_tensor() if hasattr(p, "full_tensor") else p).detach()
                for n, p in self.named}

    def save(self) -> None:
        if not self.info.is_main:
            return
        stage = self.cfg.stage_at(min(self.step, self.cfg.total_steps - 1))[0]
        scalars = {"step": self.step, "stage": stage, "positions": self.positions,
                   "ema_updates": self.ema.updates, "config": self.cfg.to_dict(), **self.meta}
        save_checkpoint(self.out / CHECKPOINT, model=self.trainable_state(),
                        ema=self.ema.state(), optimizer=self.optimizer.state_dict(),
                        scalars=scalars)

    def resume(self) -> None:
        if self.info.is_main:  # temps of a write that a kill -9 interrupted
            for target in (CHECKPOINT, METRICS):
                remove_stale_temps(self.out / target)
            remove_library_temps(self.out)
        ck = load_checkpoint(self.out / CHECKPOINT)
        s = ck.scalars
        if s.get("config", {}).get("stages") != self.cfg.to_dict()["stages"]:
            log.warning("the stages differ from the checkpoint's; continuing with the new ones")
        for key in ("model", "lora_rank"):
            if key in self.meta and s.get(key) != self.meta[key]:
                raise UserError(f"the checkpoint in {self.out} was trained with another {key} "
                                f"({s.get(key)!r}, now {self.meta[key]!r})")
        params = dict(self.named)
        missing = set(params) - set(ck.model)
        if missing:
            raise UserError(f"the checkpoint in {self.out} does not match this model "
                            f"(no {sorted(missing)[0]})")
        with torch.no_grad():
            for name, p in params.items():
                p.copy_(ck.model[name])
        self.ema.load(ck.ema, int(s["ema_updates"]))
        self.optimizer.load_state_dict(ck.optimizer)
        restore_rng(ck.rng)
        self.step = int(s["step"])
        self.positions = list(s["positions"]) + [0] * (len(self.cfg.stages) - len(s["positions"]))
        self._truncate_metrics()
        log.info("resumed at step %d", self.step)

    def _truncate_metrics(self) -> None:
        """Drop metric lines after the checkpoint (steps a killed run did not save)."""
        path = self.out / METRICS
        if not self.info.is_main or not path.is_file():
            return
        kept = [line for line in path.read_text(encoding="utf-8").splitlines()
                if line.strip() and json.loads(line)["step"] <= self.step]
        atomic_write_text(path, "".join(f"{line}\n" for line in kept))

    # ------------------------------------------------------------------ loop
    def steps(self, until: int | None = None) -> Iterator[StepResult]:
        """Run steps up to `until` (default: the end of the last stage), yielding each one."""
        end = min(until or self.cfg.total_steps, self.cfg.total_steps)
        self.out.mkdir(parents=True, exist_ok=True)
        while self.step < end:
            result = self._one_step()
            if self.step % self.cfg.log_every == 0 or self.step == end:
                self._log(result)
            if self.step % self.cfg.save_every == 0 or self.step == end:
                self.save()
            yield result
        distributed.barrier(self.info)

    def run(self, until: int | None = None) -> list[float]:
        return [r.loss for r in self.steps(until)]

    def _one_step(self) -> StepResult:
        cfg, info = self.cfg, self.info
        stage_idx, _stage, _ = cfg.stage_at(self.step)
        first = self.positions[stage_idx]
        share = cfg.batch // info.world
        slots = list(range(info.rank * share, (info.rank + 1) * share))  # this rank's share
        size = cfg.micro_batch or share
        lr = self.lr_at(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        total = torch.zeros((), device=self.device)
        chunks = [slots[i:i + size] for i in range(0, len(slots), size)]
        for k, chunk in enumerate(chunks):
            indices = [stage_sample(self.eligible[stage_idx], cfg.seed, stage_idx, first + s)
                       for s in chunk]
            samples = [self.cache.load(i) for i in indices]
            batch = build_batch(samples, chunk, self.step, cfg, self.pos, self.neg)
            # DDP: all-reduce once, with the last micro-batch's backward.
            sync = k == len(chunks) - 1 or not hasattr(self.model, "no_sync")
            with (contextlib.nullcontext() if sync else self.model.no_sync()):  # type: ignore[operator]
                with autocast_for(self.device, cfg.precision):
                    _, per_sample = batch_loss(self.model, batch.to(self.device))
                part = per_sample.sum() / len(slots)
                if not torch.isfinite(part):
                    raise UserError(f"the loss became {part.item()} at step {self.step + 1}; "
                                    "lower --lr or check the cache")
                part.backward()
            total = total + part.detach()
        loss = total
        params = [p for _, p in self.named]
        if cfg.grad_clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        else:
            norm = torch.sqrt(sum((p.grad.float() ** 2).sum() for p in params
                                  if p.grad is not None))  # type: ignore[arg-type]
        self.optimizer.step()
        self.ema.update(self.named)
        self.positions[stage_idx] = first + cfg.batch
        self.step += 1
        mean_loss = float(distributed.mean_over_ranks(loss.detach(), info).item())
        return StepResult(self.step, stage_idx, mean_loss, lr, float(norm))

    def _log(self, r: StepResult) -> None:
        if not self.info.is_main:
            return
        record = {"step": r.step, "loss": r.loss, "stage": r.stage, "lr": r.lr,
                  "grad_norm": r.grad_norm if math.isfinite(r.grad_norm) else None}
        try:
            with (self.out / METRICS).open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")
        except OSError as exc:
            raise UserError(f"cannot write {self.out / METRICS}: {exc.strerror or exc}") from None
        log.info("step %d stage %d loss %.5f lr %.2e", r.step, r.stage + 1, r.loss, r.lr)
