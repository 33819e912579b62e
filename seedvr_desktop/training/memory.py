"""Training memory of a DiT measured on the meta device (no weights, no real memory).

`measure` builds the model on the meta device, runs one forward and backward of a stage-sized
sample (with per-block gradient checkpointing unless disabled) under a TorchDispatchMode that
tracks every live storage, and adds the optimiser's share:

    full fine-tune: fp32 weights + fp32 grads + AdamW (2 x fp32) + fp32 EMA   = 20 B / param
    LoRA:           frozen bf16 base (2 B / param) + 20 B per adapter param

Activations are the measured peak of live storages minus the weights, in the dtype the step
would use on a GPU (bf16 autocast is approximated by building the model in bf16).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

GIB = 1024**3


class LiveStorages(TorchDispatchMode):
    """Counts the bytes of distinct storages alive after every op; keeps the peak."""

    def __init__(self, ignore: tuple[Tensor, ...] = ()) -> None:
        super().__init__()
        # Storages that exist before the run (weights): views of them (a transposed weight
        # inside linear) must not count as new memory.
        self.ignore = {t.untyped_storage()._cdata for t in ignore}
        self.live: dict[int, int] = {}
        self.events: list[tuple[int, int]] = []  # (storage key, +bytes alloc / -bytes free)

    def track(self, t: Tensor) -> None:
        storage = t.untyped_storage()
        key = storage._cdata
        if key in self.live or key in self.ignore:
            return
        nbytes = storage.nbytes()
        self.live[key] = nbytes
        self.events.append((key, nbytes))
        weakref.finalize(storage, self._release, key)

    def _release(self, key: int) -> None:
        if key in self.live:
            self.events.append((key, -self.live.pop(key)))

    def peak(self, exclude: set[int] | frozenset[int] = frozenset()) -> int:
        """Highest sum of live bytes, leaving out storages in `exclude` (e.g. the grads)."""
        current = best = 0
        for key, delta in self.events:
            if key not in exclude:
                current += delta
                best = max(best, current)
        return best

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, Tensor):
                self.track(t)
        return out


@dataclass(frozen=True)
class MemoryReport:
    params: int
    trainable: int
    weights_bytes: int
    grads_optimizer_bytes: int
    activation_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.grads_optimizer_bytes + self.activation_bytes


def measure(config: Any, frames: int, size: int, *, lora_rank: int = 0,
            checkpointing: bool = True, txt_len: int = 58) -> MemoryReport:
    """Peak training memory of one sample of `frames` x `size`² through a DiT `config`."""
    from seedvr_desktop.models.loading import build_dit
    from seedvr_desktop.training.lora import add_lora
    from seedvr_desktop.training.trainer import enable_block_checkpointing

    dit = build_dit(config, device="meta").to(torch.bfloat16)
    dit.requires_grad_(lora_rank == 0)
    if lora_rank:
        add_lora(dit, lora_rank)
        dit.to(device="meta", dtype=torch.bfloat16)
    dit.set_exact_attention(False)
    for module in dit.modules():
        if hasattr(module, "freq_key"):
            # RoPE caches its tables under a key read from its frequency values, which meta
            # tensors do not have; any constant key works for one measured call.
            module.freq_key = lambda: ("meta",)  # type: ignore[assignment]
    if checkpointing:
        enable_block_checkpointing(dit)
    params = sum(p.numel() for p in dit.parameters())
    trainable = sum(p.numel() for p in dit.parameters() if p.requires_grad)
    frozen = params - trainable
    weights = (2 * frozen + 4 * trainable) if lora_rank else 4 * params
    extra = 16 * trainable  # grads 4 + Adam 8 + EMA 4
    t, h = (frames - 1) // 4 + 1, size // 8
    mode = LiveStorages((*dit.parameters(), *dit.buffers()))
    with mode:
        vid = torch.empty(t * h * h, config.vid_in_channels, device="meta", dtype=torch.bfloat16)
        txt = torch.empty(txt_len, config.txt_in_dim, device="meta", dtype=torch.bfloat16)
        out = dit(vid, txt, torch.tensor([[t, h, h]]), torch.tensor([[txt_len]]),
                  torch.tensor([500.0]))
        out.float().pow(2).mean().backward()
        del out, vid, txt
    # Weights were made before the mode ran; of what it saw, the parameter grads are counted
    # in `extra` (as fp32), the rest is activations and temporaries.
    grads = {p.grad.untyped_storage()._cdata for p in dit.parameters() if p.grad is not None}
    activations = mode.peak(grads)
    return MemoryReport(params, trainable, weights, extra, activations)
