"""Training settings: one typed object, read from a TOML file and overridden by flags.

    lr = 1e-4                # every key of TrainConfig may appear at the top level
    batch = 4
    [[stages]]               # progressive stages, run in order
    frames = 5               # 4n+1 pixel frames (1 = images only)
    size = 256               # square crop side in pixels, a multiple of 16
    steps = 1000

Unknown keys and stages the model cannot run are one-line `UserError`s, never a traceback.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seedvr_desktop.errors import UserError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - 3.10
    import tomli as tomllib

# Pixels per DiT token side: VAE factor 8 times patch 2, so crops are multiples of 16.
SIZE_MULTIPLE = 16
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True)
class Stage:
    """One progressive stage: clips of `frames` x `size`² pixels for `steps` optimiser steps."""

    frames: int
    size: int
    steps: int

    def label(self) -> str:
        return f"{self.frames}x{self.size}²"

    def validate(self, index: int) -> None:
        where = f"stage {index + 1} ({self.frames}x{self.size}, {self.steps} steps)"
        if self.frames < 1 or (self.frames - 1) % 4:
            raise UserError(f"{where}: frames must be 4n+1 (1, 5, 9, 21, ...)")
        if self.size < SIZE_MULTIPLE or self.size % SIZE_MULTIPLE:
            raise UserError(f"{where}: size must be a multiple of {SIZE_MULTIPLE} pixels")
        if self.steps < 1:
            raise UserError(f"{where}: needs at least one step")


DEFAULT_STAGES = (Stage(5, 256, 1000), Stage(9, 512, 1000), Stage(21, 768, 1000))


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run (saved in every checkpoint)."""

    stages: tuple[Stage, ...] = DEFAULT_STAGES
    batch: int = 4  # global batch (all ranks together), in samples
    # Samples per DiT call (gradients accumulate over calls); 0 = a rank's whole share at once.
    # The official packed forward lets samples of one call touch each other's text RoPE rows,
    # so runs on different numbers of ranks match exactly only with the same micro_batch.
    micro_batch: int = 0
    lr: float = 1e-4
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    warmup_steps: int = 100
    grad_clip: float = 1.0  # max global grad norm; 0 = off
    ema_decay: float = 0.9998
    ema_warmup: bool = True  # decay min(ema_decay, (1+n)/(10+n)): useful EMA in short runs
    text_dropout: float = 0.1  # probability of training on the negative (empty) embedding
    cond_noise_scale: float = 0.25  # condition noise of the official training config
    sample_posterior: bool = True  # x0/condition drawn from the VAE posterior, else its mean
    logit_mean: float = 0.0  # timestep sampling: t = 1000·sigmoid(N(mean, std))
    logit_std: float = 1.0
    precision: str = "auto"  # auto: bf16 autocast on CUDA, fp32 on CPU
    grad_checkpoint: bool = True
    lora_rank: int = 0  # 0 = full fine-tune
    lora_alpha: float = 0.0  # 0 = same as the rank
    seed: int = 0
    log_every: int = 1
    save_every: int = 100
    fsdp: bool = False

    @property
    def total_steps(self) -> int:
        return sum(s.steps for s in self.stages)

    def stage_at(self, step: int) -> tuple[int, Stage, int]:
        """(stage index, stage, step within it) for the 0-based global `step`."""
        start = 0
        for i, stage in enumerate(self.stages):
            if step < start + stage.steps:
                return i, stage, step - start
            start += stage.steps
        raise ValueError(f"step {step} is past the last stage")

    def validate(self) -> TrainConfig:
        if not self.stages:
            raise UserError("the training config has no stages")
        for i, stage in enumerate(self.stages):
            stage.validate(i)
        checks = [
            (self.batch >= 1, "batch must be at least 1"),
            (self.micro_batch >= 0, "micro_batch must be >= 0"),
            (self.lr > 0, "lr must be positive"),
            (0 <= self.ema_decay < 1, "ema_decay must be in [0, 1)"),
            (0 <= self.text_dropout <= 1, "text_dropout must be in [0, 1]"),
            (self.cond_noise_scale >= 0, "cond_noise_scale must be >= 0"),
            (self.logit_std > 0, "logit_std must be positive"),
            (self.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}"),
            (self.lora_rank >= 0, "lora_rank must be >= 0"),
            (self.warmup_steps >= 0 and self.grad_clip >= 0, "warmup_steps/grad_clip >= 0"),
            (self.log_every >= 1 and self.save_every >= 1, "log_every/save_every must be >= 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(f"training config: {message}")
        return self

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["stages"] = [dataclasses.asdict(s) for s in self.stages]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "training config") -> TrainConfig:
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise UserError(f"{where}: unknown key {unknown[0]!r} "
                            f"(known: {', '.join(sorted(names))})")
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key == "stages":
                values[key] = tuple(_stage(s, i, where) for i, s in enumerate(value or []))
                continue
            default = names[key].default
            try:
                values[key] = _coerce(value, type(default))
            except (TypeError, ValueError):
                raise UserError(f"{where}: {key} must be a {type(default).__name__}, "
                                f"not {value!r}") from None
        return cls(**values).validate()


def _coerce(value: Any, kind: type) -> Any:
    if kind is bool:
        if not isinstance(value, bool):
            raise TypeError(value)
        return value
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise TypeError(value)
    if kind is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise TypeError(value)
    if kind is str and not isinstance(value, str):
        raise TypeError(value)
    return kind(value)


def _stage(raw: Any, index: int, where: str) -> Stage:
    if not isinstance(raw, Mapping):
        raise UserError(f"{where}: stage {index + 1} must be a table with frames, size, steps")
    keys = {"frames", "size", "steps"}
    unknown = sorted(set(raw) - keys)
    if unknown:
        raise UserError(f"{where}: stage {index + 1}: unknown key {unknown[0]!r}")
    missing = sorted(keys - set(raw))
    if missing:
        raise UserError(f"{where}: stage {index + 1} has no {missing[0]!r}")
    try:
        return Stage(*(_coerce(raw[k], int) for k in ("frames", "size", "steps")))
    except (TypeError, ValueError):
        raise UserError(f"{where}: stage {index + 1}: frames, size and steps must be "
                        "whole numbers") from None


def load_config(path: Path | None, overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    """The config file (or the defaults) with flags applied on top.

    `overrides` are config keys (None = not given); `frames`, `size` and `steps` among them
    replace the stages with one stage, taking what is not given from the first stage.
    """
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise UserError(f"{path} is not valid TOML ({exc})") from None
    where = str(path) if path is not None else "training config"
    base = TrainConfig.from_dict(data, where)
    over = {k: v for k, v in (overrides or {}).items() if v is not None}
    stage_over = {k: over.pop(k) for k in ("frames", "size", "steps") if k in over}
    merged = base.to_dict()
    merged.update(over)
    if stage_over:
        first = base.stages[0]
        merged["stages"] = [{"frames": stage_over.get("frames", first.frames),
                             "size": stage_over.get("size", first.size),
                             "steps": stage_over.get("steps", first.steps)}]
    return TrainConfig.from_dict(merged, "command line")


__all__ = ["DEFAULT_STAGES", "Stage", "TrainConfig", "load_config"]
