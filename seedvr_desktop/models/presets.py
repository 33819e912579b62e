"""The released SeedVR / SeedVR2 models: architecture, checkpoint files and sampling settings.

Two DiT families exist (architecture doc §1): "v2" (`models.dit_v2`, 3B: SeedVR2-3B, SeedVR-3B)
and "v1" (`models.dit`, 7B: SeedVR2-7B, SeedVR2-7B-sharp, SeedVR-7B). SeedVR and SeedVR2 of one
size share the architecture; only the weights and the sampling settings differ (doc §7):
SeedVR2 is one step without guidance, SeedVR 50 steps with cfg 6.5 and condition noise 0.1.
All five use the same VAE file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, TypedDict

from seedvr_desktop.errors import UserError
from seedvr_desktop.models.dit.config import DiTConfig

log = logging.getLogger(__name__)

VAE_CHECKPOINT = "ema_vae.pth"

# Keywords shared by both sizes (per-layer lists are expanded below).
_COMMON: dict[str, Any] = {
    "vid_in_channels": 33,
    "vid_out_channels": 16,
    "txt_in_dim": 5120,
    "heads": None,  # per size below
    "head_dim": 128,
    "expand_ratio": 4,
    "norm": "fusedrms",
    "norm_eps": 1e-5,
    "ada": "single",
    "qk_bias": False,
    "qk_norm": "fusedrms",
    "patch_size": [1, 2, 2],
    "block_type": "mmdit_sr",
    "window": [(4, 3, 3)],
    "window_method": ["720pwin_by_size_bysize", "720pswin_by_size_bysize"],
}

_DIT_3B_BASE: dict[str, Any] = {
    **_COMMON,
    "vid_dim": 2560,
    "txt_dim": 2560,
    "emb_dim": 6 * 2560,
    "heads": 20,
    "num_layers": 32,
    "mm_layers": 10,
    "mlp_type": "swiglu",
    "msa_type": "None",
    "rope_type": "mmrope3d",
    "rope_dim": 128,
    "vid_out_norm": "fusedrms",
    "txt_in_norm": "fusedln",
}

_DIT_7B_BASE: dict[str, Any] = {
    **_COMMON,
    "vid_dim": 3072,
    "txt_dim": 3072,
    "emb_dim": 6 * 3072,
    "heads": 24,
    "num_layers": 36,
    "qk_rope": True,
    "shared_mlp": False,
    "shared_qkv": False,
    "mlp_type": "normal",
}


def _per_layer_lists(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Per-layer lists as the yaml spells them: same window everywhere, methods alternating."""
    n = kwargs["num_layers"]
    out = dict(kwargs)
    out["window"] = [(4, 3, 3)] * n
    out["window_method"] = [kwargs["window_method"][i % 2] for i in range(n)]
    out["block_type"] = ["mmdit_sr"] * n
    return out


# The `dit.model` sections of configs_3b/main.yaml and configs_7b/main.yaml, as keywords.
DIT_3B_KWARGS: dict[str, Any] = _per_layer_lists(_DIT_3B_BASE)
DIT_7B_KWARGS: dict[str, Any] = _per_layer_lists(_DIT_7B_BASE)


def dit_config_3b() -> DiTConfig:
    return DiTConfig.from_official(DIT_3B_KWARGS, family="v2")


def dit_config_7b() -> DiTConfig:
    return DiTConfig.from_official(DIT_7B_KWARGS, family="v1")


def default_vae_config() -> Any:
    """The VAE config object when the VAE package provides one, else its official keywords."""
    try:
        from seedvr_desktop.models.vae.config import VAEConfig
    except ImportError:  # VAE package not available: keep the description as data
        return dict(VAE_KWARGS)
    return VAEConfig()


# Official keywords of models/video_vae_v3/s8_c16_t4_inflation_sd3.yaml (doc §1.2).
VAE_KWARGS: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 16,
    "block_out_channels": [128, 256, 512, 512],
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "temporal_scale_num": 2,
    "use_quant_conv": False,
    "use_post_quant_conv": False,
    "inflation_mode": "pad",
    "slicing_sample_min_size": 4,
}


@dataclass(frozen=True)
class ModelPreset:
    """One downloadable model: what to build, which files to load, how to sample it."""

    name: str  # "seedvr2-3b", ...
    title: str  # for people
    family: str  # DiT family: "v2" (3B code) or "v1" (7B code)
    generation: int  # 2 = SeedVR2 (one-step), 1 = SeedVR (multi-step)
    dit: DiTConfig
    checkpoint: str  # official DiT file name
    steps: int
    cfg_scale: float
    cond_noise_scale: float
    vae_checkpoint: str = VAE_CHECKPOINT
    vae: Any = field(default=None, compare=False)  # VAEConfig, or a dict of official keywords
    note: str = ""

    @property
    def guided(self) -> bool:
        """Classifier-free guidance doubles the DiT calls; off when the scale is exactly 1."""
        return self.cfg_scale != 1.0

    @property
    def dit_calls(self) -> int:
        return self.steps * (2 if self.guided else 1)


class _Sampling(TypedDict):
    """The sampling fields of a `ModelPreset`, shared by the models of one generation."""

    steps: int
    cfg_scale: float
    cond_noise_scale: float


def _make() -> dict[str, ModelPreset]:
    c3, c7 = dit_config_3b(), dit_config_7b()
    vae = default_vae_config()
    v2: _Sampling = {"steps": 1, "cfg_scale": 1.0, "cond_noise_scale": 0.0}
    v1: _Sampling = {"steps": 50, "cfg_scale": 6.5, "cond_noise_scale": 0.1}
    items = [
        ModelPreset("seedvr2-3b", "SeedVR2 3B (one step)", "v2", 2, c3,
                    "seedvr2_ema_3b.pth", vae=vae, **v2),
        ModelPreset("seedvr2-7b", "SeedVR2 7B (one step)", "v1", 2, c7,
                    "seedvr2_ema_7b.pth", vae=vae, **v2),
        ModelPreset("seedvr2-7b-sharp", "SeedVR2 7B sharp (one step)", "v1", 2, c7,
                    "seedvr2_ema_7b_sharp.pth", vae=vae,
                    note="same layout as SeedVR2-7B; not used by any official script", **v2),
        ModelPreset("seedvr-3b", "SeedVR 3B (50 steps)", "v2", 1, c3,
                    "seedvr_ema_3b.pth", vae=vae, **v1),
        ModelPreset("seedvr-7b", "SeedVR 7B (50 steps)", "v1", 1, c7,
                    "seedvr_ema_7b.pth", vae=vae, **v1),
    ]
    return {p.name: p for p in items}


PRESETS: dict[str, ModelPreset] = _make()


def get_preset(name: str) -> ModelPreset:
    """The preset called `name` (case-insensitive); UserError listing the choices otherwise."""
    key = name.strip().lower()
    if key not in PRESETS:
        raise UserError(f"unknown model {name!r}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[key]


def preset_names() -> list[str]:
    return list(PRESETS)
