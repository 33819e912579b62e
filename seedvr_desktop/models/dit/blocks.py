"""The MMDiT super-resolution block (official `mmdit_sr`, NaMMSRTransformerBlock), v1 and v2.

For each branch X in {vid, txt}:
    a  = rms(X) modulated with the attn (shift, scale)      -> attention (joint, windowed)
    X1 = X + proj_out(a) * attn gate
    m  = rms(X1) modulated with the mlp (shift, scale)      -> MLP
    X2 = X1 + MLP(m) * mlp gate
with weights per branch, or one `.all.` set in v2 layers >= mm_layers.

v2 last layer: the MLP, its norm and the ada are video-only, so the text skips its attention
modulation and gate and its MLP sub-block. Following the official code literally, the text output
of that layer is then 2 * (attention + text) -- unused by the video output, but it is what the
reference's per-block intermediates hold.
"""

from __future__ import annotations

from torch import Tensor, nn

from seedvr_desktop.models.dit.attention import WindowAttention
from seedvr_desktop.models.dit.config import DiTConfig
from seedvr_desktop.models.dit.layers import AdaSingle, GeluMLP, MMPair, RMSNorm, SwiGLU, emb_chunks
from seedvr_desktop.models.dit.packing import Packing


class MMSRBlock(nn.Module):
    def __init__(self, cfg: DiTConfig, index: int) -> None:
        super().__init__()
        shared = cfg.layer_is_shared(index)
        vid_only = cfg.is_v2 and index == cfg.num_layers - 1
        dim = cfg.vid_dim
        self.dim = dim
        self.norm = RMSNorm(dim, cfg.norm_eps, affine=False)  # no weights: no state-dict keys
        self.attn = WindowAttention(cfg, index)
        self.mlp: MMPair[nn.Module]
        if cfg.mlp_type == "swiglu":
            self.mlp = MMPair(lambda: SwiGLU(dim, cfg.expand_ratio), shared=shared,
                              vid_only=vid_only)
        else:
            self.mlp = MMPair(lambda: GeluMLP(dim, cfg.expand_ratio), shared=shared,
                              vid_only=vid_only)
        self.ada = MMPair(lambda: AdaSingle(dim), shared=shared, vid_only=vid_only)

    def forward(
        self,
        vid: Tensor,  # (L, dim)
        txt: Tensor,  # (Lt, dim)
        vid_shape: Tensor,  # (B, 3) token grid
        txt_shape: Tensor,  # (B, 1)
        *,
        emb: Tensor,  # (B, 6·dim)
        packing: Packing,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        # Per-branch (shift, scale, gate) rows for the attn (0) and mlp (1) layers; (B, dim) or,
        # for a packed batch, gathered per token to (L, dim).
        mod = {
            branch: [_per_token(c, packing.token_sample(branch)) for layer in (0, 1)
                     for c in emb_chunks(emb, self.dim, layer)]
            for branch in ("vid", "txt")
        }
        vid_ada, txt_ada = self.ada.branch("vid"), self.ada.branch("txt")

        vid_a = vid_ada.modulate_in(self.norm(vid), mod["vid"][0], mod["vid"][1], "attn")
        txt_a = self.norm(txt)
        if txt_ada is not None:
            txt_a = txt_ada.modulate_in(txt_a, mod["txt"][0], mod["txt"][1], "attn")
        vid_a, txt_a = self.attn(vid_a, txt_a, packing)
        vid_a = vid_ada.gate_out(vid_a, mod["vid"][2], "attn")
        if txt_ada is not None:
            txt_a = txt_ada.gate_out(txt_a, mod["txt"][2], "attn")
        vid_a = vid_a + vid
        txt_a = txt_a + txt

        vid_m = vid_ada.modulate_in(self.norm(vid_a), mod["vid"][3], mod["vid"][4], "mlp")
        vid_m = vid_ada.gate_out(self.mlp.branch("vid")(vid_m), mod["vid"][5], "mlp")
        if txt_ada is not None:
            txt_mlp = self.mlp.branch("txt")
            assert txt_mlp is not None  # built with the same vid_only as the ada
            txt_m = txt_ada.modulate_in(self.norm(txt_a), mod["txt"][3], mod["txt"][4], "mlp")
            txt_m = txt_ada.gate_out(txt_mlp(txt_m), mod["txt"][5], "mlp")
        else:
            txt_m = txt_a  # vid-only norm/mlp/ada leave the text as it is
        return vid_m + vid_a, txt_m + txt_a, vid_shape, txt_shape


def _per_token(row: Tensor, token_sample: Tensor | None) -> Tensor:
    """(B, dim) per-sample values -> broadcastable (1, dim) for B == 1, else (L, dim)."""
    return row if token_sample is None else row.index_select(0, token_sample)
