"""Colour fixes: properties that follow from their definitions, not from our own outputs."""

from __future__ import annotations

import pytest
import torch

from seedvr_desktop.models.color_fix import (
    adain_color_fix,
    apply_color_fix,
    lab_color_fix,
    lab_to_rgb,
    rgb_to_lab,
    wavelet_blur,
    wavelet_reconstruction,
)


def _frames(t: int = 3, h: int = 40, w: int = 56, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand((t, 3, h, w), generator=g) * 1.6 - 0.8


def test_wavelet_fix_of_identical_frames_is_identity() -> None:
    x = _frames(10)  # more than one processing chunk
    assert torch.allclose(wavelet_reconstruction(x, x), x, atol=1e-5)


def test_wavelet_fix_takes_low_frequencies_from_reference() -> None:
    """A colour cast is pure low frequency (the blur of a constant is that constant), so adding
    one to the frames and fixing against the originals removes it exactly."""
    ref = _frames()
    cast = torch.tensor([0.2, -0.1, 0.05])[None, :, None, None]
    fixed = wavelet_reconstruction(ref + cast, ref)
    assert torch.allclose(fixed, ref, atol=1e-5)


def test_wavelet_fix_keeps_detail_of_frames() -> None:
    """A one-pixel checkerboard is annihilated by the first binomial blur, so it is pure detail,
    and a linear ramp is unchanged by every blur, so it is pure low frequency. Fixing
    (ramp + checker) against a differently coloured ramp therefore gives reference + checker,
    away from the replicate-padded borders (the five blurs reach 1+2+4+8+16 = 31 pixels)."""
    size = 96
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    checker = (((yy + xx) % 2) * 2 - 1).float() * 0.1
    ramp = torch.linspace(-0.5, 0.5, size)[None, None, None, :].expand(1, 3, size, size)
    ref = ramp * 0.5 + torch.tensor([0.2, 0.0, -0.1])[None, :, None, None]
    fixed = wavelet_reconstruction(ramp + checker, ref)
    inner = (slice(None), slice(None), slice(32, 64), slice(32, 64))
    assert torch.allclose(fixed[inner], (ref + checker)[inner], atol=1e-5)


def test_blur_preserves_constants_and_mean_of_linear_ramp() -> None:
    c = torch.full((1, 3, 9, 9), 0.3)
    assert torch.allclose(wavelet_blur(c, 4), c)
    ramp = torch.linspace(0, 1, 33)[None, None, None, :].expand(1, 3, 33, 33).contiguous()
    assert torch.allclose(wavelet_blur(ramp, 2)[..., 8:-8], ramp[..., 8:-8], atol=1e-6)


def test_adain_matches_reference_statistics() -> None:
    x, ref = _frames(seed=1), _frames(seed=2) * 0.3 + 0.1
    out = adain_color_fix(x, ref)
    flat_o, flat_r = out.flatten(2), ref.flatten(2)
    assert torch.allclose(flat_o.mean(2), flat_r.mean(2), atol=1e-5)
    assert torch.allclose(flat_o.std(2), flat_r.std(2), rtol=1e-3)


def test_lab_known_colours_and_round_trip() -> None:
    rgb = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])[:, :, None, None]
    lab = rgb_to_lab(rgb)[:, :, 0, 0]
    assert torch.allclose(lab[0], torch.tensor([100.0, 0.0, 0.0]), atol=0.05)
    assert torch.allclose(lab[1], torch.zeros(3), atol=0.05)
    assert torch.allclose(lab[2], torch.tensor([53.24, 80.09, 67.20]), atol=0.05)  # sRGB red
    x = (_frames() + 1) / 2
    assert torch.allclose(lab_to_rgb(rgb_to_lab(x)), x.clamp(0, 1), atol=1e-4)


def test_lab_fix_matches_reference_lab_statistics() -> None:
    x = _frames(seed=3) * 0.5  # moderate colours: no clipping after the transfer
    ref = _frames(seed=4) * 0.4 + 0.1
    out = lab_color_fix(x, ref)
    lab_o, lab_r = rgb_to_lab((out + 1) / 2).flatten(2), rgb_to_lab((ref + 1) / 2).flatten(2)
    assert torch.allclose(lab_o.mean(2), lab_r.mean(2), atol=0.05)
    assert torch.allclose(lab_o.std(2), lab_r.std(2), rtol=0.02, atol=0.05)
    assert torch.allclose(lab_color_fix(x, x), x, atol=1e-4)


def test_dispatch_and_shape_checks() -> None:
    x = _frames()
    assert apply_color_fix("none", x, x) is x
    assert torch.allclose(apply_color_fix("wavelet", x, x), x, atol=1e-5)
    with pytest.raises(ValueError, match="unknown colour fix"):
        apply_color_fix("sepia", x, x)
    with pytest.raises(ValueError, match="must match"):
        wavelet_reconstruction(x, x[:, :, :8])
