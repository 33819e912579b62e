"""Windowed multi-modal attention (official NaSwinAttention) on plain PyTorch SDPA.

Each window of each sample forms one attention segment: the window's video tokens followed by all
text tokens of that sample; every token attends to every token of its segment (no mask, scale
1/sqrt(head_dim)). Video outputs go back to their token positions; each text token gets one
output per window of its sample and keeps their mean. This is variable-length attention without
flash-attn, in two modes:

* fast (default for bf16/fp16 models): segments of equal shape are stacked and run as one batched
  `scaled_dot_product_attention` call, so PyTorch picks its fused kernels (flash / memory-
  efficient on CUDA, the flash CPU kernel otherwise), computed in bf16 like flash-attn (fp16
  for fp16 models);
* exact (default for float32 models): each segment alone through the float32 "math" kernel,
  which is what the reference computes; outputs then match it bit for bit on the same CPU kernels.

Precision: like the official code, q, k and v are rounded to bfloat16 before the attention for
bf16 and float32 models (and in exact mode), and the result is rounded to bfloat16 before it is
cast back. An fp16 model (GPUs without native bf16) computes in fp16 with no bf16 casts: a bf16
SDPA there has no fused kernel and falls back to the math kernel's full score matrices. Where a
device has no bf16 at all (older MPS), `round_dtype` replaces bf16 (float32 = no rounding).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from seedvr_desktop.models.dit.config import DiTConfig
from seedvr_desktop.models.dit.layers import MMPair, RMSNorm, mm_apply
from seedvr_desktop.models.dit.packing import Packing, SegmentGroup, WindowPlan
from seedvr_desktop.models.dit.rope import Rope3d, apply_rope


class WindowAttention(nn.Module):
    """Attention of one block: qkv projection, qk RMS norm, RoPE, windowed SDPA, out projection.

    Submodule names and order (proj_qkv, proj_out, norm_q, norm_k, rope) give the official
    state-dict keys, e.g. `blocks.0.attn.proj_qkv.vid.weight`, `blocks.10.attn.norm_q.all.weight`.
    """

    def __init__(self, cfg: DiTConfig, index: int) -> None:
        super().__init__()
        shared = cfg.layer_is_shared(index)
        dim, inner, head_dim = cfg.vid_dim, cfg.inner_dim, cfg.head_dim
        self.heads = cfg.heads
        self.head_dim = head_dim
        self.window = cfg.window[index]  # already a tuple of ints (DiTConfig normalises it)
        self.method = cfg.window_method[index]
        self.text_rope = cfg.is_v2  # v1 rotates video only
        # None: exact reference arithmetic for float32 models, fused fast kernels otherwise.
        self.exact: bool | None = None
        # None: the official bf16 rounding (fp16 for fp16 models); else the dtype q/k/v and the
        # output are rounded to (float32: none), for devices without bf16.
        self.round_dtype: torch.dtype | None = None
        self.proj_qkv = MMPair(lambda: nn.Linear(dim, 3 * inner, bias=cfg.qk_bias), shared=shared)
        self.proj_out = MMPair(lambda: nn.Linear(inner, dim), shared=shared)
        # v1 never shares the qk norms; v2 shares them in the `.all.` layers.
        self.norm_q = MMPair(lambda: RMSNorm(head_dim, cfg.norm_eps, affine=True), shared=shared)
        self.norm_k = MMPair(lambda: RMSNorm(head_dim, cfg.norm_eps, affine=True), shared=shared)
        kind = "mmrope3d" if cfg.is_v2 else "pixel"
        self.rope = Rope3d(kind, head_dim, cfg.rope_dim)

    def forward(self, vid: Tensor, txt: Tensor, packing: Packing) -> tuple[Tensor, Tensor]:
        """vid (L, dim), txt (Lt, dim) -> attention outputs after proj_out, same shapes."""
        h, d = self.heads, self.head_dim
        vid_qkv, txt_qkv = mm_apply(self.proj_qkv, vid, txt)
        # (L, 3·H·D) laid out as (q|k|v, head, channel).
        vid_q, vid_k, vid_v = vid_qkv.view(-1, 3, h, d).unbind(1)
        txt_q, txt_k, txt_v = txt_qkv.view(-1, 3, h, d).unbind(1)
        vid_q, txt_q = mm_apply(self.norm_q, vid_q, txt_q)
        vid_k, txt_k = mm_apply(self.norm_k, vid_k, txt_k)

        plan = packing.window_plan(self.window, self.method, self.rope.kind)
        cos, sin = self._vid_tables(packing, plan)
        vid_q = apply_rope(vid_q, cos, sin)
        vid_k = apply_rope(vid_k, cos, sin)
        if self.text_rope:
            src, tcos, tsin = self._txt_tables(packing, plan)
            txt_q = apply_rope(txt_q.index_select(0, src), tcos, tsin)
            txt_k = apply_rope(txt_k.index_select(0, src), tcos, tsin)

        exact = self.exact if self.exact is not None else vid.dtype == torch.float32
        vid_out, txt_out = windowed_attention(
            vid_q, vid_k, vid_v, txt_q, txt_k, txt_v, plan, packing, exact=exact,
            round_dtype=self.round_dtype,
        )
        return mm_apply(self.proj_out, vid_out.flatten(1), txt_out.flatten(1))

    # Per-token cos/sin tables depend only on the partition and the frequency values, which
    # are the same in every block of a released checkpoint: caching by value shares them.
    def _vid_tables(self, packing: Packing, plan: WindowPlan) -> tuple[Tensor, Tensor]:
        key = ("rope_vid", self.window, self.method, self.rope.kind, self.rope.freq_key())
        return packing.cached(key, lambda: self.rope.cos_sin(plan.vid_pos))

    def _txt_tables(self, packing: Packing, plan: WindowPlan) -> tuple[Tensor, Tensor, Tensor]:
        counts = plan.windows_per_sample
        key = ("rope_txt", counts, self.rope.kind, self.rope.freq_key())

        def build() -> tuple[Tensor, Tensor, Tensor]:
            src, pos = packing.txt_rope_rows(counts)
            cos, sin = self.rope.cos_sin(pos[:, None].expand(-1, 3))
            return src, cos, sin

        return packing.cached(key, build)


def windowed_attention(
    vid_q: Tensor,
    vid_k: Tensor,
    vid_v: Tensor,
    txt_q: Tensor,
    txt_k: Tensor,
    txt_v: Tensor,
    plan: WindowPlan,
    packing: Packing,
    *,
    exact: bool,
    round_dtype: torch.dtype | None = None,
) -> tuple[Tensor, Tensor]:
    """Attention over all segments of a plan.

    Inputs are (L, H, D) video and (Lt, H, D) text tensors in packed order (RoPE applied).
    Returns video outputs (L, H, D) in the same order and text outputs (Lt, H, D), each text
    output being the mean over the windows of its sample.

    `exact` runs each segment on its own through the float32 "math" SDPA kernel, which is what
    the reference computes (bit for bit on the same CPU kernels); otherwise segments of equal
    shape are batched into one fused SDPA call (flash / memory-efficient kernels), the fast path.
    `round_dtype` (default: bf16, or fp16 for an fp16 fast path) is what q, k, v and the output
    are rounded to; the attention computes in it, or in float32 when exact or for fp32 models.
    """
    out_dtype = vid_q.dtype
    rnd = attention_dtypes(out_dtype, exact, round_dtype)
    compute = torch.float32 if exact or out_dtype == torch.float32 else rnd
    heads, dim = vid_q.shape[1], vid_q.shape[2]
    vid_out = vid_q.new_empty(vid_q.shape)
    copies = vid_q.new_empty((plan.txt_copy_len, heads, dim))
    for group in plan.groups:
        s = group.vid_idx.shape[1]
        if exact:
            with sdpa_kernel(SDPBackend.MATH):
                for i in range(group.vid_idx.shape[0]):
                    pick = slice(i, i + 1)
                    one = SegmentGroup(
                        group.vid_idx[pick], group.txt_idx[pick], group.txt_slot[pick]
                    )
                    out = _attend(vid_q, vid_k, vid_v, txt_q, txt_k, txt_v, one, compute, rnd,
                                  out_dtype)
                    vid_out[one.vid_idx[0]] = out[0, :s]
                    copies[one.txt_slot[0]] = out[0, s:]
        else:
            out = _attend(vid_q, vid_k, vid_v, txt_q, txt_k, txt_v, group, compute, rnd,
                          out_dtype)
            vid_out[group.vid_idx.reshape(-1)] = out[:, :s].reshape(-1, heads, dim)
            copies[group.txt_slot.reshape(-1)] = out[:, s:].reshape(-1, heads, dim)
    txt_out = [
        copies[base : base + n_txt * n_win].view(n_txt, n_win, heads, dim).mean(1)
        for base, n_txt, n_win in zip(
            plan.txt_copy_base, packing.txt_lens, plan.windows_per_sample
        )
    ]
    return vid_out, txt_out[0] if len(txt_out) == 1 else torch.cat(txt_out)


def _attend(
    vid_q: Tensor,
    vid_k: Tensor,
    vid_v: Tensor,
    txt_q: Tensor,
    txt_k: Tensor,
    txt_v: Tensor,
    group: SegmentGroup,
    compute: torch.dtype,
    rnd: torch.dtype,
    out_dtype: torch.dtype,
) -> Tensor:
    """SDPA over the group's segments -> (n, S+Lt, H, D) in out_dtype, rounded through `rnd`."""
    q = _segments(vid_q, txt_q, group, compute, rnd)  # (n, H, S+Lt, D)
    k = _segments(vid_k, txt_k, group, compute, rnd)
    v = _segments(vid_v, txt_v, group, compute, rnd)
    out = F.scaled_dot_product_attention(q, k, v)  # scale 1/sqrt(D)
    return out.transpose(1, 2).to(rnd).to(out_dtype)


def attention_dtypes(out_dtype: torch.dtype, exact: bool,
                     round_dtype: torch.dtype | None) -> torch.dtype:
    """The dtype q/k/v are rounded to: the official bf16, fp16 on an fp16 fast path, or the
    device's override."""
    if round_dtype is not None:
        return round_dtype
    if out_dtype == torch.float16 and not exact:
        return torch.float16
    return torch.bfloat16


def _segments(vid: Tensor, txt: Tensor, group: SegmentGroup, compute: torch.dtype,
              rnd: torch.dtype) -> Tensor:
    """Gather the group's segments as (n, H, S+Lt, D), rounded through `rnd` (official: bf16)."""
    seg = torch.cat((vid[group.vid_idx], txt[group.txt_idx]), dim=1)  # (n, S+Lt, H, D)
    return seg.to(rnd).to(compute).transpose(1, 2)
