from __future__ import annotations

import numpy as np
import pytest

from seedvr_desktop.training import degrade as d
from seedvr_desktop.training.degrade_codec import compress_clip


def _clip(frames: int = 5, size: int = 48) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    out = []
    for t in range(frames):
        img = np.stack([(xx + 0.05 * t) % 1, yy, ((xx * 8).astype(int) % 2) * 0.8], -1)
        out.append(img)
    return np.stack(out).astype(np.float32)


def test_same_seed_same_result_other_seed_differs() -> None:
    x = _clip()
    a = d.degrade_clip(x, d.sample_params(7))
    b = d.degrade_clip(x, d.sample_params(7))
    c = d.degrade_clip(x, d.sample_params(8))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == x.shape and a.dtype == np.float32
    assert a.min() >= 0.0 and a.max() <= 1.0


def test_params_are_json_and_describable() -> None:
    import json

    for seed in range(20):
        p = d.sample_params(seed)
        json.dumps(p.to_json())
        assert d.describe(p)
    kinds = {d.sample_params(s).blur["kind"] for s in range(60) if d.sample_params(s).blur}
    assert kinds == {"gaussian", "anisotropic", "motion"}


@pytest.mark.parametrize("spec", [{"kind": "gaussian", "sigma": 1.5},
                                  {"kind": "anisotropic", "sx": 2.0, "sy": 0.3, "theta": 0.5},
                                  {"kind": "motion", "length": 7, "angle": 30.0}])
def test_blur_kernels_normalised_and_smoothing(spec: dict) -> None:
    k = d.blur_kernel(spec)
    assert abs(float(k.sum()) - 1.0) < 1e-5
    x = _clip(1)
    y = d.blur(x, spec)
    assert np.abs(np.diff(y, axis=2)).mean() < np.abs(np.diff(x, axis=2)).mean()


@pytest.mark.parametrize("codec", d.CODECS)
def test_codec_roundtrip_damages_but_keeps_shape(codec: str) -> None:
    x = _clip(6, 64)
    y = compress_clip(x, codec, 60)
    assert y.shape == x.shape
    err = float(np.abs(y - x).mean())
    assert 0.003 < err < 0.3


def test_jpeg_noise_interlace_chroma_dropout_change_the_clip() -> None:
    x = _clip()
    rng = np.random.default_rng(0)
    assert np.abs(d.jpeg(x, 20) - x).mean() > 0.005
    noisy = d.add_noise(x, {"kind": "gaussian", "sigma": 0.05, "colour": True}, rng)
    assert 0.02 < float(np.abs(noisy - x).mean()) < 0.06
    pois = d.add_noise(x, {"kind": "poisson", "scale": 0.0, "colour": False}, rng)
    assert float(np.abs(pois - x).mean()) > 0.02
    comb = d.interlace(x)
    assert np.array_equal(comb[0, 0::2], x[0, 0::2]) and np.array_equal(comb[0, 1::2], x[1, 1::2])
    assert np.abs(d.chroma_bleed(x, 4) - x).mean() > 0.005
    drop = d.dropout_lines(x, 1.0, rng)
    assert (np.abs(drop - x).max(axis=(2, 3)) > 0.1).any(axis=1).all()  # a line on every frame


def test_params_constant_within_a_clip() -> None:
    """A static clip stays (nearly) static after degradation: strength does not vary per frame."""
    still = np.repeat(_clip(1), 5, axis=0)
    p = d.sample_params(3)
    p = d.DegradeParams(**{**p.to_json(), "noise": None, "dropout": 0.0, "interlace": False,
                           "compress": {"kind": "jpeg", "quality": 40}, "second": None})
    y = d.degrade_clip(still, p)
    assert np.abs(y - y[0:1]).max() < 1e-6
