"""Loading the VAE checkpoint (`ema_vae.pth` or our safetensors form).

The official loader is non-strict (missing or extra keys are silently ignored). We stay
non-strict so slightly different files still load, but we say what was ignored in the log, and we
refuse files that are clearly not this VAE (many keys missing, or mismatched shapes), because a
silently half-random VAE produces garbage that looks like a bug elsewhere.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from seedvr_desktop.errors import ModelError
from seedvr_desktop.models.vae.config import VAEConfig
from seedvr_desktop.models.vae.model import VAEOptions, VideoVAE

log = logging.getLogger(__name__)

MAX_MISSING_FRACTION = 0.10  # more missing than this: not a VAE for this config
_OLD_ATTENTION = re.compile(r"^(.*\.attentions\.\d+\.)(query|key|value|proj_attn)\.(weight|bias)$")
_NEW_NAMES = {"query": "to_q", "key": "to_k", "value": "to_v", "proj_attn": "to_out.0"}


def convert_legacy_attention_keys(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename old diffusers attention keys (query/key/value/proj_attn) to to_q/to_k/to_v/to_out.0.

    Old files may also store those projections as 1x1 conv weights (C, C, 1, 1); they become the
    equivalent (C, C) linear weights.
    """
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        m = _OLD_ATTENTION.match(key)
        if m:
            key = f"{m.group(1)}{_NEW_NAMES[m.group(2)]}.{m.group(3)}"
            if value.dim() > 2:
                value = value.reshape(value.shape[0], -1)
        out[key] = value
    return out


def build_vae(config: VAEConfig | None = None, *, device: str | torch.device = "meta") -> VideoVAE:
    """An uninitialised VAE (meta device by default: no memory until weights are assigned)."""
    with torch.device(device):
        model = VideoVAE(config or VAEConfig())
    return model.eval().requires_grad_(False)


def load_vae(
    path_or_state: str | os.PathLike[str] | Mapping[str, Tensor],
    config: VAEConfig | None = None,
    *,
    dtype: torch.dtype | None = None,
    device: str | torch.device = "cpu",
    options: VAEOptions | None = None,
) -> VideoVAE:
    """A ready VAE with the file's weights.

    `dtype=None` keeps the file's floating dtype (the official inference uses bfloat16). On CUDA
    the conv weights are put in channels_last_3d, the layout the encode/decode fast path uses.
    Raises ModelError when the file is not this VAE.
    """
    if isinstance(path_or_state, Mapping):
        state, name = dict(path_or_state), "the VAE checkpoint"
    else:
        state, name = _read(path_or_state), Path(path_or_state).name
    state = convert_legacy_attention_keys(state)
    cfg = config or VAEConfig()
    model = build_vae(cfg, device="meta")
    expected = model.state_dict()
    missing, unexpected = check_vae_state(state, expected, name)
    if dtype is None:
        floats = [v.dtype for v in state.values() if v.is_floating_point()]
        dtype = floats[0] if floats else torch.float32
    known = {
        k: state[k].to(dtype) if state[k].is_floating_point() else state[k]
        for k in expected
        if k in state
    }
    if missing:
        # The official model keeps its initial values for absent keys; build for real so the
        # absent ones get the same kind of (default) initialisation instead of staying empty.
        model = build_vae(cfg, device=device).to(dtype)
        model.load_state_dict(known, strict=False)
    else:
        model.load_state_dict(known, strict=True, assign=True)
    if unexpected:
        log.warning("%s: ignored %d unexpected key(s): %s", name, len(unexpected), _few(unexpected))
    if missing:
        log.warning(
            "%s: %d key(s) missing, left at their initial values: %s",
            name,
            len(missing),
            _few(missing),
        )
    model = model.to(device)
    if model.device.type == "cuda":
        # Module.to documents and accepts memory_format; torch's overloads leave it out. (The
        # `unused-ignore` code keeps this quiet where call-overload is disabled for the package.)
        model = model.to(  # type: ignore[call-overload, unused-ignore]
            memory_format=torch.channels_last_3d
        )
    if options is not None:
        model.options = options
    return model.eval().requires_grad_(False)


def check_vae_state(
    state: Mapping[str, Tensor], expected: Mapping[str, Tensor], name: str = "the checkpoint"
) -> tuple[list[str], list[str]]:
    """(missing, unexpected) keys; raises ModelError when the file clearly is not this VAE."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if len(missing) > MAX_MISSING_FRACTION * len(expected):
        if any(k.startswith(("blocks.", "vid_in.", "txt_in.")) for k in state):
            cause = "this is a DiT checkpoint, not the VAE"
        else:
            cause = "this is not the SeedVR VAE (wrong file)"
        raise ModelError(
            f"{name} does not fit the SeedVR VAE: {len(missing)} of {len(expected)} keys missing "
            f"({_few(missing)}); likely cause: {cause}"
        )
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if wrong:
        k = wrong[0]
        raise ModelError(
            f"{name} does not fit this VAE configuration: {len(wrong)} shape mismatch(es) "
            f"({k}: file {list(state[k].shape)}, model {list(expected[k].shape)})"
        )
    return missing, unexpected


def infer_vae_config(state: Mapping[str, Tensor], **overrides: object) -> VAEConfig:
    """A VAEConfig read off a state dict's shapes (for smaller or derived VAEs).

    Group count cannot be read from weights; it defaults to 32 (or the largest power of two
    dividing every width) unless given in `overrides`.
    """
    state = convert_legacy_attention_keys(state)
    try:
        n = 1 + max(
            int(m.group(1)) for k in state if (m := re.match(r"encoder\.down_blocks\.(\d+)\.", k))
        )
        widths = tuple(
            int(state[f"encoder.down_blocks.{i}.resnets.0.conv1.weight"].shape[0]) for i in range(n)
        )
        layers = 1 + max(
            int(m.group(1))
            for k in state
            if (m := re.match(r"encoder\.down_blocks\.0\.resnets\.(\d+)\.", k))
        )
        temporal = sum(
            int(state[f"encoder.down_blocks.{i}.downsamplers.0.conv.weight"].shape[2] == 3)
            for i in range(n - 1)
        )
        conv1_t = int(state["encoder.down_blocks.0.resnets.0.conv1.weight"].shape[2])
        args: dict[str, object] = {
            "in_channels": int(state["encoder.conv_in.weight"].shape[1]),
            "out_channels": int(state["decoder.conv_out.weight"].shape[0]),
            "latent_channels": int(state["decoder.conv_in.weight"].shape[1]),
            "block_out_channels": widths,
            "layers_per_block": layers,
            "temporal_scale_num": temporal,
            "time_receptive_field": "full" if conv1_t == 3 else "half",
            "attention": any(".mid_block.attentions." in k for k in state),
            "use_quant_conv": "quant_conv.weight" in state,
            "use_post_quant_conv": "post_quant_conv.weight" in state,
        }
    except (KeyError, ValueError) as exc:
        raise ModelError(f"not a SeedVR VAE state dict (cannot read its shape: {exc})") from exc
    groups = 32
    while groups > 1 and any(w % groups for w in widths):
        groups //= 2
    args["norm_num_groups"] = groups
    args.update(overrides)
    return VAEConfig(**args)  # type: ignore[arg-type]


def _read(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    from seedvr_desktop.models.loading import read_state_dict

    return read_state_dict(path)


def _few(keys: list[str], n: int = 3) -> str:
    return ", ".join(keys[:n]) + (", ..." if len(keys) > n else "")
