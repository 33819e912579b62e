"""Training checkpoints: one safetensors file, written atomically, enough to resume exactly.

    model.{name}        trainable weights (all DiT weights; LoRA: only the adapter)
    ema.{name}          their EMA shadows
    optim.{i}.{key}     AdamW state per parameter index (exp_avg, exp_avg_sq, step)
    rng.torch, rng.cuda.{i}   generator states
    metadata "train"    JSON: step, stage, sampler position, config, optimiser groups, model

A full disk or a kill while writing leaves the previous checkpoint in place (temp + rename).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from seedvr_desktop.errors import UserError
from seedvr_desktop.fsutil import atomic_path

FORMAT = "seedvr-desktop-train/1"
CHECKPOINT = "checkpoint.safetensors"


@dataclass
class Checkpoint:
    model: dict[str, Tensor]
    ema: dict[str, Tensor]
    optimizer: dict[str, Any]  # a torch optimizer state_dict
    rng: dict[str, Tensor]
    scalars: dict[str, Any]


def flatten_optimizer(state: dict[str, Any]) -> tuple[dict[str, Tensor], dict[str, Any]]:
    tensors: dict[str, Tensor] = {}
    plain: dict[str, Any] = {}
    for idx, per_param in state["state"].items():
        for key, value in per_param.items():
            if isinstance(value, Tensor):
                tensors[f"optim.{idx}.{key}"] = value
            else:
                plain[f"{idx}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "plain": plain}


def unflatten_optimizer(tensors: dict[str, Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        _, idx, key = name.split(".", 2)
        state.setdefault(int(idx), {})[key] = value
    for name, value in meta.get("plain", {}).items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    groups = [dict(g, betas=tuple(g["betas"])) if "betas" in g else dict(g)
              for g in meta["param_groups"]]
    return {"state": state, "param_groups": groups}


def rng_states() -> dict[str, Tensor]:
    out = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            out[f"rng.cuda.{i}"] = s
    return out


def restore_rng(states: dict[str, Tensor]) -> None:
    if "rng.torch" in states:
        torch.set_rng_state(states["rng.torch"])
    cuda = [states[k] for k in sorted(states) if k.startswith("rng.cuda.")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)


def save_checkpoint(path: Path, *, model: dict[str, Tensor], ema: dict[str, Tensor],
                    optimizer: dict[str, Any], scalars: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    opt_tensors, opt_meta = flatten_optimizer(optimizer)
    tensors: dict[str, Tensor] = {}
    tensors.update({f"model.{k}": v for k, v in model.items()})
    tensors.update({f"ema.{k}": v for k, v in ema.items()})
    tensors.update(opt_tensors)
    tensors.update(rng_states())
    clean = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    meta = {"format": FORMAT, "train": json.dumps({**scalars, "optimizer": opt_meta})}
    try:
        with atomic_path(path) as tmp:
            save_file(clean, str(tmp), metadata=meta)
    except OSError as exc:  # disk full: the old checkpoint stays, the temp is gone
        raise UserError(f"cannot write checkpoint {path}: {exc.strerror or exc}") from None


def load_checkpoint(path: Path) -> Checkpoint:
    from safetensors import safe_open

    if not path.is_file():
        raise UserError(f"no checkpoint to resume from at {path}")
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 - not a dict
    except Exception as exc:  # damaged file: safetensors raises several types
        raise UserError(f"{path} is damaged ({exc})") from None
    if meta.get("format") != FORMAT:
        raise UserError(f"{path} is not a training checkpoint of this app")
    scalars = json.loads(meta["train"])
    opt_meta = scalars.pop("optimizer")

    def part(prefix: str) -> dict[str, Tensor]:
        return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}

    opt = unflatten_optimizer({k: v for k, v in tensors.items() if k.startswith("optim.")},
                              opt_meta)
    rng = {k: v for k, v in tensors.items() if k.startswith("rng.")}
    return Checkpoint(part("model."), part("ema."), opt, rng, scalars)
