"""Exponential moving average of the trained weights (what export writes, as SeedVR's `ema`)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn


class EMA:
    """float32 shadows of the trainable parameters, updated after every optimiser step.

    With `warmup`, the decay is min(decay, (1 + n) / (10 + n)) after n updates, so the average
    is useful long before 1 / (1 - 0.9998) = 5000 steps.
    """

    def __init__(self, named: Iterable[tuple[str, nn.Parameter]], decay: float,
                 warmup: bool = True) -> None:
        self.decay = decay
        self.warmup = warmup
        self.updates = 0
        self.shadow: dict[str, Tensor] = {n: p.detach().float().clone() for n, p in named}

    def current_decay(self) -> float:
        if not self.warmup:
            return self.decay
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, named: Iterable[tuple[str, nn.Parameter]]) -> None:
        d = self.current_decay()
        for name, p in named:
            self.shadow[name].lerp_(p.detach().float(), 1.0 - d)
        self.updates += 1

    def state(self) -> dict[str, Tensor]:
        return dict(self.shadow)

    def load(self, tensors: dict[str, Tensor], updates: int) -> None:
        missing = set(self.shadow) - set(tensors)
        if missing:
            raise KeyError(f"EMA state lacks {sorted(missing)[:3]}")
        for name in self.shadow:
            self.shadow[name] = tensors[name].float().clone()
        self.updates = updates
