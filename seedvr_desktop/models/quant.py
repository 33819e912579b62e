"""Low-precision weights that stay low-precision: fp8 and GGUF-quantised linear layers.

The community's low-VRAM files (fp8 safetensors, GGUF Q8_0/Q4_K...) only save memory if the
weights keep their stored form on the host *and* on the device. `QuantLinear` holds the stored
tensor (fp8, or the raw GGUF block bytes as uint8) as its `weight` buffer and dequantises it to
the activation dtype inside `forward`, one layer at a time: the full-precision copy of a layer
lives only while that layer runs. Cost: one dequantisation per layer per call (a few percent of
a matmul for Q8_0/fp8; the K-quants' bit unpacking a little more).

`module.to(dtype)` would upcast an fp8 buffer like any floating tensor, so `QuantLinear` keeps its
stored dtype across `.to()`/`.half()` and follows only device moves (as RopeFreqs does).
Dequantisers for Q8_0, Q4_K, Q5_K and Q6_K are written in torch so they run on the GPU; any other
GGUF block type falls back to the gguf package's numpy dequantiser on the CPU (slower, correct).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

FP8_DTYPES = (torch.float8_e4m3fn, torch.float8_e5m2)
QK_K = 256
# GGML block types by their numbers in the GGUF format (gguf.GGMLQuantizationType values).
GGML_F32, GGML_F16, GGML_Q8_0, GGML_Q4_K, GGML_Q5_K, GGML_Q6_K, GGML_BF16 = 0, 1, 8, 12, 13, 14, 30
# (elements per block, bytes per block) of the block types dequantised here in torch.
TORCH_BLOCKS = {GGML_Q8_0: (32, 34), GGML_Q4_K: (256, 144), GGML_Q5_K: (256, 176),
                GGML_Q6_K: (256, 210)}


def is_fp8(t: Tensor) -> bool:
    return t.dtype in FP8_DTYPES


class QuantLinear(nn.Module):
    """A Linear whose weight is stored fp8 (`kind="fp8"`) or GGUF-quantised (`kind="gguf"`).

    `weight` keeps the state-dict key of the nn.Linear it replaces; for GGUF it holds the raw
    block bytes (out_features, bytes_per_row) and `qtype` names the block type. `bias` (small)
    is an ordinary parameter in the compute dtype.
    """

    weight: Tensor
    scale_weight: Tensor | None

    def __init__(self, weight: Tensor, shape: tuple[int, int], *, kind: str, qtype: int = -1,
                 bias: Tensor | None = None, scale: Tensor | None = None) -> None:
        super().__init__()
        if kind not in ("fp8", "gguf"):
            raise ValueError(f"unknown quantised weight kind {kind!r}")
        self.kind = kind
        self.qtype = qtype
        self.out_features, self.in_features = shape
        self.register_buffer("weight", weight)
        # Optional per-tensor scale of "scaled fp8" files (weight ≈ fp8 · scale).
        self.register_buffer("scale_weight", scale)
        self.bias = nn.Parameter(bias, requires_grad=False) if bias is not None else None

    @property
    def stored_bytes(self) -> int:
        return self.weight.numel() * self.weight.element_size()

    def dequantized(self, dtype: torch.dtype) -> Tensor:
        """The (out, in) weight in `dtype`, made on the weight's device."""
        w: Tensor = self.weight
        if self.kind == "fp8":
            out = w.to(dtype)
        else:
            out = dequantize(w, self.qtype, (self.out_features, self.in_features), dtype)
        if self.scale_weight is not None:
            out = out * self.scale_weight.to(out.device, dtype)
        return out

    def forward(self, x: Tensor) -> Tensor:
        bias = self.bias.to(x.dtype) if self.bias is not None else None
        return F.linear(x, self.dequantized(x.dtype), bias)

    def extra_repr(self) -> str:
        what = str(self.weight.dtype).replace("torch.", "") if self.kind == "fp8" else \
            ggml_type_name(self.qtype)
        return f"in_features={self.in_features}, out_features={self.out_features}, {what}"

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> QuantLinear:
        # Keep the stored format; follow device moves only (an fp8 buffer is "floating" and
        # Module.to(dtype) would upcast it, undoing the point of the file).
        before = self.weight
        super()._apply(fn, recurse)
        after = self.weight
        if after.dtype != before.dtype and not before.is_meta:
            self.weight = before.to(after.device)
        return self


def ggml_type_name(qtype: int) -> str:
    try:
        from gguf import GGMLQuantizationType

        return GGMLQuantizationType(qtype).name
    except (ImportError, ValueError):
        return f"ggml type {qtype}"


# ---------------------------------------------------------------------------------- dequantise
def dequantize(raw: Tensor, qtype: int, shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
    """GGUF block bytes (uint8, any shape) -> float tensor of `shape` in `dtype`.

    Q8_0 and the K-quants run in torch on the tensor's device; other block types go through the
    gguf package's numpy code on the CPU.
    """
    blocks_of = TORCH_BLOCKS.get(qtype)
    if blocks_of is None:
        return _dequantize_numpy(raw, qtype, shape).to(raw.device, dtype)
    _, nbytes = blocks_of
    b = raw.reshape(-1, nbytes)
    if qtype == GGML_Q8_0:
        out = _q8_0(b)
    elif qtype == GGML_Q4_K:
        out = _q4_k(b)
    elif qtype == GGML_Q5_K:
        out = _q5_k(b)
    else:
        out = _q6_k(b)
    return out.reshape(shape).to(dtype)


def _f16(b: Tensor) -> Tensor:
    """(n, 2) uint8 -> (n, 1) float32 from little-endian fp16 bytes."""
    return b.contiguous().view(torch.float16).float()


def _shifts(values: tuple[int, ...], device: torch.device) -> Tensor:
    return torch.tensor(values, dtype=torch.uint8, device=device)


def _q8_0(b: Tensor) -> Tensor:
    d = _f16(b[:, :2])
    q = b[:, 2:].contiguous().view(torch.int8).float()
    return q * d


def _scale_min_k4(s: Tensor) -> tuple[Tensor, Tensor]:
    """12 packed bytes -> eight 6-bit scales and eight 6-bit mins per super-block (float32)."""
    s = s.reshape(-1, 3, 4)
    d, m, md = s[:, 0], s[:, 1], s[:, 2]
    sc = torch.cat((d & 0x3F, (md & 0x0F) | ((d >> 2) & 0x30)), dim=-1)
    mn = torch.cat((m & 0x3F, (md >> 4) | ((m >> 2) & 0x30)), dim=-1)
    return sc.float(), mn.float()


def _q4_k(b: Tensor) -> Tensor:
    n = b.shape[0]
    d, dmin = _f16(b[:, 0:2]), _f16(b[:, 2:4])
    sc, mn = _scale_min_k4(b[:, 4:16])
    qs = b[:, 16:].reshape(n, 4, 1, 32) >> _shifts((0, 4), b.device).reshape(1, 1, 2, 1)
    q = (qs & 0x0F).reshape(n, 8, 32).float()
    return ((d * sc)[..., None] * q - (dmin * mn)[..., None]).reshape(n, QK_K)


def _q5_k(b: Tensor) -> Tensor:
    n = b.shape[0]
    d, dmin = _f16(b[:, 0:2]), _f16(b[:, 2:4])
    sc, mn = _scale_min_k4(b[:, 4:16])
    qh = b[:, 16:48].reshape(n, 1, 1, 32) >> _shifts(tuple(range(8)), b.device).reshape(1, 1, 8, 1)
    ql = b[:, 48:].reshape(n, 4, 1, 32) >> _shifts((0, 4), b.device).reshape(1, 1, 2, 1)
    q = ((ql & 0x0F).reshape(n, 8, 32) | ((qh & 0x01).reshape(n, 8, 32) << 4)).float()
    return ((d * sc)[..., None] * q - (dmin * mn)[..., None]).reshape(n, QK_K)


def _q6_k(b: Tensor) -> Tensor:
    n = b.shape[0]
    ql = b[:, :128].reshape(n, 2, 1, 64) >> _shifts((0, 4), b.device).reshape(1, 1, 2, 1)
    qh = b[:, 128:192].reshape(n, 2, 1, 32) >> _shifts((0, 2, 4, 6), b.device).reshape(1, 1, 4, 1)
    scales = b[:, 192:208].contiguous().view(torch.int8).float()  # (n, 16)
    d = _f16(b[:, 208:210])
    q = ((ql & 0x0F).reshape(n, 8, 32) | ((qh & 0x03).reshape(n, 8, 32) << 4)).to(torch.int16)
    q = (q - 32).reshape(n, 16, 16).float()
    return ((d * scales)[..., None] * q).reshape(n, QK_K)


def _dequantize_numpy(raw: Tensor, qtype: int, shape: tuple[int, ...]) -> Tensor:
    import numpy as np
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize as np_dequantize

    data = raw.detach().to("cpu").numpy()
    out = np_dequantize(data, GGMLQuantizationType(qtype))
    return torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32)).reshape(shape)


# ---------------------------------------------------------------------------------- installing
def install_quantised(model: nn.Module, weights: dict[str, QuantLinear]) -> None:
    """Replace the nn.Linear at each `...weight` key's module path by its QuantLinear."""
    for key, qlin in weights.items():
        path = key.rsplit(".", 1)[0]
        parent_path, _, child = path.rpartition(".")
        parent = model.get_submodule(parent_path) if parent_path else model
        old = getattr(parent, child)
        if not isinstance(old, (nn.Linear, QuantLinear)):
            raise TypeError(f"{path} is a {type(old).__name__}, not a linear layer")
        setattr(parent, child, qlin)


def stored_bytes_per_param(model: nn.Module) -> float:
    """Average bytes per parameter as the weights are stored (fp8: ~1, Q4_K: ~0.56)."""
    total_bytes = 0
    total_params = 0
    for m in model.modules():
        if isinstance(m, QuantLinear):
            total_bytes += m.stored_bytes
            total_params += m.in_features * m.out_features
    seen = {id(m.weight) for m in model.modules() if isinstance(m, QuantLinear)}
    for t in [*model.parameters(), *model.buffers()]:
        if id(t) in seen:
            continue
        total_bytes += t.numel() * t.element_size()
        total_params += t.numel()
    return total_bytes / max(total_params, 1)
