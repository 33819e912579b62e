"""Synthetic degradations that turn a clean (HQ) clip into a plausible home-movie (LQ) one.

Every random choice comes from one seed, and the parameters are drawn once per clip, so a
sample's degradation is reproducible from its manifest entry and does not flicker from frame to
frame (per-frame noise is fresh, its strength is not). Order (first order, then optionally a
milder second pass, as Real-ESRGAN style pipelines do):

    blur -> downscale -> noise -> JPEG or real codec -> [second order] -> upscale back
    -> interlace combing -> chroma bleed -> tape dropout lines

Frames are (T, H, W, 3) float32 RGB in [0, 1]; the result has the input's size, since SeedVR
restores at the output resolution from an upscaled input.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import cv2
import numpy as np

from seedvr_desktop.training.degrade_codec import compress_clip

CODECS = ("h264", "mpeg2video", "mpeg4")


@dataclass(frozen=True)
class DegradeOptions:
    """Probabilities and ranges; the defaults aim at VHS / DV / early phone footage."""

    p_blur: float = 0.8
    p_codec: float = 0.5  # else JPEG with p_jpeg
    p_jpeg: float = 0.6
    p_second_order: float = 0.3
    p_interlace: float = 0.2
    p_chroma_bleed: float = 0.3
    p_dropout: float = 0.15
    scale_range: tuple[float, float] = (0.25, 1.0)
    max_noise: float = 0.08  # gaussian sigma on the [0, 1] scale
    jpeg_quality: tuple[int, int] = (30, 90)
    codec_kbps: tuple[int, int] = (150, 800)
    second_order: bool = True


@dataclass(frozen=True)
class DegradeParams:
    """The choices made for one clip (stored in the cache manifest)."""

    seed: int
    blur: dict[str, Any] | None
    scale: float
    down_interp: int
    noise: dict[str, Any] | None
    compress: dict[str, Any] | None
    second: dict[str, Any] | None = None
    interlace: bool = False
    chroma_bleed: int = 0  # horizontal chroma smear in pixels; 0 = off
    dropout: float = 0.0  # probability of a dropout line per frame
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def sample_params(seed: int, options: DegradeOptions | None = None) -> DegradeParams:
    """Draw one clip's degradation parameters from `seed` (pure: same seed, same params)."""
    o = options or DegradeOptions()
    rng = np.random.default_rng(seed)
    blur = _sample_blur(rng) if rng.random() < o.p_blur else None
    lo, hi = o.scale_range
    scale = float(rng.uniform(lo, hi))
    interp = int(rng.choice([cv2.INTER_AREA, cv2.INTER_LINEAR, cv2.INTER_CUBIC]))
    noise = _sample_noise(rng, o.max_noise)
    compress = _sample_compress(rng, o)
    second = None
    if o.second_order and rng.random() < o.p_second_order:
        second = {"blur": _sample_blur(rng, mild=True),
                  "noise": _sample_noise(rng, o.max_noise / 2),
                  "compress": _sample_compress(rng, o)}
    return DegradeParams(
        seed=seed, blur=blur, scale=scale, down_interp=interp, noise=noise, compress=compress,
        second=second,
        interlace=bool(rng.random() < o.p_interlace),
        chroma_bleed=int(rng.integers(2, 7)) if rng.random() < o.p_chroma_bleed else 0,
        dropout=float(rng.uniform(0.2, 0.8)) if rng.random() < o.p_dropout else 0.0,
    )


def _sample_blur(rng: np.random.Generator, mild: bool = False) -> dict[str, Any]:
    top = 1.2 if mild else 3.0
    kind = str(rng.choice(["gaussian", "anisotropic", "motion"]))
    if kind == "gaussian":
        return {"kind": kind, "sigma": float(rng.uniform(0.2, top))}
    if kind == "anisotropic":
        return {"kind": kind, "sx": float(rng.uniform(0.2, top)),
                "sy": float(rng.uniform(0.2, top)), "theta": float(rng.uniform(0, math.pi))}
    return {"kind": kind, "length": int(rng.integers(3, 6 if mild else 12)),
            "angle": float(rng.uniform(0, 180))}


def _sample_noise(rng: np.random.Generator, max_sigma: float) -> dict[str, Any] | None:
    r = rng.random()
    if r < 0.2:
        return None
    if r < 0.7:
        return {"kind": "gaussian", "sigma": float(rng.uniform(0.0, max_sigma)),
                "colour": bool(rng.random() < 0.5)}
    return {"kind": "poisson", "scale": float(rng.uniform(0.05, 1.0)),
            "colour": bool(rng.random() < 0.5)}


def _sample_compress(rng: np.random.Generator, o: DegradeOptions) -> dict[str, Any] | None:
    if rng.random() < o.p_codec:
        return {"kind": "codec", "codec": str(rng.choice(CODECS)),
                "kbps": int(rng.integers(o.codec_kbps[0], o.codec_kbps[1] + 1))}
    if rng.random() < o.p_jpeg:
        return {"kind": "jpeg", "quality": int(rng.integers(o.jpeg_quality[0],
                                                            o.jpeg_quality[1] + 1))}
    return None


# ------------------------------------------------------------------------------ applying
def degrade_clip(frames: np.ndarray, params: DegradeParams) -> np.ndarray:
    """(T, H, W, 3) float32 [0, 1] HQ -> LQ of the same shape, fully determined by `params`."""
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected (T, H, W, 3) frames, got {frames.shape}")
    t, h, w, _ = frames.shape
    rng = np.random.default_rng([params.seed, 1])  # per-frame randomness, seeded per clip
    x = frames.astype(np.float32, copy=True)
    if params.blur:
        x = blur(x, params.blur)
    dh, dw = _even(h * params.scale), _even(w * params.scale)
    x = np.stack([cv2.resize(f, (dw, dh), interpolation=params.down_interp) for f in x])
    x = add_noise(x, params.noise, rng)
    x = compress(x, params.compress, params.seed)
    if params.second:
        s = params.second
        x = blur(x, s["blur"])
        x = add_noise(x, s["noise"], rng)
        x = compress(x, s["compress"], params.seed + 1)
    x = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_CUBIC) for f in x])
    if params.interlace:
        x = interlace(x)
    if params.chroma_bleed:
        x = chroma_bleed(x, params.chroma_bleed)
    if params.dropout:
        x = dropout_lines(x, params.dropout, rng)
    assert x.shape == (t, h, w, 3)
    return np.clip(x, 0.0, 1.0).astype(np.float32)


def _even(v: float) -> int:
    return max(2, round(v / 2) * 2)


def blur_kernel(spec: dict[str, Any]) -> np.ndarray:
    """A normalised 2-D kernel for a blur spec."""
    kind = spec["kind"]
    if kind == "motion":
        n = int(spec["length"])
        k = np.zeros((n, n), np.float32)
        k[n // 2, :] = 1.0
        rot = cv2.getRotationMatrix2D(((n - 1) / 2, (n - 1) / 2), float(spec["angle"]), 1.0)
        k = np.asarray(cv2.warpAffine(k, rot, (n, n)), dtype=np.float32)
    else:
        sx = float(spec.get("sigma", spec.get("sx", 1.0)))
        sy = float(spec.get("sigma", spec.get("sy", 1.0)))
        theta = float(spec.get("theta", 0.0))
        radius = math.ceil(3 * max(sx, sy))
        ax = np.arange(-radius, radius + 1, dtype=np.float32)
        xx, yy = np.meshgrid(ax, ax)
        c, s = math.cos(theta), math.sin(theta)
        u, v = c * xx + s * yy, -s * xx + c * yy  # rotated axes of the elliptic gaussian
        k = np.exp(-0.5 * ((u / sx) ** 2 + (v / sy) ** 2))
    total = float(k.sum())
    return (k / total if total > 0 else k).astype(np.float32)


def blur(x: np.ndarray, spec: dict[str, Any] | None) -> np.ndarray:
    if not spec:
        return x
    k = blur_kernel(spec)
    return np.stack([cv2.filter2D(f, -1, k, borderType=cv2.BORDER_REFLECT) for f in x])


def add_noise(x: np.ndarray, spec: dict[str, Any] | None, rng: np.random.Generator) -> np.ndarray:
    if not spec:
        return x
    shape = x.shape if spec["colour"] else (*x.shape[:-1], 1)
    if spec["kind"] == "gaussian":
        n = rng.standard_normal(shape).astype(np.float32) * float(spec["sigma"])
    else:
        # Poisson shot noise: photon counts ~ value·peak, peak from 10 (grainy) to 1000 (clean).
        peak = 10.0 ** (1 + 2 * float(spec["scale"]))
        base = x if spec["colour"] else x.mean(-1, keepdims=True)
        n = (rng.poisson(np.clip(base, 0, 1) * peak) / peak - base).astype(np.float32)
    return np.clip(x + n, 0.0, 1.0)


def compress(x: np.ndarray, spec: dict[str, Any] | None, seed: int) -> np.ndarray:
    if not spec:
        return x
    if spec["kind"] == "jpeg":
        return jpeg(x, int(spec["quality"]))
    return compress_clip(x, spec["codec"], int(spec["kbps"]))


def jpeg(x: np.ndarray, quality: int) -> np.ndarray:
    out = []
    for f in x:
        bgr = cv2.cvtColor((np.clip(f, 0, 1) * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2BGR)
        ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise RuntimeError("OpenCV could not encode JPEG")
        dec = cv2.imdecode(data, cv2.IMREAD_COLOR)
        if dec is None:
            raise RuntimeError("OpenCV could not decode its own JPEG")
        out.append(cv2.cvtColor(dec, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0)
    return np.stack(out)


def interlace(x: np.ndarray) -> np.ndarray:
    """Combing: odd lines from the next frame (the later field), as a badly deinterlaced
    capture shows on motion; a single image gets its odd lines shifted by two pixels."""
    out = x.copy()
    if len(x) > 1:
        out[:-1, 1::2] = x[1:, 1::2]
    else:
        out[:, 1::2] = np.roll(x[:, 1::2], 2, axis=2)
    return out


def chroma_bleed(x: np.ndarray, smear: int) -> np.ndarray:
    """Colour that runs to the right of edges (composite video): chroma blurred and delayed."""
    out = []
    for f in x:
        ycc = cv2.cvtColor(f, cv2.COLOR_RGB2YCrCb)
        chroma = cv2.blur(ycc[..., 1:], (2 * smear + 1, 1))
        ycc[..., 1:] = np.roll(chroma, smear, axis=1)
        out.append(cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB))
    return np.stack(out)


def dropout_lines(x: np.ndarray, p: float, rng: np.random.Generator) -> np.ndarray:
    """Tape dropout: a few bright noisy horizontal streaks on some frames."""
    out = x.copy()
    _, h, w, _ = x.shape
    for f in out:
        if rng.random() >= p:
            continue
        for _ in range(int(rng.integers(1, 4))):
            row = int(rng.integers(0, h))
            start = int(rng.integers(0, w))
            length = int(rng.integers(max(1, w // 16), max(2, w // 3)))
            f[row, start:start + length] = 0.8 + 0.2 * rng.random((min(length, w - start), 1))
    return out


def describe(params: DegradeParams) -> str:
    """One short line for logs: 'blur gaussian, x0.42, noise gaussian, codec mpeg4 300k'."""
    parts = [f"blur {params.blur['kind']}" if params.blur else "", f"x{params.scale:.2f}"]
    if params.noise:
        parts.append(f"noise {params.noise['kind']}")
    c = params.compress
    if c:
        parts.append(f"jpeg q{c['quality']}" if c["kind"] == "jpeg"
                     else f"{c['codec']} {c['kbps']}k")
    parts += [name for name, on in (("2nd order", params.second), ("interlace", params.interlace),
                                    ("chroma", params.chroma_bleed), ("dropout", params.dropout))
              if on]
    return ", ".join(p for p in parts if p)
