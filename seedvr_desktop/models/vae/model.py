"""The SeedVR causal video VAE: encoder, decoder and the wrapper the engine calls.

Pixels are (B, 3, T, H, W) in [-1, 1] with T = 4n+1 (or (B, 3, H, W) images); latents are
(B, 16, n+1, H/8, W/8). Because every conv is causal and every norm/attention is per frame, a
clip can be processed in temporal slices with each conv's carry handed from slice to slice
(`encode_slice`/`decode_slice`), and the result equals whole-clip processing. `encode`/`decode`
do that slicing internally (by default like the official inference: 5 frames then 4 per slice
for encoding, 2 latents then 1 for decoding), which bounds activation memory by the slice size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from seedvr_desktop.models.vae.blocks import (
    Downsample3D,
    MidBlock3D,
    ResnetBlock3D,
    Upsample3D,
    causal_conv3x3,
    frame_group_norm,
)
from seedvr_desktop.models.vae.causal_conv import CausalContext, CausalConv3d
from seedvr_desktop.models.vae.config import VAEConfig

GIB = 1024**3


@dataclass(frozen=True)
class VAEOptions:
    """How a VAE call trades memory for speed; none of these change the result.

    `encode_slice`: frames per temporal slice after the first slice (which has one more);
    `decode_slice`: latents per slice likewise; None processes the whole clip at once.
    `conv_max_bytes`: tile a conv spatially when its padded input is larger;
    `norm_max_bytes`: normalise larger GroupNorm inputs in channel chunks. None = unlimited.
    `channels_last`: run activations in channels_last_3d (NDHWC, cuDNN's fast layout);
    None = on CUDA only.
    """

    encode_slice: int | None = 4
    decode_slice: int | None = 1
    conv_max_bytes: float | None = None
    norm_max_bytes: float | None = None
    channels_last: bool | None = None

    def memory_format(self, x: Tensor) -> torch.memory_format:
        use = x.is_cuda if self.channels_last is None else self.channels_last
        return torch.channels_last_3d if use else torch.contiguous_format

    @classmethod
    def official(cls) -> VAEOptions:
        """The official inference settings (slicing 4, 0.5 GiB conv and norm limits)."""
        return cls(4, 1, 0.5 * GIB, 0.5 * GIB)


@dataclass(frozen=True)
class Posterior:
    """Diagonal Gaussian over latents: mean and log-variance (clamped to [-30, 20])."""

    mean: Tensor  # (B, C, T, H, W)
    logvar: Tensor

    @property
    def std(self) -> Tensor:
        return torch.exp(0.5 * self.logvar)

    def sample(
        self, noise: Tensor | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        """mean + std * noise; noise is N(0,1) in the posterior's dtype unless supplied."""
        if noise is None:
            noise = torch.randn(
                self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype
            )
        return self.mean + self.std * noise.to(self.mean)

    def mode(self) -> Tensor:
        return self.mean


@dataclass(frozen=True)
class StreamState:
    """What one slice hands to the next: each causal conv's unfinished input frames."""

    carry: dict[str, Tensor] = field(default_factory=dict)
    frames: int = 0  # input frames (encode) or latents (decode) consumed so far


class Encoder(nn.Module):
    """Pixels (B,3,T,H,W) -> posterior parameters (B, 2*latent, T', H/8, W/8)."""

    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        ch, g, eps = cfg.block_out_channels, cfg.norm_num_groups, cfg.norm_eps
        full = cfg.time_receptive_field == "full"
        self.conv_in = causal_conv3x3(cfg.in_channels, ch[0])
        self.down_blocks = nn.ModuleList()
        prev = ch[0]
        for i, out in enumerate(ch):
            block = nn.Module()
            block.resnets = nn.ModuleList(
                ResnetBlock3D(prev if j == 0 else out, out, g, eps, full_time=full)
                for j in range(cfg.layers_per_block)
            )
            if i < cfg.num_blocks - 1:
                block.downsamplers = nn.ModuleList(
                    [Downsample3D(out, temporal=cfg.encoder_temporal_down(i))]
                )
            self.down_blocks.append(block)
            prev = out
        self.mid_block = MidBlock3D(ch[-1], g, eps, attention=cfg.attention, full_time=full)
        self.conv_norm_out = nn.GroupNorm(g, ch[-1], eps=eps)
        self.conv_out = causal_conv3x3(ch[-1], 2 * cfg.latent_channels)

    def forward(self, x: Tensor, ctx: CausalContext) -> Tensor:
        x = self.conv_in(x, ctx)
        for block in self.down_blocks:
            resnets = block.resnets
            assert isinstance(resnets, nn.ModuleList)  # built so in __init__
            for resnet in resnets:
                x = resnet(x, ctx)
            if hasattr(block, "downsamplers"):
                downsamplers = block.downsamplers
                assert isinstance(downsamplers, nn.ModuleList)
                x = downsamplers[0](x, ctx)
        x = self.mid_block(x, ctx)
        return self.conv_out(frame_group_norm(x, self.conv_norm_out, ctx, silu=True), ctx)


class Decoder(nn.Module):
    """Latents (B, latent, T', h, w) -> pixels (B, 3, 4(T'-1)+1, 8h, 8w)."""

    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        ch, g, eps = cfg.block_out_channels, cfg.norm_num_groups, cfg.norm_eps
        full = cfg.time_receptive_field == "full"
        rev = list(reversed(ch))
        self.conv_in = causal_conv3x3(cfg.latent_channels, rev[0])
        self.up_blocks = nn.ModuleList()  # registered before mid_block: official key order
        prev = rev[0]
        for i, out in enumerate(rev):
            block = nn.Module()
            block.resnets = nn.ModuleList(
                ResnetBlock3D(prev if j == 0 else out, out, g, eps, full_time=full)
                for j in range(cfg.layers_per_block + 1)
            )
            if i < cfg.num_blocks - 1:
                block.upsamplers = nn.ModuleList(
                    [Upsample3D(out, temporal=cfg.decoder_temporal_up(i))]
                )
            self.up_blocks.append(block)
            prev = out
        self.mid_block = MidBlock3D(rev[0], g, eps, attention=cfg.attention, full_time=full)
        self.conv_norm_out = nn.GroupNorm(g, ch[0], eps=eps)
        self.conv_out = causal_conv3x3(ch[0], cfg.out_channels)

    def forward(self, z: Tensor, ctx: CausalContext) -> Tensor:
        x = self.mid_block(self.conv_in(z, ctx), ctx)
        for block in self.up_blocks:
            resnets = block.resnets
            assert isinstance(resnets, nn.ModuleList)  # built so in __init__
            for resnet in resnets:
                x = resnet(x, ctx)
            if hasattr(block, "upsamplers"):
                upsamplers = block.upsamplers
                assert isinstance(upsamplers, nn.ModuleList)
                x = upsamplers[0](x, ctx)
        return self.conv_out(frame_group_norm(x, self.conv_norm_out, ctx, silu=True), ctx)


class VideoVAE(nn.Module):
    """The official `VideoAutoencoderKLWrapper`, weight-compatible, with explicit streaming."""

    def __init__(self, config: VAEConfig | None = None, options: VAEOptions | None = None) -> None:
        super().__init__()
        self.config = cfg = config or VAEConfig()
        self.options = options or VAEOptions()  # default per-call settings (overridable)
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        two = 2 * cfg.latent_channels
        self.quant_conv = CausalConv3d(two, two, 1) if cfg.use_quant_conv else None
        lat = cfg.latent_channels
        self.post_quant_conv = CausalConv3d(lat, lat, 1) if cfg.use_post_quant_conv else None
        for name, module in self.named_modules():
            if isinstance(module, CausalConv3d):
                module.stream_key = name

    @property
    def dtype(self) -> torch.dtype:
        return self.encoder.conv_in.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.encoder.conv_in.weight.device

    # ------------------------------------------------------------------ whole clips
    @torch.no_grad()
    def encode(self, x: Tensor, options: VAEOptions | None = None) -> Posterior:
        """Pixels (B,3,T,H,W) with T = 4n+1, or (B,3,H,W), in [-1,1] -> latent posterior (5-D)."""
        opts = options or self.options
        if x.dim() == 4:
            x = x.unsqueeze(2)
        tf = self.config.temporal_factor
        if x.dim() != 5 or x.shape[2] % tf != 1 % tf:
            raise ValueError(
                f"VAE input must be (B,C,T,H,W) with T = {tf}n+1, got {tuple(x.shape)}"
            )
        n = opts.encode_slice
        if n is None or x.shape[2] - 1 <= n:
            post, _ = self._encode_part(x, None, opts, streaming=False)
            return post
        if n % tf:
            raise ValueError(f"encode_slice must be a multiple of {tf}")
        parts: list[Posterior] = []
        state: StreamState | None = None
        starts = [0, *range(1 + n, x.shape[2], n)]
        for a, b in zip(starts, [*starts[1:], x.shape[2]]):
            post, state = self.encode_slice(x[:, :, a:b], state, opts)
            parts.append(post)
        return Posterior(
            torch.cat([p.mean for p in parts], 2), torch.cat([p.logvar for p in parts], 2)
        )

    @torch.no_grad()
    def decode(self, z: Tensor, options: VAEOptions | None = None) -> Tensor:
        """Latents (B,C,T',h,w) -> pixels (B,3,4(T'-1)+1,8h,8w); a 4-D latent gives a 4-D image."""
        opts = options or self.options
        image = z.dim() == 4
        if image:
            z = z.unsqueeze(2)
        n = opts.decode_slice
        if n is None or z.shape[2] - 1 <= n:
            out, _ = self._decode_part(z, None, opts, streaming=False)
        else:
            pieces: list[Tensor] = []
            state: StreamState | None = None
            starts = [0, *range(1 + n, z.shape[2], n)]
            for a, b in zip(starts, [*starts[1:], z.shape[2]]):
                piece, state = self.decode_slice(z[:, :, a:b], state, opts)
                pieces.append(piece)
            out = torch.cat(pieces, 2)
        return out.squeeze(2) if image else out

    def sample(
        self,
        posterior: Posterior,
        noise: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """A latent drawn from the posterior (what the official inference feeds the DiT)."""
        return posterior.sample(noise, generator)

    # ------------------------------------------------------------------ streaming
    @torch.no_grad()
    def encode_slice(
        self, x: Tensor, state: StreamState | None, options: VAEOptions | None = None
    ) -> tuple[Posterior, StreamState]:
        """Encode the next frames of a clip; pass the returned state with the following slice.

        The first slice (state None) needs 4n+1 frames, later ones a positive multiple of 4.
        """
        tf = self.config.temporal_factor
        t = x.shape[2]
        ok = (t % tf == 1 % tf) if state is None else (t > 0 and t % tf == 0)
        if not ok:
            need = f"{tf}n+1" if state is None else f"a positive multiple of {tf}"
            raise ValueError(f"this encode slice needs {need} frames, got {t}")
        post, carry = self._encode_part(x, state, options or self.options, streaming=True)
        return post, StreamState(carry, (state.frames if state else 0) + t)

    @torch.no_grad()
    def decode_slice(
        self, z: Tensor, state: StreamState | None, options: VAEOptions | None = None
    ) -> tuple[Tensor, StreamState]:
        """Decode the next latents of a clip (any count >= 1); returns frames and the new state."""
        if z.shape[2] < 1:
            raise ValueError("a decode slice needs at least one latent frame")
        out, carry = self._decode_part(z, state, options or self.options, streaming=True)
        return out, StreamState(carry, (state.frames if state else 0) + z.shape[2])

    # ------------------------------------------------------------------ internals
    def _context(
        self, x: Tensor, state: StreamState | None, opts: VAEOptions, streaming: bool
    ) -> CausalContext:
        def limit(v: float | None) -> float:
            if v is not None and v <= 0:
                raise ValueError("memory limits must be positive byte counts")
            return math.inf if v is None else float(v)

        return CausalContext(
            first=state is None,
            streaming=streaming,
            carry_in=state.carry if state is not None else {},
            conv_max_bytes=limit(opts.conv_max_bytes),
            norm_max_bytes=limit(opts.norm_max_bytes),
            memory_format=opts.memory_format(x),
        )

    def _prepare(self, x: Tensor, opts: VAEOptions) -> Tensor:
        x = x.to(device=self.device, dtype=self.dtype)
        return x.contiguous(memory_format=opts.memory_format(x))

    def _encode_part(
        self, x: Tensor, state: StreamState | None, opts: VAEOptions, *, streaming: bool
    ) -> tuple[Posterior, dict[str, Tensor]]:
        x = self._prepare(x, opts)
        ctx = self._context(x, state, opts, streaming)
        h = self.encoder(x, ctx)
        if self.quant_conv is not None:
            h = self.quant_conv(h, ctx)
        mean, logvar = h.contiguous().chunk(2, dim=1)
        return Posterior(mean, logvar.clamp(-30.0, 20.0)), ctx.carry_out

    def _decode_part(
        self, z: Tensor, state: StreamState | None, opts: VAEOptions, *, streaming: bool
    ) -> tuple[Tensor, dict[str, Tensor]]:
        z = self._prepare(z, opts)
        ctx = self._context(z, state, opts, streaming)
        if self.post_quant_conv is not None:
            z = self.post_quant_conv(z, ctx)
        return self.decoder(z, ctx).contiguous(), ctx.carry_out

    # ------------------------------------------------------------------ DiT latent layout
    def to_dit_latent(self, z: Tensor) -> Tensor:
        """(1,C,T,h,w) or (C,T,h,w) VAE latent -> (T,h,w,C) scaled latent the DiT works on."""
        if z.dim() == 5:
            if z.shape[0] != 1:
                raise ValueError("to_dit_latent takes one sample at a time")
            z = z[0]
        cfg = self.config
        return ((z - cfg.shifting_factor) * cfg.scaling_factor).permute(1, 2, 3, 0)

    def from_dit_latent(self, x: Tensor) -> Tensor:
        """(T,h,w,C) DiT latent -> (1,C,T,h,w) VAE latent ready for `decode`."""
        cfg = self.config
        return (x / cfg.scaling_factor + cfg.shifting_factor).permute(3, 0, 1, 2).unsqueeze(0)
