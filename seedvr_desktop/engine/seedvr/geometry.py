"""Chunk geometry of the SeedVR models: sizes, frame counts and the pixel <-> model conversions.

Preprocessing follows the official inference (antialiased bicubic resize, clamp, [-1, 1]) but
pads by reflection to a multiple of 16 instead of centre-cropping, so no border pixel is lost.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from seedvr_desktop.engine.chunking import valid_length

SIZE_MULTIPLE = 16  # VAE x8 and DiT patch x2
TEMPORAL_FACTOR = 4  # VAE: 4 frames per latent after the first


def padded_size(width: int, height: int) -> tuple[int, int]:
    """(W, H) rounded up to the model's multiple of 16."""
    m = SIZE_MULTIPLE
    return -(-width // m) * m, -(-height // m) * m


def valid_frames(n: int) -> int:
    """Smallest 4k+1 >= n (the VAE's causal frame count); the rule itself is chunking's."""
    return valid_length(n, TEMPORAL_FACTOR)


def latent_count(frames: int) -> int:
    """Latent frames for a 4k+1-frame clip."""
    return (frames - 1) // TEMPORAL_FACTOR + 1


def latent_keys(first_frame: int, n_latents: int) -> list[int]:
    """Absolute index of the last source frame each latent covers (its noise key)."""
    return [first_frame + TEMPORAL_FACTOR * j for j in range(n_latents)]


def preprocess(frames: np.ndarray | Tensor, out_w: int, out_h: int, device: torch.device,
               dtype: torch.dtype) -> Tensor:
    """(T, H, W, 3) float [0,1] -> (1, 3, T, Hp, Wp) in [-1, 1] at the output size, padded to /16.

    Resizing is antialiased bicubic (what torchvision's resize does for the official scripts) and
    runs in float32 on the device; padding reflects the picture (replicates when the picture is
    smaller than the pad), which gives the model natural texture instead of a hard black edge.
    """
    x = torch.as_tensor(frames).to(device=device, dtype=torch.float32)
    x = x.permute(0, 3, 1, 2)  # (T, 3, H, W)
    if x.shape[-2:] != (out_h, out_w):
        x = F.interpolate(x, size=(out_h, out_w), mode="bicubic", align_corners=False,
                          antialias=True)
    x = x.clamp_(0, 1).mul_(2).sub_(1)
    pw, ph = padded_size(out_w, out_h)
    if (pw, ph) != (out_w, out_h):
        pad = (0, pw - out_w, 0, ph - out_h)
        mode = "reflect" if pw - out_w < out_w and ph - out_h < out_h else "replicate"
        x = F.pad(x, pad, mode=mode)
    return x.permute(1, 0, 2, 3).unsqueeze(0).to(dtype)  # (1, 3, T, Hp, Wp)


def postprocess(x: Tensor, out_w: int, out_h: int) -> np.ndarray:
    """(1, 3, T, Hp, Wp) in [-1, 1] -> (T, out_h, out_w, 3) float32 [0, 1] on the CPU."""
    x = x[0, :, :, :out_h, :out_w].float().clamp(-1, 1).add(1).mul(0.5)
    return x.permute(1, 2, 3, 0).contiguous().cpu().numpy()
