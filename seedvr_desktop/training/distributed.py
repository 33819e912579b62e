"""Several processes (torchrun): DDP for models that fit one device, FSDP for those that do not.

Each rank takes every world-th sample of the global batch and reads only those from the cache;
DDP averages the gradients, so with per-sample-mean losses a step equals the single-process
step on the whole batch (to float32 summation order). Backend: NCCL on CUDA, gloo on the CPU.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_from_env(device: torch.device) -> DistInfo:
    """Join the torchrun process group when WORLD_SIZE > 1 (idempotent)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    info = DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    log.info("rank %d of %d", info.rank, info.world)
    return info


def wrap(model: nn.Module, info: DistInfo, device: torch.device, *, fsdp: bool) -> nn.Module:
    """DDP (or FSDP, sharding each block) around the DiT; the model itself when alone."""
    if not info.enabled:
        return model
    if fsdp:
        # Big models: parameters, grads and Adam states sharded over ranks, one unit per block.
        from torch.distributed.fsdp import fully_shard

        for block in getattr(model, "blocks", []):
            fully_shard(block)
        fully_shard(model)
        return model
    from torch.nn.parallel import DistributedDataParallel

    # Unused parameters exist: the v2 last layer's text output is never read.
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)


def mean_over_ranks(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if not info.enabled:
        return value
    out = value.detach().clone()
    dist.all_reduce(out)
    return out / info.world


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
