"""`train export`: a checkpoint -> a model folder the restore engine loads like a download.

    OUT/dit.safetensors    EMA weights (LoRA: the base model, or merged with --merge-lora)
    OUT/lora.safetensors   the EMA adapter, when a LoRA run is not merged
    OUT/vae.safetensors, pos_emb.safetensors, neg_emb.safetensors
    OUT/seedvr.json        family, sampling recipe and the DiT/VAE configs by name
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from seedvr_desktop.errors import UserError
from seedvr_desktop.fsutil import (
    atomic_write_text,
    fsync_folder,
    remove_stale_temps,
    sibling_name,
)
from seedvr_desktop.models.loading import read_state_dict, save_safetensors
from seedvr_desktop.training.checkpoint import CHECKPOINT, Checkpoint, load_checkpoint
from seedvr_desktop.training.lora import adapter_tensors, merge_into, save_adapter
from seedvr_desktop.training.model_io import MODEL_JSON, ModelSpec, folder_meta, resolve_folder

log = logging.getLogger(__name__)


def export(run_dir: Path, out: Path, *, model_dir: Path | None = None,
           merge_lora: bool = False, use_ema: bool = True) -> Path:
    ck = load_checkpoint(Path(run_dir) / CHECKPOINT)
    src = Path(model_dir or ck.scalars.get("model_dir", ""))
    if not src.is_dir():
        raise UserError(f"the base model folder {src} is gone; pass --model-dir")
    spec = resolve_folder(src)
    trained = ck.ema if use_ema else ck.model
    rank = int(ck.scalars.get("lora_rank", 0))
    final = Path(out)
    if final.exists() and (not final.is_dir() or any(final.iterdir())):
        raise UserError(f"{final} is not empty; export into a new folder")
    # Everything goes to a hidden sibling first and is renamed into place at the end, so a
    # full disk or a crash never leaves a folder the engine would take for a model. One that a
    # killed export left (gigabytes) goes now.
    for stale in remove_stale_temps(final, ("export",), folders=True):
        log.info("removed %s, left by an export that was stopped", stale.name)
    out = sibling_name(final, "export")
    try:
        out.mkdir(parents=True)
        _write_folder(out, ck, spec, src, trained, rank, merge_lora, use_ema)
        if final.exists():
            final.rmdir()
        os.replace(out, final)
        fsync_folder(final.parent)
    except OSError as exc:
        raise UserError(f"cannot write {final}: {exc.strerror or exc}") from None
    finally:
        if out.exists():
            shutil.rmtree(out, ignore_errors=True)
    return final


def _write_folder(out: Path, ck: Checkpoint, spec: ModelSpec, src: Path,
                  trained: dict[str, torch.Tensor], rank: int, merge_lora: bool,
                  use_ema: bool) -> None:
    dit = {k: v.float() for k, v in read_state_dict(spec.dit_path).items()}
    files: dict[str, Any] = {}
    if rank:
        adapter = adapter_tensors(trained)
        scale = float(ck.scalars.get("lora_alpha", rank)) / rank
        if merge_lora:
            merge_into(dit, adapter, scale)
        else:
            save_adapter(out / "lora.safetensors", adapter, rank, scale * rank)
            files["lora_file"] = "lora.safetensors"
    else:
        unknown = set(trained) - set(dit)
        if unknown:
            raise UserError(f"the checkpoint does not fit {src} ({sorted(unknown)[0]})")
        dit.update({k: v.float() for k, v in trained.items()})
    save_safetensors(dit, out / "dit.safetensors")
    save_safetensors(read_state_dict(spec.vae_path), out / "vae.safetensors")
    _save_embedding(spec.pos_path, out / "pos_emb.safetensors")
    if spec.neg_path is not None:
        _save_embedding(spec.neg_path, out / "neg_emb.safetensors")
    src_meta = folder_meta(src)
    meta: dict[str, Any] = {
        "name": f"{spec.name}-finetuned", "family": spec.recipe.family,
        "steps": spec.recipe.steps, "cfg_scale": spec.recipe.cfg_scale,
        "cond_noise_scale": spec.recipe.cond_noise_scale,
        "dit": spec.dit_config.to_official(), "dit_file": "dit.safetensors",
        "vae_file": "vae.safetensors", "scaling_factor": spec.vae_config.scaling_factor,
        "trained_from": {"folder": str(src), "model": ck.scalars.get("model"),
                         "steps": ck.scalars.get("step"), "ema": use_ema}, **files}
    if "vae" in src_meta:
        meta["vae"] = src_meta["vae"]
    atomic_write_text(out / MODEL_JSON, json.dumps(meta, indent=1, default=list))
    resolve_folder(out)  # the engine must accept what we wrote


def _save_embedding(src: Path, dst: Path) -> None:
    """Keep the publisher's embedding values and dtype, in safetensors (no pickle)."""
    save_safetensors({"emb": _read_embedding(src)}, dst)


def _read_embedding(path: Path) -> torch.Tensor:
    if path.suffix == ".safetensors":
        tensors = list(read_state_dict(path).values())
        return tensors[0]
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(obj, dict) and len(obj) == 1:
        obj = next(iter(obj.values()))
    if not isinstance(obj, torch.Tensor):
        raise UserError(f"{path.name} does not hold a tensor")
    return obj
