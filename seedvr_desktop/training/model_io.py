"""The one place the training package touches the engine's model-folder loader.

The engine's `resolve_folder`/`load_model` live in a module that moves with engine restructures;
importing them only here keeps such a move to one edit. Also: a model fingerprint for the cache,
and the text embeddings a training run needs.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from seedvr_desktop.engine.seedvr.folder import (  # the single engine import of this package
    MODEL_JSON,
    LoadedModel,
    ModelSpec,
    load_embedding,
    load_model,
    resolve_folder,
)

log = logging.getLogger(__name__)

__all__ = [
    "MODEL_JSON",
    "LoadedModel",
    "ModelSpec",
    "TrainModel",
    "fingerprint",
    "folder_meta",
    "load_for_training",
    "load_model",
    "resolve_folder",
]

# Bytes hashed from the start and the end of each weight file: enough to tell two models apart
# without reading a 16 GB checkpoint (sizes and names are hashed too).
_HASH_BYTES = 1 << 20


@dataclass
class TrainModel:
    """A loaded model plus the embeddings training needs (neg for text dropout / CFG)."""

    loaded: LoadedModel
    pos_emb: Tensor  # (L_pos, txt_in_dim) float32
    neg_emb: Tensor  # (L_neg, txt_in_dim) float32; the positive one when the folder has none
    fingerprint: str

    @property
    def spec(self) -> ModelSpec:
        return self.loaded.spec


def fingerprint(spec: ModelSpec) -> str:
    """A short hash naming the DiT/VAE architecture and weight files (cache compatibility)."""
    h = hashlib.sha256()
    h.update(json.dumps(spec.dit_config.to_official(), sort_keys=True, default=str).encode())
    h.update(repr(spec.vae_config).encode())
    for path in (spec.dit_path, spec.vae_path):
        size = path.stat().st_size
        h.update(f"{path.name}:{size}".encode())
        with path.open("rb") as fh:
            h.update(fh.read(_HASH_BYTES))
            if size > 2 * _HASH_BYTES:
                fh.seek(size - _HASH_BYTES)
                h.update(fh.read(_HASH_BYTES))
    return h.hexdigest()[:16]


def folder_meta(folder: Path) -> dict[str, Any]:
    """The folder's `seedvr.json` as a dict ({} when absent or unreadable; resolve checks it)."""
    path = folder / MODEL_JSON
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def load_for_training(folder: Path | str, *, device: torch.device) -> TrainModel:
    """Load DiT, VAE (float32 master weights) and both text embeddings."""
    spec = resolve_folder(folder)
    loaded = load_model(spec, device=device, dtype=torch.float32)
    pos = loaded.pos_emb.float()
    if loaded.neg_emb is not None:
        neg = loaded.neg_emb.float()
    elif spec.neg_path is not None:
        neg = load_embedding(spec.neg_path, spec.dit_config.txt_in_dim)
    else:
        log.warning("%s has no neg_emb.pt: text dropout uses the positive embedding", folder)
        neg = pos
    return TrainModel(loaded, pos, neg, fingerprint(spec))
