"""Building blocks of the causal VAE: per-frame GroupNorm, resnet, down/upsamplers, mid block.

Module and parameter names follow the official diffusers-derived classes exactly (`norm1`,
`conv1`, `conv_shortcut`, `downsamplers.0.conv`, `upsamplers.0.upscale_conv`, `to_q`... ), so the
released checkpoint's keys map one to one. Every GroupNorm works per frame (statistics over one
frame's group, never over time): that is what keeps the VAE causal and lets temporal slicing be
exact. Every `forward` takes the call's `CausalContext`, which carries streaming state and
memory limits; the modules themselves hold nothing between calls.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seedvr_desktop.models.vae.causal_conv import CausalContext, CausalConv3d

MAX_ELEMENTS = 2**31 - 1  # no tensor past this: int32 indexing limits (cuDNN, MPS)


def frame_group_norm(
    x: Tensor, norm: nn.GroupNorm, ctx: CausalContext, *, silu: bool = False
) -> Tensor:
    """GroupNorm applied to each frame separately (+ SiLU in place): (B,C,T,H,W) -> same.

    Above `ctx.norm_max_bytes` the channels are normalised in chunks of whole groups (4 chunks
    for 2-byte dtypes, 2 otherwise, as the official code), which bounds the temporaries and is
    exact because groups never span chunks.
    """
    b, c, t, h, w = x.shape
    frames = x.transpose(1, 2).reshape(b * t, c, h, w)  # a view for B=1 channels-last input
    groups = norm.num_groups
    if frames.numel() * frames.element_size() > ctx.norm_max_bytes and groups > 1:
        chunks = _largest_divisor_at_most(groups, 4 if frames.element_size() == 2 else 2)
        out = torch.empty(frames.shape, dtype=frames.dtype, device=frames.device)
        per = c // chunks
        for i in range(chunks):
            sl = slice(i * per, (i + 1) * per)
            out[:, sl] = F.group_norm(
                frames[:, sl], groups // chunks, norm.weight[sl], norm.bias[sl], norm.eps
            )
    else:
        out = F.group_norm(frames, groups, norm.weight, norm.bias, norm.eps)
    if silu:
        F.silu(out, inplace=True)
    return out.reshape(b, t, c, h, w).transpose(1, 2)


def _largest_divisor_at_most(n: int, k: int) -> int:
    return max(d for d in range(1, min(n, k) + 1) if n % d == 0)


def causal_conv3x3(in_ch: int, out_ch: int, *, time_kernel: int = 3) -> CausalConv3d:
    """The standard causal conv of the VAE: k x 3 x 3, stride 1, 'same' size."""
    return CausalConv3d(
        in_ch,
        out_ch,
        (time_kernel, 3, 3),
        temporal_padding=time_kernel // 2,
        spatial_padding=(1, 1, 1, 1),
    )


class ResnetBlock3D(nn.Module):
    """GN-SiLU-conv1-GN-SiLU-conv2 plus a (1x1x1 conv when channels change) shortcut."""

    def __init__(
        self, in_ch: int, out_ch: int, groups: int, eps: float, *, full_time: bool = True
    ) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_ch, eps=eps)
        self.conv1 = causal_conv3x3(in_ch, out_ch, time_kernel=3 if full_time else 1)
        self.norm2 = nn.GroupNorm(groups, out_ch, eps=eps)
        self.conv2 = causal_conv3x3(out_ch, out_ch)
        self.conv_shortcut = CausalConv3d(in_ch, out_ch, 1) if in_ch != out_ch else None

    def forward(self, x: Tensor, ctx: CausalContext) -> Tensor:
        h = self.conv1(frame_group_norm(x, self.norm1, ctx, silu=True), ctx)
        h = self.conv2(frame_group_norm(h, self.norm2, ctx, silu=True), ctx)
        shortcut = self.conv_shortcut(x, ctx) if self.conv_shortcut is not None else x
        return h.add_(shortcut)  # h is a fresh conv output, safe to update in place


class Downsample3D(nn.Module):
    """Halve H and W (and T when `temporal`): pad right/bottom by one, then a strided conv."""

    def __init__(self, channels: int, *, temporal: bool) -> None:
        super().__init__()
        kt = 3 if temporal else 1
        self.conv = CausalConv3d(
            channels,
            channels,
            (kt, 3, 3),
            stride=(2 if temporal else 1, 2, 2),
            temporal_padding=1 if temporal else 0,
            spatial_padding=(0, 1, 0, 1),
        )

    def forward(self, x: Tensor, ctx: CausalContext) -> Tensor:
        return self.conv(x, ctx)


class Upsample3D(nn.Module):
    """Learned pixel-shuffle upsampling (1x1x1 conv to r*C channels, then a causal conv).

    Channel ((x*s + y)*z + zt)*C + c of `upscale_conv` goes to frame f*z+zt, row h*s+x, col
    w*s+y. With temporal doubling, frame 0 would appear twice at the start of a clip; the
    duplicate (flattened frame 1) is dropped there, so T -> 2T-1 on the first slice, 2T after.
    """

    def __init__(self, channels: int, *, temporal: bool, spatial: bool = True) -> None:
        super().__init__()
        self.channels = channels
        self.time_ratio = 2 if temporal else 1
        self.space_ratio = 2 if spatial else 1
        ratio = self.time_ratio * self.space_ratio**2
        self.conv = causal_conv3x3(channels, channels)
        self.upscale_conv = nn.Conv3d(channels, channels * ratio, kernel_size=1)
        with torch.no_grad():  # identity init, as the official module (checkpoints override it)
            if not self.upscale_conv.weight.is_meta:
                eye = torch.eye(channels).repeat(ratio, 1)
                self.upscale_conv.weight.copy_(eye.reshape_as(self.upscale_conv.weight))
                bias = self.upscale_conv.bias
                assert bias is not None  # nn.Conv3d builds a bias by default
                bias.zero_()

    def forward(self, x: Tensor, ctx: CausalContext) -> Tensor:
        b, c, t, h, w = x.shape
        z, s = self.time_ratio, self.space_ratio
        drop = z > 1 and ctx.first
        out = torch.empty(
            (b, c, t * z - int(drop), h * s, w * s),
            dtype=x.dtype,
            device=x.device,
            memory_format=ctx.format_for(x),
        )

        def blocks(o: Tensor, n: int, zz: int) -> Tensor:  # (B,C,n*zz,H*s,W*s) view
            return o.unflatten(2, (n, zz)).unflatten(4, (h, s)).unflatten(6, (w, s))

        whole = b * s * s * z * c * t * h * w  # elements of the full upscale_conv output
        if whole <= MAX_ELEMENTS and whole * x.element_size() <= ctx.conv_max_bytes:
            y = F.conv3d(x, self.upscale_conv.weight, self.upscale_conv.bias)  # (B,ssz*C,T,H,W)
            # (B, s, s, z, C, T, H, W) -> (B, C, T, z, H, s, W, s): a view, copied once below.
            y = y.unflatten(1, (s, s, z, c)).permute(0, 4, 5, 3, 6, 1, 7, 2)
            if drop:
                blocks(out[:, :, :1], 1, 1).copy_(y[:, :, :1, :1])
                if t > 1:
                    blocks(out[:, :, 1:], t - 1, z).copy_(y[:, :, 1:])
            else:
                blocks(out, t, z).copy_(y)
            del y
            return self.conv(out, ctx)
        # Large inputs (1080p: 1024 x 5 x 544 x 960 > 2^31 elements, past cuDNN's fast path and
        # the MPS limit): one group of C output channels at a time. A 1x1 conv computes every
        # output channel on its own, so the result is the same; only one group's output lives.
        weight, bias = self.upscale_conv.weight, self.upscale_conv.bias
        for a in range(s):
            for bb in range(s):
                for zt in range(z):
                    g = ((a * s + bb) * z + zt) * c
                    yg = F.conv3d(x, weight[g:g + c], None if bias is None else bias[g:g + c])
                    if drop:
                        if zt == 0:
                            blocks(out[:, :, :1], 1, 1)[:, :, :, 0, :, a, :, bb].copy_(yg[:, :, :1])
                        if t > 1:
                            blocks(out[:, :, 1:], t - 1, z)[:, :, :, zt, :, a, :, bb].copy_(
                                yg[:, :, 1:])
                    else:
                        blocks(out, t, z)[:, :, :, zt, :, a, :, bb].copy_(yg)
                    del yg
        return self.conv(out, ctx)


class SpatialAttention(nn.Module):
    """Single-head self-attention inside each frame (diffusers `Attention` names and maths)."""

    def __init__(self, channels: int, groups: int, eps: float) -> None:
        super().__init__()
        self.group_norm = nn.GroupNorm(groups, channels, eps=eps)
        self.to_q = nn.Linear(channels, channels)
        self.to_k = nn.Linear(channels, channels)
        self.to_v = nn.Linear(channels, channels)
        self.to_out = nn.ModuleList([nn.Linear(channels, channels)])

    def forward(self, x: Tensor, ctx: CausalContext) -> Tensor:
        b, c, t, h, w = x.shape
        frames = x.transpose(1, 2).reshape(b * t, c, h * w)  # (BT, C, HW)
        out = torch.empty(frames.shape, dtype=x.dtype, device=x.device)
        # q, k, v and the output are ~6 frame-sized temporaries: bound them like a conv input.
        per_frame = 6 * c * h * w * x.element_size()
        budget = ctx.conv_max_bytes
        step = b * t if math.isinf(budget) else max(1, min(b * t, int(budget // per_frame)))
        for i in range(0, b * t, step):
            f = frames[i : i + step]
            gn = self.group_norm
            n = F.group_norm(f, gn.num_groups, gn.weight, gn.bias, gn.eps).transpose(1, 2)
            q = self.to_q(n).unsqueeze(1)  # (n, 1 head, HW, C)
            k = self.to_k(n).unsqueeze(1)
            v = self.to_v(n).unsqueeze(1)
            a = F.scaled_dot_product_attention(q, k, v).squeeze(1)  # scale 1/sqrt(C)
            del q, k, v, n
            a = self.to_out[0](a)  # (n, HW, C)
            torch.add(a.transpose(1, 2), f, out=out[i : i + step])
        return out.reshape(b, t, c, h, w).transpose(1, 2)


class MidBlock3D(nn.Module):
    """resnet -> per-frame attention -> resnet at the lowest resolution."""

    def __init__(
        self, channels: int, groups: int, eps: float, *, attention: bool, full_time: bool
    ) -> None:
        super().__init__()
        self.attentions = nn.ModuleList(
            [SpatialAttention(channels, groups, eps)] if attention else []
        )
        self.resnets = nn.ModuleList(
            [ResnetBlock3D(channels, channels, groups, eps, full_time=full_time) for _ in range(2)]
        )

    def forward(self, x: Tensor, ctx: CausalContext) -> Tensor:
        x = self.resnets[0](x, ctx)
        if len(self.attentions):
            x = self.attentions[0](x, ctx)
        return self.resnets[1](x, ctx)
