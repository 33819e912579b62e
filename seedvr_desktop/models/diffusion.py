"""Diffusion maths of SeedVR/SeedVR2 inference: schedule, timesteps, Euler sampler, CFG, noise.

Everything follows the official code's operation order in float32, so the reference vectors
match bit for bit (the order matters: e.g. 50 trailing steps contain 799.9999, not 800).

* Schedule "lerp" with T = 1000: x_t = (1 - t/T) x_0 + (t/T) x_T.
* Prediction "v_lerp": the model predicts v = x_T - x_0.
* Sampling: uniform trailing timesteps, Euler steps, and a final endpoint call, so the number of
  model calls equals the number of steps (SeedVR2: one call at t=1000).
* The sampler is a plain loop over a `predict_v(x, t) -> v` callable: the engine plugs in the DiT
  (with CFG via `guided`), tests plug in recorded predictions.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

SCHEDULE_T = 1000.0  # continuous lerp schedule length
VAE_TEMPORAL_FACTOR = 4
VAE_SPATIAL_FACTOR = 8

PredictV = Callable[[Tensor, Tensor], Tensor]  # (x_t, t as a 0-d float tensor) -> v


# ------------------------------------------------------------------------------- schedule
def lerp_a(t: Tensor) -> Tensor:
    """Weight of x_0 at time t: 1 - t/T."""
    return 1 - (t / SCHEDULE_T)


def lerp_b(t: Tensor) -> Tensor:
    """Weight of x_T (noise) at time t: t/T."""
    return t / SCHEDULE_T


def _expand(t: Tensor, ndim: int) -> Tensor:
    """Give t trailing singleton dims so it broadcasts over a tensor with `ndim` dims."""
    return t.reshape(t.shape + (1,) * (ndim - t.dim()))


def add_noise(x0: Tensor, noise: Tensor, t: Tensor | float) -> Tensor:
    """Forward diffusion x_t = A(t) x_0 + B(t) x_T (the official `schedule.forward`)."""
    t = _as_tensor(t, x0)
    t = _expand(t, x0.dim())
    return lerp_a(t) * x0 + lerp_b(t) * noise


def v_to_x0_xT(v: Tensor, x_t: Tensor, t: Tensor | float) -> tuple[Tensor, Tensor]:
    """(x_0, x_T) from a v_lerp prediction; divides by A+B literally, as the official code."""
    t = _expand(_as_tensor(t, x_t), x_t.dim())
    a, b = lerp_a(t), lerp_b(t)
    x0 = (x_t - b * v) / (a + b)
    x_T = (x_t + a * v) / (a + b)
    return x0, x_T


def _as_tensor(t: Tensor | float, like: Tensor) -> Tensor:
    if isinstance(t, Tensor):
        return t.to(like.device)
    return torch.tensor(float(t), dtype=torch.float32, device=like.device)


# ------------------------------------------------------------------------------- timesteps
def sampling_timesteps(
    steps: int, *, shift: float = 1.0, device: torch.device | str | None = None
) -> Tensor:
    """Uniform trailing timesteps on the 0..1000 scale, float32, highest first.

    Exactly `torch.arange(1.0, 0.0, -1/steps)`, shifted (identity at shift 1.0), times 1000:
    one step gives [1000.], fifty give [1000, 980, ..., 20] with float32 artefacts kept.
    """
    if steps < 1:
        raise ValueError("at least one sampling step is needed")
    ts = torch.arange(1.0, 0.0, -1.0 / steps, device=device)
    ts = shift * ts / (1 + (shift - 1) * ts)
    return ts * SCHEDULE_T


def _shift_for_shape(latent_shapes: Tensor) -> Tensor:
    """The official resolution-dependent shift for latent (T, H, W) rows, float32 (B,)."""
    frames = (latent_shapes[:, 0] - 1) * VAE_TEMPORAL_FACTOR + 1
    heights = latent_shapes[:, 1] * VAE_SPATIAL_FACTOR
    widths = latent_shapes[:, 2] * VAE_SPATIAL_FACTOR

    def line(x1: float, y1: float, x2: float, y2: float) -> Callable[[Tensor], Tensor]:
        m = (y2 - y1) / (x2 - x1)
        b = y1 - m * x1
        return lambda x: m * x + b

    image_shift = line(256 * 256, 1.0, 1024 * 1024, 3.2)
    video_shift = line(256 * 256 * 37, 1.0, 1280 * 720 * 145, 5.0)
    return torch.where(
        frames > 1, video_shift(heights * widths * frames), image_shift(heights * widths)
    )


def timestep_transform(t: Tensor | float, latent_shape: Sequence[int] | Tensor) -> Tensor:
    """Shift timesteps toward noise for larger inputs (used only for the condition noise).

    `latent_shape` is the latent (T, H, W) — or an (N, 3) tensor of them. Can shift below 1 for
    tiny inputs, as the official linear maps do.
    """
    shapes = torch.as_tensor(latent_shape, dtype=torch.int64)
    if shapes.dim() == 1:
        shapes = shapes[None]
    t = t if isinstance(t, Tensor) else torch.tensor([float(t)], dtype=torch.float32)
    shapes = shapes.to(t.device)
    shift = _shift_for_shape(shapes)
    tau = t / SCHEDULE_T
    tau = shift * tau / (1 + (shift - 1) * tau)
    return tau * SCHEDULE_T


def condition_noise_timestep(
    cond_noise_scale: float, latent_thwc_shape: Sequence[int], *, official_shape_bug: bool = True
) -> Tensor:
    """Timestep (shape (1,), float32) at which the low-res condition latent is noised.

    The official scripts pass `x.shape[1:]` of a (T,H,W,C) latent, i.e. (H, W, C), which the
    transform reads as (T, H, W). `official_shape_bug=True` reproduces that (what the released
    models were run with); False uses the true (T, H, W).
    """
    shape = tuple(latent_thwc_shape)
    if len(shape) != 4:
        raise ValueError("expected the (T, H, W, C) shape of the condition latent")
    used = shape[1:] if official_shape_bug else shape[:3]
    t = torch.tensor([1000.0], dtype=torch.float32) * cond_noise_scale
    return timestep_transform(t, used)


def noise_condition(
    latent: Tensor,
    aug_noise: Tensor,
    cond_noise_scale: float,
    *,
    official_shape_bug: bool = True,
) -> Tensor:
    """Noise the (T,H,W,C) condition latent as the official scripts do (identity at scale 0)."""
    t = condition_noise_timestep(
        cond_noise_scale, latent.shape, official_shape_bug=official_shape_bug
    ).to(latent.device)
    return add_noise(latent, aug_noise, t)


# ------------------------------------------------------------------------------- DiT input
def dit_input(x_t: Tensor, cond_latent: Tensor, mask: Tensor | None = None) -> Tensor:
    """cat[noisy latent (16), condition latent (16), mask (1)] on the last axis -> 33 channels.

    For super-resolution the mask is all ones at every frame (also for single images).
    """
    if mask is None:
        mask = torch.ones((*x_t.shape[:-1], 1), dtype=x_t.dtype, device=x_t.device)
    return torch.cat([x_t, cond_latent.to(x_t.dtype), mask.to(x_t.dtype)], dim=-1)


# ------------------------------------------------------------------------------- sampling
def euler_sample(x: Tensor, timesteps: Tensor, predict_v: PredictV) -> Tensor:
    """Euler ODE sampling from noise `x` at timesteps[0] down to the clean endpoint.

    For each consecutive pair (t, s): predict v at t, convert to (x_0, x_T), move to s. After the
    last timestep one more prediction gives x_0 directly, so there are len(timesteps) calls.
    """
    for t, s in itertools.pairwise(timesteps):
        v = predict_v(x, t)
        x0, x_T = v_to_x0_xT(v, x, t)
        s_b = _expand(s, x.dim())
        x_s = add_noise(x0, x_T, s_b.clamp(0, SCHEDULE_T))
        x_s = x_s.where(s_b >= 0, x0)  # never hit with trailing timesteps; kept for fidelity
        x = x_s.where(s_b <= SCHEDULE_T, x_T)
    t_last = timesteps[-1]
    v = predict_v(x, t_last)
    x0, _ = v_to_x0_xT(v, x, t_last)
    return x0


def classifier_free_guidance(
    pos: Tensor, neg: Tensor, scale: float, rescale: float = 0.0
) -> Tensor:
    """neg + scale (pos - neg), optionally pulled back toward pos's std (official `rescale`)."""
    cfg = neg + scale * (pos - neg)
    if rescale != 0.0:
        dims = list(range(1, pos.dim()))
        factor = pos.std(dim=dims, keepdim=True) / cfg.std(dim=dims, keepdim=True)
        cfg = cfg * (rescale * factor + (1 - rescale))
    return cfg


def guided(
    predict_pos: PredictV, predict_neg: PredictV | None, scale: float, rescale: float = 0.0
) -> PredictV:
    """A predictor applying CFG; at scale 1.0 only the positive branch is ever called."""
    if scale == 1.0:
        return predict_pos
    if predict_neg is None:
        raise ValueError("a guidance scale other than 1.0 needs a negative predictor")

    def predict(x: Tensor, t: Tensor) -> Tensor:
        pos = predict_pos(x, t)
        neg = predict_neg(x, t)
        return classifier_free_guidance(pos, neg, scale, rescale)

    return predict
