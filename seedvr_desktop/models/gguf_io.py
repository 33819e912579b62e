"""GGUF model files (ComfyUI-GGUF / SeedVR2 community convention), read and written.

Reading: tensor names are the official checkpoint keys, optionally prefixed
`model.diffusion_model.`; a tensor's logical shape is the `comfy.gguf.orig_shape.NAME` metadata
entry when present (converters flatten some tensors), else the GGUF dims reversed (GGUF lists
the fastest-varying dimension first). F32/F16/BF16 tensors come back as ordinary torch tensors;
quantised ones as `GGUFTensor` (raw block bytes + block type + shape), which the loader turns into
`QuantLinear` layers that dequantise at use. The file's data is copied once into RAM (quantised
size), so the file can be replaced while the model runs.

Writing (`write_gguf`) exists for conversions and tests: Q8_0 uses the gguf package's quantiser;
Q4_K, which the package cannot quantise, uses `quantize_q4_k` here (a plain min/max fit per
32-value sub-block: the ggml format, not ggml's iterative search, so slightly less accurate).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from seedvr_desktop.errors import ModelError
from seedvr_desktop.models.quant import GGML_BF16, GGML_F16, GGML_F32, ggml_type_name

PREFIXES = ("model.diffusion_model.", "diffusion_model.")
ORIG_SHAPE = "comfy.gguf.orig_shape."
MAGIC = b"GGUF"


@dataclass
class GGUFTensor:
    """One quantised tensor: raw GGUF blocks (uint8), block type, logical shape."""

    data: Tensor
    qtype: int
    shape: tuple[int, ...]

    @property
    def type_name(self) -> str:
        return ggml_type_name(self.qtype)


def read_gguf(path: str | os.PathLike[str]) -> dict[str, Tensor | GGUFTensor]:
    """All tensors of a GGUF file by official key (prefix stripped)."""
    try:
        from gguf import GGUFReader
    except ImportError as exc:  # pragma: no cover - gguf is a dependency
        raise ModelError("reading .gguf files needs the 'gguf' package (pip install gguf)") from exc
    p = Path(path)
    try:
        reader = GGUFReader(p)
    except (ValueError, OSError, KeyError, IndexError) as exc:
        raise ModelError(f"damaged or not a model file: {p.name}") from exc
    shapes: dict[str, tuple[int, ...]] = {}
    for name, fld in reader.fields.items():
        if name.startswith(ORIG_SHAPE):
            shapes[name[len(ORIG_SHAPE):]] = tuple(int(v) for v in fld.contents())
    out: dict[str, Tensor | GGUFTensor] = {}
    for t in reader.tensors:
        key = _strip(t.name)
        shape = shapes.get(t.name) or shapes.get(key) or tuple(int(v) for v in reversed(t.shape))
        qtype = int(t.tensor_type)
        data = np.array(t.data)  # copy out of the memory map
        if qtype in (GGML_F32, GGML_F16):
            out[key] = torch.from_numpy(data).reshape(shape)
        elif qtype == GGML_BF16:
            out[key] = torch.from_numpy(data.view(np.uint8)).view(torch.bfloat16).reshape(shape)
        elif data.dtype == np.uint8:
            out[key] = GGUFTensor(torch.from_numpy(data), qtype, shape)
        else:
            raise ModelError(f"{p.name}: tensor {t.name} has unsupported GGUF type "
                             f"{ggml_type_name(qtype)}")
    if not out:
        raise ModelError(f"{p.name} contains no tensors")
    return out


def _strip(name: str) -> str:
    for prefix in PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def gguf_summary(path: str | os.PathLike[str]) -> str:
    """The dominant block type of the file's big tensors, e.g. "Q4_K" (for `models list`)."""
    from gguf import GGUFReader

    counts: dict[str, int] = {}
    for t in GGUFReader(Path(path)).tensors:
        name = ggml_type_name(int(t.tensor_type))
        counts[name] = counts.get(name, 0) + int(t.n_bytes)
    return max(counts, key=lambda k: counts[k]) if counts else "empty"


# ---------------------------------------------------------------------------------- writing
def write_gguf(state: Mapping[str, Tensor], path: str | os.PathLike[str],
               qtype_for: Callable[[str, Tensor], str], *, prefix: str = "",
               arch: str = "seedvr2") -> Path:
    """Write `state` as GGUF; `qtype_for(key, tensor)` names each tensor's type
    ("F32", "F16", "BF16", "Q8_0", "Q4_K")."""
    from gguf import GGMLQuantizationType, GGUFWriter
    from gguf.quants import quantize

    target = Path(path)
    writer = GGUFWriter(str(target), arch)
    for key, value in state.items():
        name = prefix + key
        arr = value.detach().float().cpu().numpy()
        kind = qtype_for(key, value)
        if kind == "F32":
            writer.add_tensor(name, arr)
        elif kind == "F16":
            writer.add_tensor(name, arr.astype(np.float16))
        else:
            qt = GGMLQuantizationType[kind]
            flat = arr.reshape(arr.shape[0], -1) if arr.ndim > 1 else arr.reshape(1, -1)
            q = quantize_q4_k(flat) if qt == GGMLQuantizationType.Q4_K else quantize(flat, qt)
            writer.add_tensor(name, q, raw_shape=q.shape, raw_dtype=qt)
            if tuple(flat.shape) != tuple(arr.shape):
                writer.add_array(ORIG_SHAPE + name, list(arr.shape))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return target


def quantize_q4_k(rows: np.ndarray) -> np.ndarray:
    """(R, C) float32, C a multiple of 256 -> (R, C/256·144) uint8 Q4_K blocks."""
    if rows.shape[-1] % 256:
        raise ValueError(f"Q4_K needs rows that are a multiple of 256 values, got {rows.shape}")
    x = rows.astype(np.float32).reshape(-1, 8, 32)  # (blocks, sub-blocks, values)
    lo = np.minimum(x.min(-1), 0.0)
    hi = x.max(-1)
    sub_scale = (hi - lo) / 15.0
    sub_min = -lo
    d = (sub_scale.max(-1) / 63.0).astype(np.float16)
    dmin = (sub_min.max(-1) / 63.0).astype(np.float16)
    df, dminf = d.astype(np.float32)[:, None], dmin.astype(np.float32)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        sc = np.where(df > 0, np.rint(sub_scale / df), 0).clip(0, 63).astype(np.uint8)
        mn = np.where(dminf > 0, np.rint(sub_min / dminf), 0).clip(0, 63).astype(np.uint8)
        step = (df * sc)[..., None]
        offset = (dminf * mn)[..., None]
        q = np.where(step > 0, np.rint((x + offset) / step), 0).clip(0, 15).astype(np.uint8)
    scales = np.zeros((x.shape[0], 12), dtype=np.uint8)
    scales[:, 0:4] = (sc[:, :4] & 0x3F) | ((sc[:, 4:] >> 4) << 6)
    scales[:, 4:8] = (mn[:, :4] & 0x3F) | ((mn[:, 4:] >> 4) << 6)
    scales[:, 8:12] = (sc[:, 4:] & 0x0F) | ((mn[:, 4:] & 0x0F) << 4)
    qs = (q[:, 0::2, :] | (q[:, 1::2, :] << 4)).reshape(x.shape[0], 128)
    blocks = np.concatenate(
        [d.reshape(-1, 1).view(np.uint8), dmin.reshape(-1, 1).view(np.uint8), scales, qs], axis=1)
    return blocks.reshape(rows.shape[0], -1)


def default_qtype(kind: str) -> Callable[[str, Tensor], str]:
    """The community convention: 2-D weights with 256-divisible rows quantised (Q8_0 needs 32),
    everything else (biases, norms, modulation, RoPE) kept F32."""
    block = 256 if kind.endswith("_K") else 32

    def pick(key: str, t: Tensor) -> str:
        if t.dim() == 2 and key.endswith(".weight") and t.shape[-1] % block == 0:
            return kind
        return "F32"

    return pick


def describe_tensors(state: Mapping[str, Any]) -> str:
    """"Q4_K x 40, F32 x 120"-style summary, largest first (for messages and logs)."""
    counts: dict[str, int] = {}
    for v in state.values():
        name = v.type_name if isinstance(v, GGUFTensor) else str(v.dtype).replace("torch.", "")
        counts[name] = counts.get(name, 0) + 1
    return ", ".join(f"{k} x {n}" for k, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def quantize_q8_0(weight: Tensor) -> GGUFTensor:
    """A 2-D weight -> Q8_0 blocks, in torch on the weight's device (bit-compatible with the
    gguf package's quantiser up to round-half-even vs half-away ties): fast on-the-fly
    conversion of a full-size model on a GPU."""
    from seedvr_desktop.models.quant import GGML_Q8_0

    rows = weight.detach().float().reshape(weight.shape[0], -1, 32)
    d = rows.abs().amax(-1, keepdim=True) / 127
    inv = torch.where(d == 0, torch.zeros_like(d), 1 / d)
    q = (rows * inv).round().clamp(-127, 127).to(torch.int8)
    d16 = d.to(torch.float16).view(torch.uint8)  # (R, B, 1) fp16 -> (R, B, 2) bytes
    blocks = torch.cat((d16, q.view(torch.uint8)), dim=-1)  # (R, B, 34)
    return GGUFTensor(blocks.reshape(weight.shape[0], -1), GGML_Q8_0, tuple(weight.shape))
