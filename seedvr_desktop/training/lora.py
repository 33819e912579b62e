"""LoRA adapters on the DiT's attention and MLP projections: train with peft, ship as a file.

Training injects peft `LoraLayer`s (base weights frozen). The adapter file is our own small
safetensors layout, `{module}.lora_A` (r, in) and `{module}.lora_B` (out, r) with the rank and
alpha in its metadata, so the restore engine can apply one without peft: `apply_lora_file`
merges W += (alpha / r) · B @ A into a plain, loaded DiT.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from seedvr_desktop.errors import ModelError

ADAPTER_FORMAT = "seedvr-desktop-lora/1"
_TARGET = re.compile(r"^blocks\.\d+\.(attn|mlp)\.")
_PEFT_A = ".lora_A.default.weight"
_PEFT_B = ".lora_B.default.weight"


def lora_targets(dit: nn.Module) -> list[str]:
    """Names of the attention (qkv, out) and MLP linear projections of every block."""
    return [name for name, m in dit.named_modules()
            if isinstance(m, nn.Linear) and _TARGET.match(name)]


def add_lora(dit: nn.Module, rank: int, alpha: float = 0.0) -> list[str]:
    """Inject rank-`rank` adapters in place; only they stay trainable. Returns the targets."""
    from peft import LoraConfig, inject_adapter_in_model

    targets = lora_targets(dit)
    if not targets:
        raise ModelError("this DiT has no attention/MLP projections to adapt")
    config = LoraConfig(r=rank, lora_alpha=alpha or rank,  # type: ignore[arg-type]
                        target_modules=targets, lora_dropout=0.0, bias="none")
    inject_adapter_in_model(config, dit)
    for name, p in dit.named_parameters():
        p.requires_grad_(".lora_" in name)
    return targets


def adapter_tensors(named: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """peft parameter names -> adapter-file keys (`{module}.lora_A` / `.lora_B`)."""
    out: dict[str, Tensor] = {}
    for name, t in named.items():
        if name.endswith(_PEFT_A):
            out[name[: -len(_PEFT_A)] + ".lora_A"] = t
        elif name.endswith(_PEFT_B):
            out[name[: -len(_PEFT_B)] + ".lora_B"] = t
    return out


def save_adapter(path: Path, tensors: Mapping[str, Tensor], rank: int, alpha: float) -> Path:
    from seedvr_desktop.models.loading import save_safetensors

    meta = {"format": ADAPTER_FORMAT, "rank": str(rank), "alpha": str(alpha or rank)}
    return save_safetensors({k: v.float() for k, v in tensors.items()}, path, metadata=meta)


def read_adapter(path: Path) -> tuple[dict[str, Tensor], float]:
    """(adapter tensors, scale alpha / rank) of an adapter file; ModelError when it is not one."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 - not a dict
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise ModelError(f"{Path(path).name} is not a LoRA adapter file ({exc})") from None
    if meta.get("format") != ADAPTER_FORMAT:
        raise ModelError(f"{Path(path).name} is not a SeedVR Desktop LoRA adapter "
                         f"(metadata {json.dumps(meta)[:80]})")
    rank, alpha = int(meta["rank"]), float(meta["alpha"])
    return tensors, alpha / rank


def merge_into(state: dict[str, Tensor], adapter: Mapping[str, Tensor], scale: float) -> None:
    """W += scale · B @ A for each adapted module of a plain state dict (in place)."""
    modules = sorted({k.rsplit(".", 1)[0] for k in adapter})
    for module in modules:
        key = f"{module}.weight"
        a, b = adapter.get(f"{module}.lora_A"), adapter.get(f"{module}.lora_B")
        if key not in state or a is None or b is None:
            raise ModelError(f"the LoRA adapter does not fit this DiT (no {key})")
        w = state[key]
        if tuple(w.shape) != (b.shape[0], a.shape[1]):
            raise ModelError(f"the LoRA adapter does not fit this DiT ({key} is "
                             f"{list(w.shape)}, the adapter {[b.shape[0], a.shape[1]]})")
        delta = (b.float() @ a.float()) * scale
        state[key] = (w.float() + delta.to(w.device)).to(w.dtype)


def base_state(dit: nn.Module) -> dict[str, Tensor]:
    """The plain (un-adapted) state dict of a DiT that may hold peft layers."""
    return {k.replace(".base_layer.", "."): v for k, v in dit.state_dict().items()
            if ".lora_" not in k}


@torch.no_grad()
def apply_lora_file(dit: nn.Module, path: Path | str, strength: float = 1.0) -> nn.Module:
    """Merge an adapter file into a loaded plain DiT (for `restore --lora FILE`); returns it."""
    adapter, scale = read_adapter(Path(path))
    params = dict(dit.named_parameters())
    state = {k: params[k].data for k in {f"{m.rsplit('.', 1)[0]}.weight" for m in adapter}
             if k in params}
    wanted = dict(state)
    merge_into(wanted, adapter, scale * strength)
    for key, value in wanted.items():
        params[key].data.copy_(value)
    return dit
