"""A SeedVR model folder: find its files, read its `seedvr.json`, load DiT, VAE and embeddings.

A folder holds the publisher's files (`seedvr2_ema_3b.pth` or another `seedvr*_ema_*.pth`,
`ema_vae.pth`, `pos_emb.pt`, `neg_emb.pt`) or our safetensors form of them (`dit.safetensors`,
`vae.safetensors`), plus an optional `seedvr.json`:

    {"preset": "seedvr2-3b",          base architecture + recipe (else guessed from the file name)
     "family": "v2",                  how to run it: "v2" (or "seedvr2") = SeedVR2, one step
                                      without guidance; "v1" (or "seedvr") = SeedVR, multi-step
     "steps": 1, "cfg_scale": 1.0, "cond_noise_scale": 0.0,
     "dit": {...}, "vae": {...},      official constructor keyword overrides (names of main.yaml)
     "dit_file": "...", "vae_file": "...", "scaling_factor": 0.9152}

so smaller or derived models (the tests' tiny random models among them) load with no code change.

A ComfyUI `models/SEEDVR2` folder works as is: it may hold several variants of each model
(`seedvr2_ema_3b_fp16.safetensors`, `..._fp8_e4m3fn.safetensors`, `seedvr2_ema_3b-Q4_K_M.gguf`,
`ema_vae_fp16.safetensors`); the preset picks the model's files, `variant` the format (default:
the most precise present), and text embeddings missing there come from an installed model.
Resolving a folder reads no tensors; `load_model` does the heavy work and turns every problem a
user can cause (missing file, damaged file, file of the wrong model) into one-line ModelErrors.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from seedvr_desktop.errors import ModelError
from seedvr_desktop.models.dit.config import DiTConfig
from seedvr_desktop.models.loading import WeightInfo, weight_file_info
from seedvr_desktop.models.vae.config import VAEConfig

log = logging.getLogger(__name__)

MODEL_JSON = "seedvr.json"
DIT_PATTERNS = ("seedvr2_ema_*.pth", "seedvr_ema_*.pth", "seedvr*.safetensors", "seedvr*.gguf",
                "dit.safetensors", "dit.pth", "dit*.safetensors", "dit*.gguf")
VAE_NAMES = ("ema_vae.pth", "ema_vae.safetensors", "ema_vae_fp16.safetensors", "vae.safetensors",
             "vae.pth", "ema_vae*.safetensors")
# When a folder holds several variants of one model (a ComfyUI `models/SEEDVR2` folder holds
# fp16, fp8 and GGUF files side by side), the most precise one wins unless one is asked for.
_VARIANT_ORDER = ("fp32", ".pth", "fp16", "bf16", "fp8_e4m3fn", "fp8_e5m2", "q8_0", "q6_k",
                  "q5_k", "q4_k", "q3_k", "q2_k")
EMB_NAMES = {"pos": ("pos_emb.pt", "pos_emb.safetensors"),
             "neg": ("neg_emb.pt", "neg_emb.safetensors")}
# Per-layer keys that must be dropped from a base config when an override changes the depth.
_PER_LAYER = ("block_type", "window", "window_method")


@dataclass(frozen=True)
class Recipe:
    """How a model samples (architecture docs §7): the only SeedVR vs SeedVR2 differences."""

    family: str  # "v2" SeedVR2 | "v1" SeedVR
    steps: int
    cfg_scale: float
    cond_noise_scale: float
    cfg_rescale: float = 0.0

    @property
    def label(self) -> str:
        return "SeedVR2" if self.family == "v2" else "SeedVR"


RECIPES = {
    "v2": Recipe("v2", steps=1, cfg_scale=1.0, cond_noise_scale=0.0),
    "v1": Recipe("v1", steps=50, cfg_scale=6.5, cond_noise_scale=0.1),
}
_FAMILY_ALIASES = {"v2": "v2", "seedvr2": "v2", "v1": "v1", "seedvr": "v1"}


@dataclass(frozen=True)
class ModelSpec:
    """Everything known about a model folder before any weight is read."""

    folder: Path
    name: str
    dit_path: Path
    vae_path: Path
    pos_path: Path
    neg_path: Path | None
    dit_config: DiTConfig
    vae_config: VAEConfig
    recipe: Recipe
    # What the DiT file stores (format, header sizes); None when not read (e.g. a test spec).
    dit_weights: WeightInfo | None = None

    @property
    def needs_negative(self) -> bool:
        return self.recipe.cfg_scale != 1.0

    @property
    def dit_format(self) -> str:
        return self.dit_weights.format if self.dit_weights is not None else "unknown"

    def dit_bytes_per_param(self, compute_itemsize: int) -> float:
        """Device bytes per DiT parameter for the memory planner: the stored size of weights
        that stay quantised (fp8 ~1, Q8_0 ~1.06, Q4_K ~0.56) and `compute_itemsize` for the
        rest. Multiply by the parameter count for the DiT's resident bytes."""
        if self.dit_weights is None:
            return float(compute_itemsize)
        return self.dit_weights.bytes_per_param(compute_itemsize)


@dataclass
class LoadedModel:
    """Weights in memory. The DiT may live on the CPU while the VAE works (offload)."""

    spec: ModelSpec
    dit: Any  # models.dit.model.NaDiT
    vae: Any  # models.vae.model.VideoVAE
    pos_emb: Tensor  # (L_pos, txt_in_dim)
    neg_emb: Tensor | None  # (L_neg, txt_in_dim), only for guided sampling


# ------------------------------------------------------------------------------ presets
def _preset(name: str) -> tuple[DiTConfig, Recipe, str] | None:
    """(DiT config, recipe, checkpoint name) of a named official model, or None."""
    from seedvr_desktop.errors import UserError
    from seedvr_desktop.models import presets

    try:
        p = presets.get_preset(name)
    except (UserError, KeyError, ValueError):
        return None
    recipe = Recipe("v2" if p.generation == 2 else "v1", steps=p.steps, cfg_scale=p.cfg_scale,
                    cond_noise_scale=p.cond_noise_scale)
    return p.dit, recipe, p.checkpoint


def _guess_preset_name(dit_file: str) -> str | None:
    """`seedvr2_ema_7b_sharp.pth` -> "seedvr2-7b-sharp"; None when the name says nothing."""
    m = re.match(r"(seedvr2?)_ema_(3b|7b)(_sharp)?", dit_file.lower())
    if not m:
        return None
    return f"{m.group(1)}-{m.group(2)}" + ("-sharp" if m.group(3) else "")


# ------------------------------------------------------------------------------ resolving
def resolve_folder(folder: Path | str, preset: str | None = None,
                   variant: str | None = None) -> ModelSpec:
    """Describe a model folder (files, architecture, recipe) without reading any weights.

    `variant` (e.g. "fp8_e4m3fn", "Q8_0", "Q4_K_M") picks among several DiT files of the model;
    by default the most precise one present is used.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise ModelError(f"model folder not found: {folder}")
    meta = _read_json(folder)
    dit_path = (_pick_file(folder, meta.get("dit_file"), DIT_PATTERNS, "DiT checkpoint",
                           "e.g. seedvr2_ema_3b.pth") if meta.get("dit_file")
                else _pick_dit(folder, meta.get("preset") or preset, variant))
    vae_path = _pick_file(folder, meta.get("vae_file"), VAE_NAMES, "VAE checkpoint", "ema_vae.pth")
    emb_dir = folder if meta.get("pos_file") or _first_existing(folder, EMB_NAMES["pos"]) \
        else _embedding_fallback(folder)
    pos_path = _pick_file(emb_dir, meta.get("pos_file"), EMB_NAMES["pos"], "text embedding",
                          "pos_emb.pt")
    neg_path = _first_existing(emb_dir, EMB_NAMES["neg"])

    base_name = meta.get("preset") or preset or _guess_preset_name(dit_path.name)
    base = _preset(base_name) if base_name else None
    if meta.get("preset") and base is None:
        raise ModelError(f"{folder / MODEL_JSON}: unknown preset {meta['preset']!r}")
    dit_cfg = _dit_config(base[0] if base else None, meta.get("dit"), folder)
    recipe = _recipe(base[1] if base else None, meta, folder)
    vae_cfg = _vae_config(meta, folder)
    if dit_cfg.txt_in_dim <= 0:
        raise ModelError(f"{folder}: the DiT config has no text input")
    spec = ModelSpec(folder, meta.get("name") or base_name or folder.name, dit_path, vae_path,
                     pos_path, neg_path, dit_cfg, vae_cfg, recipe, _file_info(dit_path))
    if spec.needs_negative and neg_path is None:
        raise ModelError(
            f"{folder} has no neg_emb.pt, which guided sampling (cfg_scale "
            f"{recipe.cfg_scale}) needs; copy it from the official release"
        )
    return spec


def _embedding_fallback(folder: Path) -> Path:
    """Where to find pos_emb.pt when the folder has none: a ComfyUI `models/SEEDVR2` folder keeps
    only weights (the node ships the embeddings itself), so use those of an installed model."""
    from seedvr_desktop.settings import load_settings

    try:
        root = load_settings().resolved_models_dir()
    except Exception:  # settings unreadable: report the folder's own missing file
        return folder
    for candidate in sorted(root.glob("*/")) if root.is_dir() else []:
        if _first_existing(candidate, EMB_NAMES["pos"]) is not None:
            log.info("%s has no pos_emb.pt; using the one in %s", folder, candidate)
            return candidate
    return folder


def _read_json(folder: Path) -> dict[str, Any]:
    path = folder / MODEL_JSON
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path} is not valid JSON ({exc})") from exc
    if not isinstance(meta, dict):
        raise ModelError(f"{path} must hold a JSON object")
    return meta


def _first_existing(folder: Path, patterns: tuple[str, ...]) -> Path | None:
    for pattern in patterns:
        hits = sorted(p for p in folder.glob(pattern) if p.is_file())
        if hits:
            return hits[0]
    return None


def dit_candidates(folder: Path) -> list[Path]:
    """Every DiT weight file in a folder (any format), sorted by name."""
    found = {p for pattern in DIT_PATTERNS for p in folder.glob(pattern) if p.is_file()}
    return sorted(found)


def _variant_rank(path: Path) -> int:
    name = path.name.lower()
    for i, tag in enumerate(_VARIANT_ORDER):
        if tag in name:
            return i
    return 1  # no tag: an official or converted full-precision file


def _pick_dit(folder: Path, preset: str | None, variant: str | None) -> Path:
    files = dit_candidates(folder)
    if not files:
        raise ModelError(f"no DiT checkpoint in {folder} (expected e.g. seedvr2_ema_3b.pth)")
    if preset:
        matching = [p for p in files if _guess_preset_name(p.name) == preset]
        files = matching or files
    if variant:
        wanted = [p for p in files if variant.lower() in p.name.lower()]
        if not wanted:
            raise ModelError(f"no {variant} file of {preset or 'the model'} in {folder} "
                             f"(found: {', '.join(p.name for p in files)})")
        files = wanted
    return min(files, key=lambda p: (_variant_rank(p), p.name))


def _file_info(path: Path) -> WeightInfo | None:
    try:
        return weight_file_info(path)
    except (OSError, ValueError, ModelError) as exc:  # a damaged header fails at load, clearly
        log.debug("cannot read the header of %s: %s", path, exc)
        return None


def _pick_file(folder: Path, named: str | None, patterns: tuple[str, ...], what: str,
               example: str) -> Path:
    if named:
        path = folder / named
        if not path.is_file():
            raise ModelError(f"{folder / MODEL_JSON} names {named!r} but {path} does not exist")
        return path
    found = _first_existing(folder, patterns)
    if found is None:
        raise ModelError(f"no {what} in {folder} (expected {example})")
    return found


def _dit_config(base: DiTConfig | None, overrides: Mapping[str, Any] | None,
                folder: Path) -> DiTConfig:
    if base is None and not overrides:
        raise ModelError(
            f"cannot tell which model {folder} holds: name the checkpoint like the official "
            f"files (seedvr2_ema_3b.pth ...) or add a {MODEL_JSON} with a 'preset' or 'dit' entry"
        )
    kw: dict[str, Any] = base.to_official() if base is not None else {}
    family = base.family if base is not None else None
    over = dict(overrides or {})
    if "num_layers" in over:
        for key in _PER_LAYER:
            if key not in over:
                kw.pop(key, None)
    kw.update(over)
    if "__object__" in over:
        family = None  # let the official class path decide
    try:
        return DiTConfig.from_official(kw, family=family)
    except (ValueError, TypeError) as exc:
        raise ModelError(f"{folder / MODEL_JSON}: invalid 'dit' settings ({exc})") from exc


def _vae_config(meta: Mapping[str, Any], folder: Path) -> VAEConfig:
    scaling = float(meta.get("scaling_factor", 0.9152))
    shifting = float(meta.get("shifting_factor", 0.0))
    try:
        return VAEConfig.from_official(meta.get("vae") or {}, scaling_factor=scaling,
                                       shifting_factor=shifting)
    except (ValueError, TypeError) as exc:
        raise ModelError(f"{folder / MODEL_JSON}: invalid 'vae' settings ({exc})") from exc


def _recipe(base: Recipe | None, meta: Mapping[str, Any], folder: Path) -> Recipe:
    fam = meta.get("family")
    if fam is not None:
        key = _FAMILY_ALIASES.get(str(fam).lower())
        if key is None:
            raise ModelError(f"{folder / MODEL_JSON}: family must be 'v1' (SeedVR) or 'v2' "
                             f"(SeedVR2), got {fam!r}")
        recipe = RECIPES[key]
    else:
        recipe = base or RECIPES["v2"]
    try:
        changes = {k: type(getattr(recipe, k))(meta[k])
                   for k in ("steps", "cfg_scale", "cond_noise_scale", "cfg_rescale") if k in meta}
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{folder / MODEL_JSON}: bad sampling setting ({exc})") from exc
    recipe = replace(recipe, **changes)
    if recipe.steps < 1:
        raise ModelError(f"{folder / MODEL_JSON}: steps must be at least 1")
    return recipe


# ------------------------------------------------------------------------------ loading
def load_embedding(path: Path, txt_in_dim: int) -> Tensor:
    """A (L, txt_in_dim) text embedding from a tensor file (never unpickles objects)."""
    from seedvr_desktop.models.loading import read_state_dict

    if path.suffix == ".safetensors":
        tensors = list(read_state_dict(path).values())
        obj: Any = tensors[0] if len(tensors) == 1 else None
    else:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for damaged files
            raise ModelError(f"{path.name} is damaged or not a tensor file ({exc})") from exc
        if isinstance(obj, Mapping) and len(obj) == 1:
            obj = next(iter(obj.values()))
    if not isinstance(obj, Tensor) or not obj.is_floating_point():
        raise ModelError(f"{path.name} does not hold a text embedding tensor")
    emb = obj.reshape(-1, obj.shape[-1]) if obj.dim() == 3 and obj.shape[0] == 1 else obj
    if emb.dim() != 2 or emb.shape[1] != txt_in_dim or emb.shape[0] < 1:
        raise ModelError(
            f"{path.name} has shape {list(obj.shape)} but the DiT expects (length, {txt_in_dim})"
        )
    return emb.float().contiguous()


def load_model(spec: ModelSpec, *, device: torch.device, dtype: torch.dtype,
               dit_device: torch.device | None = None) -> LoadedModel:
    """Read and check all weights; the DiT goes to `dit_device` (the CPU when offloading).

    Every allocation failure on the device comes out as `torch.OutOfMemoryError`, including
    the cuBLAS/cuDNN workspace failures that arrive as plain RuntimeErrors (`oom.py`), so the
    caller's "keep the DiT in CPU memory" fallback treats them alike, as the chunk path does.
    """
    from seedvr_desktop.engine import device as dev
    from seedvr_desktop.engine.seedvr.oom import is_out_of_memory

    try:
        return _load_model(spec, device=device, dtype=dtype, dit_device=dit_device)
    except RuntimeError as exc:
        if dev.is_out_of_memory(exc) or not is_out_of_memory(exc):
            raise
        oom = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
        raise oom(f"{exc} (while loading {spec.name})") from exc


def _load_model(spec: ModelSpec, *, device: torch.device, dtype: torch.dtype,
                dit_device: torch.device | None) -> LoadedModel:
    from seedvr_desktop.models.loading import load_dit
    from seedvr_desktop.models.vae.loading import load_vae

    pos = load_embedding(spec.pos_path, spec.dit_config.txt_in_dim)
    neg = None
    if spec.neg_path is not None and spec.needs_negative:
        neg = load_embedding(spec.neg_path, spec.dit_config.txt_in_dim)
    log.info("loading %s (%s) from %s", spec.name, spec.dit_config.describe(), spec.folder)
    from seedvr_desktop.engine.device import attention_rounding

    dit = load_dit(spec.dit_path, spec.dit_config, dtype=dtype, device=dit_device or device)
    dit.set_attention_rounding(attention_rounding(device))
    vae = load_vae(spec.vae_path, spec.vae_config, dtype=dtype, device=device)
    return LoadedModel(spec, dit, vae, pos, neg)
