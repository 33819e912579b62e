"""Colour correction of restored frames toward the (resized) input frames.

Diffusion restorers keep detail well but can drift in colour and brightness. The official SeedVR
scripts optionally apply StableSR's wavelet colour fix: keep the generated frames' high
frequencies and take the low frequencies (colour, shading) from the input. AdaIN (per-channel
mean/std transfer) and a LAB statistics transfer are offered as milder alternatives.

All functions take frames (T, 3, H, W) in [-1, 1] (the VAE's range), `reference` of the same
shape, and return the corrected frames in the same dtype; they work frame by frame, in chunks of
frames, so memory stays bounded at high resolution.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

WAVELET_LEVELS = 5
_CHUNK = 8  # frames processed together


def _check(frames: Tensor, reference: Tensor) -> None:
    if frames.dim() != 4 or frames.shape[1] != 3:
        raise ValueError(f"expected frames (T, 3, H, W), got {tuple(frames.shape)}")
    if reference.shape != frames.shape:
        raise ValueError(
            f"reference {tuple(reference.shape)} must match frames {tuple(frames.shape)}"
        )


def _chunked(fn: Callable[[Tensor, Tensor], Tensor], frames: Tensor, reference: Tensor) -> Tensor:
    _check(frames, reference)
    out = torch.empty_like(frames)
    for i in range(0, frames.shape[0], _CHUNK):
        out[i : i + _CHUNK] = fn(frames[i : i + _CHUNK], reference[i : i + _CHUNK].to(frames))
    return out


# ------------------------------------------------------------------------------- wavelet
def wavelet_blur(x: Tensor, radius: int) -> Tensor:
    """3x3 binomial blur with dilation `radius`, edges replicated: (N,C,H,W) -> same."""
    k = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]], dtype=x.dtype) / 16
    kernel = k.to(x.device)[None, None].repeat(x.shape[1], 1, 1, 1)
    padded = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    return F.conv2d(padded, kernel, groups=x.shape[1], dilation=radius)


def wavelet_decomposition(x: Tensor, levels: int = WAVELET_LEVELS) -> tuple[Tensor, Tensor]:
    """(high, low): `low` is the `levels`-times blurred image (radii 1, 2, 4, ...), high = x - low.

    High is accumulated level by level as the official code does, so it equals x - low only up to
    rounding; the reconstruction below relies on the same accumulation.
    """
    high = torch.zeros_like(x)
    for i in range(levels):
        low = wavelet_blur(x, 2**i)
        high += x - low
        x = low
    return high, x


def wavelet_reconstruction(frames: Tensor, reference: Tensor) -> Tensor:
    """High frequencies of `frames` + low frequencies of `reference` (the official colour fix)."""

    def one(f: Tensor, r: Tensor) -> Tensor:
        high, _ = wavelet_decomposition(f)
        _, low = wavelet_decomposition(r)
        return high + low

    return _chunked(one, frames, reference)


# ------------------------------------------------------------------------------- AdaIN
def _mean_std(x: Tensor, eps: float = 1e-5) -> tuple[Tensor, Tensor]:
    """Per-frame, per-channel mean and sqrt(unbiased variance + eps), shaped (N, C, 1, 1)."""
    flat = x.reshape(x.shape[0], x.shape[1], -1)
    var = flat.var(dim=2) + eps
    return flat.mean(dim=2)[..., None, None], var.sqrt()[..., None, None]


def adain_color_fix(frames: Tensor, reference: Tensor) -> Tensor:
    """Give each frame's channels the mean and std of the reference frame's channels."""

    def one(f: Tensor, r: Tensor) -> Tensor:
        fm, fs = _mean_std(f)
        rm, rs = _mean_std(r)
        return (f - fm) / fs * rs + rm

    return _chunked(one, frames, reference)


# ------------------------------------------------------------------------------- LAB
# sRGB (D65) <-> CIE XYZ matrices (IEC 61966-2-1) and the D65 white point.
_RGB_TO_XYZ = (
    (0.4124564, 0.3575761, 0.1804375),
    (0.2126729, 0.7151522, 0.0721750),
    (0.0193339, 0.1191920, 0.9503041),
)
_WHITE = (0.95047, 1.0, 1.08883)
_EPS = 216 / 24389  # CIE constants for the cube-root knee
_KAPPA = 24389 / 27


def rgb_to_lab(rgb: Tensor) -> Tensor:
    """(N,3,H,W) sRGB in [0,1] -> CIE Lab (L in [0,100]); computed in float32 or wider."""
    x = rgb.clamp(0, 1)
    x = torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    m = torch.tensor(_RGB_TO_XYZ, dtype=x.dtype, device=x.device)
    xyz = torch.einsum("ij,njhw->nihw", m, x)
    xyz = xyz / torch.tensor(_WHITE, dtype=x.dtype, device=x.device)[None, :, None, None]
    f = torch.where(xyz > _EPS, xyz.clamp_min(1e-12) ** (1 / 3), (_KAPPA * xyz + 16) / 116)
    lum = 116 * f[:, 1] - 16
    a = 500 * (f[:, 0] - f[:, 1])
    b = 200 * (f[:, 1] - f[:, 2])
    return torch.stack([lum, a, b], dim=1)


def lab_to_rgb(lab: Tensor) -> Tensor:
    """Inverse of `rgb_to_lab`; the result is clamped to [0, 1]."""
    fy = (lab[:, 0] + 16) / 116
    fx = fy + lab[:, 1] / 500
    fz = fy - lab[:, 2] / 200
    f = torch.stack([fx, fy, fz], dim=1)
    xyz = torch.where(f**3 > _EPS, f**3, (116 * f - 16) / _KAPPA)
    xyz = xyz * torch.tensor(_WHITE, dtype=lab.dtype, device=lab.device)[None, :, None, None]
    m_inv = torch.linalg.inv(torch.tensor(_RGB_TO_XYZ, dtype=torch.float64)).to(lab)
    lin = torch.einsum("ij,njhw->nihw", m_inv, xyz).clamp(0, 1)
    rgb = torch.where(
        lin <= 0.0031308, lin * 12.92, 1.055 * lin.clamp_min(1e-12) ** (1 / 2.4) - 0.055
    )
    return rgb.clamp(0, 1)


def lab_color_fix(frames: Tensor, reference: Tensor) -> Tensor:
    """Match each frame's per-channel L, a, b mean and std to the reference frame's."""

    def one(f: Tensor, r: Tensor) -> Tensor:
        work = torch.promote_types(f.dtype, torch.float32)
        lab = rgb_to_lab((f.to(work) + 1) / 2)
        ref = rgb_to_lab((r.to(work) + 1) / 2)
        lm, ls = _mean_std(lab)
        rm, rs = _mean_std(ref)
        fixed = (lab - lm) / ls * rs + rm
        return (lab_to_rgb(fixed) * 2 - 1).to(f.dtype)

    return _chunked(one, frames, reference)


COLOR_FIXES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "wavelet": wavelet_reconstruction,
    "adain": adain_color_fix,
    "lab": lab_color_fix,
}


def apply_color_fix(method: str, frames: Tensor, reference: Tensor) -> Tensor:
    """Dispatch by name ("none", "wavelet", "adain", "lab")."""
    if method == "none":
        return frames
    try:
        fn = COLOR_FIXES[method]
    except KeyError:
        choices = ", ".join(COLOR_FIXES)
        raise ValueError(f"unknown colour fix {method!r}; choose none, {choices}") from None
    return fn(frames, reference)
