"""Tiny random-weight SeedVR models written in the official on-disk format, for engine tests.

The folder looks like a real download: a DiT state dict saved with `torch.save` under the
official file name, `ema_vae.pth`, bf16 `pos_emb.pt`/`neg_emb.pt`, plus a `seedvr.json` whose
`dit`/`vae` entries are official constructor keywords with tiny sizes (same key names as
main.yaml), so the engine loads it through exactly the code path of the real models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

# Official DiT keywords (configs_3b/main.yaml names) at a tiny size: one head of 128 channels
# (head_dim and rope_dim must stay 128), two layers of which the first is unshared.
TINY_DIT_V2: dict[str, Any] = {
    "__object__": {"path": "models.dit_v2.nadit", "name": "NaDiT", "args": "as_params"},
    "vid_in_channels": 33, "vid_out_channels": 16, "vid_dim": 128, "vid_out_norm": "fusedrms",
    "txt_in_dim": 32, "txt_in_norm": "fusedln", "txt_dim": 128, "emb_dim": 768, "heads": 1,
    "head_dim": 128, "expand_ratio": 4, "norm": "fusedrms", "norm_eps": 1e-05, "ada": "single",
    "qk_bias": False, "qk_norm": "fusedrms", "patch_size": [1, 2, 2], "num_layers": 2,
    "mm_layers": 1, "mlp_type": "swiglu", "msa_type": "None",
    "block_type": ["mmdit_sr", "mmdit_sr"], "window": [[4, 3, 3], [4, 3, 3]],
    "window_method": ["720pwin_by_size_bysize", "720pswin_by_size_bysize"],
    "rope_type": "mmrope3d", "rope_dim": 128,
}
TINY_DIT_V1: dict[str, Any] = {
    "__object__": {"path": "models.dit.nadit", "name": "NaDiT", "args": "as_params"},
    "vid_in_channels": 33, "vid_out_channels": 16, "vid_dim": 128, "txt_in_dim": 32,
    "txt_dim": 128, "emb_dim": 768, "heads": 1, "head_dim": 128, "expand_ratio": 4,
    "norm": "fusedrms", "norm_eps": 1e-05, "ada": "single", "qk_bias": False, "qk_rope": True,
    "qk_norm": "fusedrms", "patch_size": [1, 2, 2], "num_layers": 2, "shared_mlp": False,
    "shared_qkv": False, "mlp_type": "normal", "block_type": ["mmdit_sr", "mmdit_sr"],
    "window": [[4, 3, 3], [4, 3, 3]],
    "window_method": ["720pwin_by_size_bysize", "720pswin_by_size_bysize"],
}
# Official VAE keywords (s8_c16_t4_inflation_sd3.yaml names) at a tiny width.
TINY_VAE: dict[str, Any] = {
    "__object__": {"path": "models.video_vae_v3.modules.attn_video_vae",
                   "name": "VideoAutoencoderKLWrapper", "args": "as_params"},
    "act_fn": "silu", "block_out_channels": [8, 8, 16, 16],
    "down_block_types": ["DownEncoderBlock3D"] * 4, "in_channels": 3, "latent_channels": 16,
    "layers_per_block": 1, "norm_num_groups": 4, "out_channels": 3,
    "slicing_sample_min_size": 4, "temporal_scale_num": 2, "inflation_mode": "pad",
    "up_block_types": ["UpDecoderBlock3D"] * 4, "spatial_downsample_factor": 8,
    "temporal_downsample_factor": 4, "use_quant_conv": False, "use_post_quant_conv": False,
    "freeze_encoder": False,
}


def tiny_state_dicts(arch: str = "v2", seed: int = 0) -> tuple[dict, dict]:
    """(DiT state dict, VAE state dict) with deterministic random weights."""
    from seedvr_desktop.models.dit.config import DiTConfig
    from seedvr_desktop.models.loading import build_dit
    from seedvr_desktop.models.vae.config import VAEConfig
    from seedvr_desktop.models.vae.loading import build_vae

    dit_kw = TINY_DIT_V2 if arch == "v2" else TINY_DIT_V1
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        dit = build_dit(DiTConfig.from_official(dit_kw), device="cpu")
        vae = build_vae(VAEConfig.from_official(TINY_VAE), device="cpu")
        # Default init leaves biases and norm weights at exactly 0/1; perturb them a little
        # so every parameter matters (a swapped or missing tensor changes the output).
        for module in (dit, vae):
            for _name, p in module.named_parameters():
                p.data.add_(0.02 * torch.randn_like(p))
    return ({k: v.clone() for k, v in dit.state_dict().items()},
            {k: v.clone() for k, v in vae.state_dict().items()})


def write_tiny_model(folder: Path, *, family: str = "v2", arch: str = "v2", seed: int = 0,
                     steps: int | None = None, cfg_scale: float | None = None,
                     dit_file: str = "seedvr2_ema_3b.pth") -> Path:
    """Write a complete tiny model folder; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    dit_sd, vae_sd = tiny_state_dicts(arch, seed)
    torch.save(dit_sd, folder / dit_file)
    torch.save(vae_sd, folder / "ema_vae.pth")
    gen = torch.Generator().manual_seed(seed + 1)
    torch.save(torch.randn(7, 32, generator=gen).to(torch.bfloat16), folder / "pos_emb.pt")
    torch.save((1.3 * torch.randn(5, 32, generator=gen)).to(torch.bfloat16),
               folder / "neg_emb.pt")
    meta: dict[str, Any] = {"name": f"tiny-{family}-{arch}", "family": family,
                            "dit": TINY_DIT_V2 if arch == "v2" else TINY_DIT_V1,
                            "vae": TINY_VAE}
    if steps is not None:
        meta["steps"] = steps
    if cfg_scale is not None:
        meta["cfg_scale"] = cfg_scale
    (folder / "seedvr.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return folder
