"""The training objective: v-prediction MSE on packed varlen batches, built like the sampler.

Per sample (its randomness from a generator keyed by (seed, step, slot in the global batch), so
a run is the same on any number of processes and after any resume):

    x0    = HQ posterior sample          c = LQ posterior sample, then condition noise
    t     = timestep_transform(1000·sigmoid(N(mean, std)), latent shape)
    x_t   = (1 - t/T)·x0 + (t/T)·noise   (diffusion.add_noise)
    input = dit_input(x_t, c)            [16 noisy | 16 condition | 1 mask], as at inference
    text  = negative embedding with probability text_dropout (so guidance keeps working)
    loss  = mean over samples of MSE(v_pred, noise - x0)

Samples of different shapes (a 1-frame image and a 21-frame clip) go through one DiT call:
the latents are concatenated and `vid_shape` / `txt_shape` tell the DiT where each one starts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from seedvr_desktop.models import diffusion
from seedvr_desktop.training.cache import CachedSample
from seedvr_desktop.training.config import TrainConfig


@dataclass
class PackedBatch:
    """One rank's share of a step, packed for a single DiT call."""

    vid: Tensor  # (L, 33)
    txt: Tensor  # (Lt, txt_in_dim)
    vid_shape: Tensor  # (B, 3) long
    txt_shape: Tensor  # (B, 1) long
    timestep: Tensor  # (B,) float32, 0..1000
    target: Tensor  # (L, 16) v = noise - x0
    lens: list[int]  # latent pixels per sample

    def to(self, device: torch.device) -> PackedBatch:
        """The batch on `device`; the shapes stay on the host (the DiT reads them in Python)."""
        return PackedBatch(self.vid.to(device), self.txt.to(device), self.vid_shape,
                           self.txt_shape, self.timestep.to(device),
                           self.target.to(device), self.lens)


def sample_generator(seed: int, step: int, slot: int) -> torch.Generator:
    """A CPU generator for one sample of one step (independent of ranks and resumes)."""
    digest = hashlib.blake2b(f"{seed}:{step}:{slot}".encode(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest, "little") >> 1)


def sample_timestep(gen: torch.Generator, cfg: TrainConfig,
                    latent_shape: Sequence[int]) -> Tensor:
    """(1,) float32: logit-normal on 0..1000, then the official resolution-dependent shift."""
    u = torch.randn(1, generator=gen) * cfg.logit_std + cfg.logit_mean
    t = torch.sigmoid(u) * diffusion.SCHEDULE_T
    return diffusion.timestep_transform(t, list(latent_shape)).clamp(0.0, diffusion.SCHEDULE_T)


def build_batch(samples: Sequence[CachedSample], slots: Sequence[int], step: int,
                cfg: TrainConfig, pos: Tensor, neg: Tensor) -> PackedBatch:
    """Noise, timesteps, condition and text for each sample, packed (on the CPU)."""
    vids, txts, targets, shapes, tlens, ts, lens = [], [], [], [], [], [], []
    for sample, slot in zip(samples, slots):
        gen = sample_generator(cfg.seed, step, slot)
        x0 = sample.hq + sample.hq_std * torch.randn(sample.hq.shape, generator=gen)
        lq = sample.lq + sample.lq_std * torch.randn(sample.lq.shape, generator=gen)
        if not cfg.sample_posterior:  # draws above still made: the stream stays the same
            x0, lq = sample.hq, sample.lq
        t = sample_timestep(gen, cfg, x0.shape[:3])
        noise = torch.randn(x0.shape, generator=gen)
        x_t = diffusion.add_noise(x0, noise, t)
        if cfg.cond_noise_scale > 0:
            aug = torch.randn(lq.shape, generator=gen)
            lq = diffusion.noise_condition(lq, aug, cfg.cond_noise_scale)
        drop = bool(torch.rand(1, generator=gen).item() < cfg.text_dropout)
        txt = neg if drop else pos
        vid = diffusion.dit_input(x_t, lq)  # (T, h, w, 33)
        vids.append(vid.reshape(-1, vid.shape[-1]))
        targets.append((noise - x0).reshape(-1, x0.shape[-1]))
        txts.append(txt)
        shapes.append(list(x0.shape[:3]))
        tlens.append([txt.shape[0]])
        ts.append(t.reshape(1))
        lens.append(vids[-1].shape[0])
    return PackedBatch(torch.cat(vids), torch.cat(txts).float(),
                       torch.tensor(shapes, dtype=torch.long),
                       torch.tensor(tlens, dtype=torch.long), torch.cat(ts).float(),
                       torch.cat(targets), lens)


def batch_loss(dit: nn.Module, batch: PackedBatch) -> tuple[Tensor, Tensor]:
    """(mean loss, per-sample losses (B,)); each sample weighs the same whatever its size."""
    v = dit(batch.vid, batch.txt, batch.vid_shape, batch.txt_shape, batch.timestep)
    err = (v.float() - batch.target).pow(2).mean(dim=-1)  # (L,)
    per_sample = torch.stack([piece.mean() for piece in err.split(batch.lens)])
    return per_sample.mean(), per_sample


@torch.no_grad()
def restore_latent(dit: nn.Module, lq: Tensor, txt: Tensor, *, steps: int, seed: int = 0,
                   cond_noise_scale: float = 0.0) -> Tensor:
    """Euler-sample an HQ latent (T, h, w, 16) from an LQ latent (validation, tests)."""
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(lq.shape, generator=gen).to(lq.device)
    if cond_noise_scale > 0:
        aug = torch.randn(lq.shape, generator=gen).to(lq.device)
        lq = diffusion.noise_condition(lq, aug, cond_noise_scale)
    # Shapes stay on the host: the DiT reads them in Python, a device copy would sync per call.
    vid_shape = torch.tensor([list(lq.shape[:3])], dtype=torch.long)
    txt_shape = torch.tensor([[txt.shape[0]]], dtype=torch.long)

    def predict(x: Tensor, t: Tensor) -> Tensor:
        vid = diffusion.dit_input(x, lq).reshape(-1, 2 * lq.shape[-1] + 1)
        return dit(vid, txt, vid_shape, txt_shape, t.reshape(1).float()).reshape(x.shape).float()

    ts = diffusion.sampling_timesteps(steps, device=lq.device)
    return diffusion.euler_sample(noise, ts, predict)
