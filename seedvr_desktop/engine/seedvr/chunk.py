"""One chunk through the SeedVR stages: encode -> denoise -> decode (+ colour fix).

Split from `seedvr.py` so the engine keeps the policy (devices, memory, retries) and this file
the tensor work. Every loop checks for cancel; device memory holds one VAE slice (or tile) of
pixels at a time, the latents of the chunk, and the DiT's working set.

Spatial tiles are the outer loop and temporal slices the inner one (all frames of a chunk are
known before encoding, all latents before decoding), so only one tile's causal-conv carries are
alive at a time: with tiles inside the slices every tile's carries would stay alive together
(at 720p with 256 px tiles they sum to more than a whole frame's activations).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import Tensor

from seedvr_desktop.engine.base import ChunkContext
from seedvr_desktop.engine.seedvr.geometry import (
    TEMPORAL_FACTOR,
    latent_count,
    latent_keys,
    padded_size,
    postprocess,
    preprocess,
    valid_frames,
)
from seedvr_desktop.engine.seedvr.hooks import (
    BlockStreamer,
    cancel_hooks,
    check_cancel,
    dit_block_hooks,
)
from seedvr_desktop.engine.seedvr.memory import TILE_OVERLAP
from seedvr_desktop.engine.seedvr.noise import keyed_noise
from seedvr_desktop.engine.seedvr.windows import plan_spans, span_weights, tile_weights
from seedvr_desktop.models import diffusion
from seedvr_desktop.models.color_fix import apply_color_fix
from seedvr_desktop.models.vae.causal_conv import CausalConv3d

# Rough share of a chunk's time per stage, for the progress it reports while it runs (the DiT's
# 50-100 forwards dominate on a GPU); the pipeline shows a heartbeat besides.
PROGRESS_SHARE = {"encode": 0.15, "dit": 0.7, "decode": 0.15}


@contextmanager
def conv_autotune(device: torch.device) -> Iterator[None]:
    """cuDNN benchmark mode during VAE work on CUDA: every slice of every chunk repeats the
    same few conv shapes, so the autotuned algorithms pay for their first search at once.
    The choice is cached per process, so one job stays reproducible; left off when the user
    asked PyTorch for deterministic algorithms."""
    if device.type != "cuda" or torch.are_deterministic_algorithms_enabled():
        yield
        return
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


class ChunkRun:
    """The state of one chunk: source frames, geometry, noise keys and the settings to use."""

    def __init__(self, engine: Any, frames: np.ndarray, context: ChunkContext,
                 cancel: threading.Event | None, settings: Any) -> None:
        self.engine = engine
        self.model = engine.model
        self.device: torch.device = engine.choice.device
        # Where offloaded and streamed DiT weights live (the memory simulation uses `meta`).
        self.host = torch.device(getattr(engine, "host_device", None) or "cpu")
        self.settings = settings
        self.cancel = cancel
        self.frames = frames  # (T, H, W, 3) float32 [0, 1] at the source size
        self.count = frames.shape[0]
        total = valid_frames(self.count)
        self.index = np.minimum(np.arange(total), self.count - 1)  # pad with the last frame
        self.out_w, self.out_h = engine.output_size
        self.pw, self.ph = padded_size(self.out_w, self.out_h)
        sf = self.model.vae.config.spatial_factor
        self.h_lat, self.w_lat = self.ph // sf, self.pw // sf
        self.t_lat = latent_count(total)
        self.keys = latent_keys(context.first_frame, self.t_lat)
        self.seed = int(context.seed)
        self.context = context
        self._dit_calls = 0  # DiT forwards done in this chunk, for progress reports
        self._dit_total = 1
        # Work done, for the speed calibration: ("dit", frames per window, windows) and
        # ("vae", frames, 1); turned into FLOPs only when the engine closes.
        self.work: list[tuple[str, int, int]] = []
        self.color_seconds = 0.0
        from seedvr_desktop.models.vae.model import VAEOptions

        limit = settings.conv_max_bytes
        self.options = VAEOptions(encode_slice=settings.encode_slice,
                                  decode_slice=settings.decode_slice,
                                  conv_max_bytes=limit, norm_max_bytes=limit)

    # ------------------------------------------------------------------ helpers
    def _pixels(self, a: int, b: int, dtype: torch.dtype) -> Tensor:
        """Padded model input (1, 3, b-a, Hp, Wp) for frames [a, b) of the padded chunk."""
        return preprocess(self.frames[self.index[a:b]], self.out_w, self.out_h, self.device,
                          dtype)

    def _place_dit(self, for_dit: bool) -> None:
        """DiT on the device for its stage; on the CPU during VAE work when offloading."""
        dit, s = self.model.dit, self.settings
        if self.device.type == "cpu":
            return
        where = next(dit.parameters()).device
        if not for_dit:
            if (s.offload_dit or s.stream_blocks) and where != self.host:
                dit.to(self.host)
            return
        if s.stream_blocks:
            for name, child in dit.named_children():
                if name != "blocks":
                    child.to(self.device)
        elif where != self.device or any(p.device != self.device for p in dit.parameters()):
            dit.to(self.device)  # moving clears the DiT's per-shape caches: only when needed

    def _slices(self, total: int, first: int, step: int) -> list[tuple[int, int]]:
        bounds = [0, min(first, total)]
        while bounds[-1] < total:
            bounds.append(min(bounds[-1] + step, total))
        return list(itertools.pairwise(bounds))

    # ------------------------------------------------------------------ encode
    def encode(self) -> Tensor:
        """Condition latents (T_lat, h, w, 16), scaled for the DiT, float32 on the device."""
        self._place_dit(False)
        vae = self.model.vae
        n = self.settings.encode_slice
        slices = self._slices(len(self.index), 1 + n, n)
        with cancel_hooks(vae, self.cancel, (CausalConv3d,)), conv_autotune(self.device):
            if self.settings.tile:
                mean, logvar = self._encode_tiled(slices)
                parts = [self._sample(mean[:, :, la:lb], logvar[:, :, la:lb], la)
                         for la, lb in self._latent_ranges(slices)]
                del mean, logvar
            else:
                state: Any = None
                parts = []
                for (a, b), (la, _) in zip(slices, self._latent_ranges(slices)):
                    check_cancel(self.cancel)
                    post, state = vae.encode_slice(self._pixels(a, b, vae.dtype), state,
                                                   self.options)
                    parts.append(self._sample(post.mean, post.logvar, la))
                    del post
                del state
        z = torch.cat(parts, dim=2)  # (1, C, T_lat, h, w)
        return vae.to_dit_latent(z).float()

    @staticmethod
    def _latent_ranges(slices: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """The latents [la, lb) each pixel slice [a, b) encodes to (4n+1 -> n+1, then /4)."""
        out = []
        for a, b in slices:
            la = 0 if a == 0 else (a - 1) // TEMPORAL_FACTOR + 1
            out.append((la, (b - 1) // TEMPORAL_FACTOR + 1))
        return out

    def _sample(self, mean: Tensor, logvar: Tensor, la: int) -> Tensor:
        """Posterior sample (1, C, t, h, w) of latents from `la`, noise keyed by frame."""
        eps = keyed_noise(self.seed, "posterior", self.keys[la:la + mean.shape[2]],
                          (mean.shape[1], self.h_lat, self.w_lat))  # (t, C, h, w)
        eps = eps.permute(1, 0, 2, 3).unsqueeze(0).to(self.device)
        return mean.float() + torch.exp(0.5 * logvar.float()) * eps

    def _encode_tiled(self, slices: list[tuple[int, int]]) -> tuple[Tensor, Tensor]:
        """Approximate spatial tiling: each overlapping pixel tile streams through every
        temporal slice (one tile's carries alive at a time); posteriors blended per tile."""
        vae = self.model.vae
        sf = vae.config.spatial_factor
        tile = self.settings.tile
        rows = plan_spans(self.h_lat, tile, TILE_OVERLAP)
        cols = plan_spans(self.w_lat, tile, TILE_OVERLAP)
        ranges = self._latent_ranges(slices)
        shape = (1, vae.config.latent_channels, self.t_lat, self.h_lat, self.w_lat)
        mean = torch.zeros(shape, device=self.device)
        logvar = torch.zeros(shape, device=self.device)
        for i, (r0, r1) in enumerate(rows):
            for j, (c0, c1) in enumerate(cols):
                w = tile_weights(rows, cols, i, j).to(self.device)
                state: Any = None
                for (a, b), (la, lb) in zip(slices, ranges):
                    check_cancel(self.cancel)
                    x = self._pixels(a, b, vae.dtype)[..., r0 * sf:r1 * sf, c0 * sf:c1 * sf]
                    post, state = vae.encode_slice(x, state, self.options)
                    del x
                    mean[:, :, la:lb, r0:r1, c0:c1] += post.mean.float() * w
                    logvar[:, :, la:lb, r0:r1, c0:c1] += post.logvar.float() * w
                    del post
                del state  # this tile's carries go before the next tile starts
        return mean, logvar

    # ------------------------------------------------------------------ denoise
    def denoise(self, cond: Tensor) -> Tensor:
        """Restored latents (T_lat, h, w, 16) from condition latents, window by window."""
        self._place_dit(True)
        m, engine = self.model, self.engine
        recipe = engine.recipe
        dit = m.dit
        pos = m.pos_emb.to(self.device, dit.dtype)
        neg = m.neg_emb.to(self.device, dit.dtype) if m.neg_emb is not None else None
        timesteps = diffusion.sampling_timesteps(recipe.steps, device=self.device)
        window = self.settings.dit_window or self.t_lat
        spans = plan_spans(self.t_lat, window, self.settings.dit_overlap)
        out = torch.zeros_like(cond)
        guidance = 2 if recipe.cfg_scale != 1.0 and neg is not None else 1
        self._dit_calls, self._dit_total = 0, max(1, len(spans) * len(timesteps) * guidance)
        self.context.report(PROGRESS_SHARE["encode"])
        streamer = self._streamer() if self.settings.stream_blocks else None
        with dit_block_hooks(dit, self.cancel, streamer), torch.inference_mode():
            for i, (a, b) in enumerate(spans):
                check_cancel(self.cancel)
                c = cond[a:b]
                shape = (self.h_lat, self.w_lat, c.shape[-1])
                noise = keyed_noise(self.seed, "noise", self.keys[a:b], shape).to(self.device)
                if recipe.cond_noise_scale > 0:
                    aug = keyed_noise(self.seed, "aug", self.keys[a:b], shape).to(self.device)
                    c = diffusion.noise_condition(c, aug, recipe.cond_noise_scale)
                predict = diffusion.guided(
                    self._predictor(c, pos), self._predictor(c, neg) if neg is not None else None,
                    recipe.cfg_scale, recipe.cfg_rescale)
                z = diffusion.euler_sample(noise, timesteps, predict)
                out[a:b] += z * span_weights(spans, i).to(self.device)[:, None, None, None]
        self.work.append(("dit", TEMPORAL_FACTOR * (window - 1) + 1, len(spans)))
        return out

    def _streamer(self) -> BlockStreamer:
        """The engine's block streamer for this DiT (built once: the arena is pinned once)."""
        streamer = getattr(self.engine, "block_streamer", None)
        dit = self.model.dit
        if streamer is None or streamer.dit is not dit or streamer.device != self.device:
            if streamer is not None:
                streamer.close()
            streamer = BlockStreamer(dit, self.device, self.host)
            self.engine.block_streamer = streamer
        return streamer

    def _predictor(self, cond: Tensor, txt: Tensor) -> Any:
        dit = self.model.dit
        t_, h, w, _ = cond.shape
        # Shapes stay in host memory: the DiT reads them as Python ints (no device round trip).
        vid_shape = torch.tensor([[t_, h, w]], dtype=torch.long)
        txt_shape = torch.tensor([[txt.shape[0]]], dtype=torch.long)

        def predict(x: Tensor, t: Tensor) -> Tensor:
            check_cancel(self.cancel)
            vid = diffusion.dit_input(x, cond).reshape(-1, x.shape[-1] + cond.shape[-1] + 1)
            v = dit(vid, txt, vid_shape, txt_shape, t.reshape(1).float())
            self._dit_calls += 1
            done = min(self._dit_calls / self._dit_total, 1.0)
            self.context.report(PROGRESS_SHARE["encode"] + PROGRESS_SHARE["dit"] * done)
            return v.reshape(x.shape).float()

        return predict

    # ------------------------------------------------------------------ decode
    def decode(self, latent: Tensor) -> np.ndarray:
        """(T, out_h, out_w, 3) float32 [0, 1]: decoded, colour-fixed, padding cropped."""
        self._place_dit(False)
        vae = self.model.vae
        z = vae.from_dit_latent(latent)  # (1, C, T_lat, h, w)
        out = np.empty((self.count, self.out_h, self.out_w, 3), np.float32)
        n = self.settings.decode_slice
        slices = self._slices(self.t_lat, 1 + n, n)
        with cancel_hooks(vae, self.cancel, (CausalConv3d,)), conv_autotune(self.device):
            if self.settings.tile:
                px = self._decode_tiled(z, slices)
                frame = 0
                while frame < min(self.count, px.shape[2]):
                    f = min(TEMPORAL_FACTOR * n + 1 if frame == 0 else TEMPORAL_FACTOR * n,
                            px.shape[2] - frame)
                    self._finish(px[:, :, frame:frame + f], frame, out)
                    frame += f
                del px
            else:
                state: Any = None
                frame = 0
                for la, lb in slices:
                    check_cancel(self.cancel)
                    px, state = vae.decode_slice(z[:, :, la:lb], state, self.options)
                    self._finish(px, frame, out)
                    frame += px.shape[2]
                    del px
                del state
        self.work.append(("vae", len(self.index), 1))
        return out

    def _finish(self, px: Tensor, frame: int, out: np.ndarray) -> None:
        """Colour-fix decoded pixels `px` (padded frames from `frame`) against the resized
        input, crop the padding and write them into `out`."""
        f = px.shape[2]
        if frame >= self.count:
            return
        t0 = time.perf_counter()
        ref = self._pixels(frame, frame + f, torch.float32)
        fixed = apply_color_fix(self.engine.color_fix, px[0].float().transpose(0, 1),
                                ref[0].transpose(0, 1))  # (f, 3, Hp, Wp) in [-1, 1]
        del ref
        keep = min(f, self.count - frame)
        out[frame:frame + keep] = postprocess(
            fixed.transpose(0, 1).unsqueeze(0), self.out_w, self.out_h)[:keep]
        self.color_seconds += time.perf_counter() - t0

    def _decode_tiled(self, z: Tensor, slices: list[tuple[int, int]]) -> Tensor:
        """Approximate spatial tiling: each overlapping latent tile streams through every
        temporal slice (one tile's carries alive at a time); pixels blended per tile into
        (1, 3, T, Hp, Wp) float32 on the device."""
        vae = self.model.vae
        sf = vae.config.spatial_factor
        tile = self.settings.tile
        rows = plan_spans(self.h_lat, tile, TILE_OVERLAP)
        cols = plan_spans(self.w_lat, tile, TILE_OVERLAP)
        prow = [(a * sf, b * sf) for a, b in rows]
        pcol = [(a * sf, b * sf) for a, b in cols]
        frames = TEMPORAL_FACTOR * (self.t_lat - 1) + 1
        out = torch.zeros((1, vae.config.out_channels, frames, self.ph, self.pw),
                          device=self.device)
        for i, (r0, r1) in enumerate(rows):
            for j, (c0, c1) in enumerate(cols):
                w = tile_weights(prow, pcol, i, j).to(self.device)
                state: Any = None
                frame = 0
                for la, lb in slices:
                    check_cancel(self.cancel)
                    px, state = vae.decode_slice(z[:, :, la:lb, r0:r1, c0:c1], state,
                                                 self.options)
                    f = px.shape[2]
                    out[:, :, frame:frame + f, r0 * sf:r1 * sf, c0 * sf:c1 * sf] += (
                        px.float() * w)
                    frame += f
                    del px
                del state  # this tile's carries go before the next tile starts
        return out
