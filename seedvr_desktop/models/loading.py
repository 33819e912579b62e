"""Reading, checking, converting and saving model weights.

Security: `.pth` files are read with `torch.load(weights_only=True)`, which refuses arbitrary
pickled objects, so a model file cannot run code. Memory: `.pth` (zip format) is memory-mapped and
the DiT is built on the meta device and loaded with `assign=True`, so a 33 GB checkpoint is never
copied twice. Errors a user can cause (wrong file, wrong model family, corrupt download) raise
`ModelError` with a one-line message.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from seedvr_desktop.errors import ModelError
from seedvr_desktop.fsutil import atomic_path
from seedvr_desktop.models.quant import QuantLinear, install_quantised, is_fp8

if TYPE_CHECKING:
    from seedvr_desktop.models.dit.config import DiTConfig
    from seedvr_desktop.models.dit.model import NaDiT
    from seedvr_desktop.models.gguf_io import GGUFTensor

log = logging.getLogger(__name__)

# Keys whose values must stay float32 whatever dtype the weights are converted to: the RoPE
# inverse frequencies feed fp32 angle products, and a bf16 copy would move every angle.
KEEP_FP32_PATTERNS = (re.compile(r"(^|\.)rope\.rope\.freqs$"),)
_WRAPPER_KEYS = ("state_dict", "model", "module", "ema", "params")


# ---------------------------------------------------------------------------------------- reading
def read_state_dict(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    """All tensors of a `.pth`/`.pt` (zip or legacy torch format), `.safetensors` or `.gguf` file.

    The format is recognised from the file's first bytes, not its name, so a renamed file still
    loads. Tensors are on the CPU; `.pth` zip files are memory-mapped (pages load on first use).
    GGUF-quantised tensors come back dequantised to float32 (for small models such as the VAE;
    the DiT loader keeps them quantised, see `read_weights`).
    """
    from seedvr_desktop.models.gguf_io import GGUFTensor
    from seedvr_desktop.models.quant import dequantize

    out: dict[str, Tensor] = {}
    for key, value in read_weights(path).items():
        if isinstance(value, GGUFTensor):
            value = dequantize(value.data, value.qtype, value.shape, torch.float32)
        out[key] = value
    return out


def read_weights(path: str | os.PathLike[str]) -> dict[str, Tensor | GGUFTensor]:
    """Like `read_state_dict`, but GGUF-quantised tensors stay quantised (`GGUFTensor`)."""
    p = Path(path)
    if not p.is_file():
        raise ModelError(f"model file not found: {p}")
    try:
        with p.open("rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise ModelError(f"cannot read model file {p}: {exc.strerror or exc}") from exc
    kind = _sniff(head)
    state: dict[str, Tensor | GGUFTensor]
    if kind == "safetensors":
        state = dict(_read_safetensors(p))
    elif kind in ("zip", "legacy"):
        state = dict(_read_torch(p, mmap=kind == "zip"))
    elif kind == "gguf":
        from seedvr_desktop.models.gguf_io import read_gguf

        state = read_gguf(p)
    else:
        raise ModelError(f"damaged or not a model file: {p.name}")
    if not state:
        raise ModelError(f"{p.name} contains no tensors")
    unsupported = unsupported_format(p.name, state)
    if unsupported:
        raise ModelError(f"{p.name}: {unsupported} weights are not supported yet")
    log.debug("read %d tensors from %s", len(state), p)
    return state


# Formats the community ships that we recognise but cannot run yet: (name, test on key/dtype).
_FP4_DTYPE = getattr(torch, "float4_e2m1fn_x2", None)
_E8M0_DTYPE = getattr(torch, "float8_e8m0fnu", None)


def unsupported_format(name: str, state: Mapping[str, Any]) -> str | None:
    """"NVFP4", "MXFP8" or "INT8-ConvRot" when the file holds such weights, else None."""
    lower = name.lower()
    dtypes = {getattr(v, "dtype", None) for v in state.values()}
    keys = list(state)
    if "nvfp4" in lower or (_FP4_DTYPE is not None and _FP4_DTYPE in dtypes) or any(
            k.endswith(".weight_scale_2") for k in keys):
        return "NVFP4"
    if "mxfp8" in lower or (_E8M0_DTYPE is not None and _E8M0_DTYPE in dtypes):
        return "MXFP8"
    if "convrot" in lower or "int8" in lower or torch.int8 in dtypes:
        return "INT8-ConvRot"
    return None


def _sniff(head: bytes) -> str:
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if len(head) >= 9 and head[8:9] == b"{":
        header_len = int.from_bytes(head[:8], "little")
        if 0 < header_len < 100_000_000:
            return "safetensors"
    if head[:2] == b"\x80\x02" or head[:1] == b"\x80":  # legacy pickle-based torch.save
        return "legacy"
    if head.startswith(b"GGUF"):
        return "gguf"
    return "unknown"


def _read_safetensors(p: Path) -> dict[str, Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return dict(load_file(str(p), device="cpu"))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        log.debug("cannot read %s: %s", p, _first_line(exc))
        raise ModelError(f"damaged or not a model file: {p.name}") from exc


def _read_torch(p: Path, *, mmap: bool) -> dict[str, Tensor]:
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as exc:  # torch raises many types for bad files: all mean "unusable file"
        # Never pass on PyTorch's own text here: for a damaged file it suggests loading with
        # weights_only=False, i.e. running the file's code, which is the wrong advice.
        msg = _first_line(exc)
        log.debug("cannot read %s: %s", p, msg)
        if "Unsupported global" in str(exc):
            raise ModelError(
                f"{p.name} holds Python objects besides tensors and was refused for safety"
            ) from exc
        raise ModelError(f"damaged or not a model file: {p.name}") from exc
    return _as_tensor_dict(obj, p.name)


def _as_tensor_dict(obj: Any, name: str) -> dict[str, Tensor]:
    """Accept a flat {key: tensor} dict, or one wrapped under a usual key such as 'state_dict'."""
    if isinstance(obj, Mapping):
        if obj and all(isinstance(v, Tensor) for v in obj.values()):
            return {str(k): v for k, v in obj.items()}
        for key in _WRAPPER_KEYS:
            inner = obj.get(key)
            if isinstance(inner, Mapping) and inner:
                return _as_tensor_dict(inner, name)
        tensors = {str(k): v for k, v in obj.items() if isinstance(v, Tensor)}
        if tensors:
            return tensors
    raise ModelError(f"{name} does not contain a state dict of tensors")


def _first_line(exc: BaseException) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


# ---------------------------------------------------------------------------------------- dtype
def convert_dtype(state: Mapping[str, Tensor], dtype: torch.dtype) -> dict[str, Tensor]:
    """Floating tensors cast to `dtype`; integer tensors and RoPE frequency buffers unchanged."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        keep = not value.is_floating_point() or any(p.search(key) for p in KEEP_FP32_PATTERNS)
        out[key] = value if keep or value.dtype == dtype else value.to(dtype)
    return out


# ---------------------------------------------------------------------------------------- saving
def save_safetensors(
    state_or_module: Mapping[str, Tensor] | nn.Module,
    path: str | os.PathLike[str],
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write tensors as `.safetensors` atomically (temp file in the target folder, then rename).

    Tensors that share storage (tied or viewed weights) are cloned, since the format forbids
    aliasing; meta tensors are refused because they have no data.
    """
    from safetensors.torch import save_file

    state = (
        state_or_module.state_dict()
        if isinstance(state_or_module, nn.Module)
        else dict(state_or_module)
    )
    seen: set[int] = set()
    clean: dict[str, Tensor] = {}
    for key, value in state.items():
        if value.is_meta:
            raise ModelError(f"cannot save {key}: the model has no weights yet (meta tensor)")
        t = value.detach().to("cpu").contiguous()
        storage = t.untyped_storage()
        if storage.data_ptr() in seen or storage.nbytes() != t.numel() * t.element_size():
            t = t.clone()  # aliased or a view into a bigger buffer: give it its own storage
            storage = t.untyped_storage()
        if t.numel():
            seen.add(storage.data_ptr())
        clean[key] = t
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        save_file(clean, os.fspath(tmp), metadata=dict(metadata) if metadata else None)
    return target


# ---------------------------------------------------------------------------------------- DiT
def build_dit(config: DiTConfig, *, device: str | torch.device = "meta") -> NaDiT:
    """An uninitialised DiT (on the meta device by default: no memory, ready for `assign=True`)."""
    from seedvr_desktop.models.dit.model import NaDiT

    with torch.device(device):
        model = NaDiT(config)
    return model.eval().requires_grad_(False)


def load_dit(
    path_or_state: str | os.PathLike[str] | Mapping[str, Tensor | GGUFTensor],
    config: DiTConfig,
    *,
    dtype: torch.dtype | None = None,
    device: str | torch.device = "cpu",
) -> NaDiT:
    """A ready DiT with the checkpoint's weights (strict key and shape check, clear errors).

    `dtype=None` keeps the file's dtype (as the official loader does); otherwise floating weights
    are converted (the RoPE frequency buffers stay float32). Low-precision files keep their
    linear weights as stored (fp8, or GGUF blocks) in `QuantLinear` layers that dequantise to the
    compute dtype `dtype` at use; everything else (biases, norms, modulation) is converted.
    RoPE frequencies are always recomputed from the config: a low-precision file's copy is
    rounded (fp8 rounds most of them to zero) and some converters drop it.
    """
    from seedvr_desktop.models.gguf_io import GGUFTensor

    if isinstance(path_or_state, Mapping):
        state, name = dict(path_or_state), "the checkpoint"
    else:
        state, name = read_weights(path_or_state), Path(path_or_state).name
    model = build_dit(config, device="meta")
    expected = model.state_dict()
    rope_keys = {k for k in expected if any(p.search(k) for p in KEEP_FP32_PATTERNS)}
    scales = {k[: -len(".scale_weight")]: v for k, v in state.items()
              if k.endswith(".scale_weight") and isinstance(v, Tensor)}
    state = {k: v for k, v in state.items() if k not in rope_keys and k != "scaled_fp8"
             and not k.endswith(".scale_weight")}
    shapes = {k: torch.empty(v.shape, device="meta") if isinstance(v, GGUFTensor) else v
              for k, v in state.items()}
    check_dit_state(shapes, {k: v for k, v in expected.items() if k not in rope_keys},
                    config, name)
    quantised = [k for k, v in state.items()
                 if isinstance(v, GGUFTensor) or (isinstance(v, Tensor) and is_fp8(v))]
    if not quantised:
        plain = {k: v for k, v in state.items() if isinstance(v, Tensor)}
        model.load_state_dict(plain, strict=False, assign=True)
        _reset_rope(model, config)
        # Convert while moving, tensor by tensor: a memory-mapped fp32 file is never copied
        # whole into RAM before the cast. The RoPE frequency buffers keep float32.
        if dtype is not None:
            return model.to(device=device, dtype=dtype)
        return model.to(device)
    compute = dtype or _plain_dtype(state)
    layers, taken = _quant_layers(model, state, quantised, scales, compute)
    install_quantised(model, layers)
    plain = convert_dtype({k: v for k, v in state.items()
                           if k not in taken and isinstance(v, Tensor)}, compute)
    # Quantised weights that are not linear weights (rare) were dequantised into `plain`.
    model.load_state_dict(plain, strict=False, assign=True)
    _reset_rope(model, config)
    log.info("%s: %d linear layers kept quantised (%s)", name, len(layers),
             ", ".join(sorted({m.extra_repr().rsplit(", ", 1)[-1] for m in layers.values()})))
    return model.to(device)


def _plain_dtype(state: Mapping[str, Any]) -> torch.dtype:
    """The compute dtype of a low-precision file run without a requested dtype."""
    floats = [v.dtype for v in state.values()
              if isinstance(v, Tensor) and v.is_floating_point() and not is_fp8(v)]
    return max(set(floats), key=floats.count) if floats else torch.bfloat16


def _quant_layers(
    model: nn.Module, state: dict[str, Any], quantised: list[str],
    scales: Mapping[str, Tensor], compute: torch.dtype,
) -> tuple[dict[str, QuantLinear], set[str]]:
    """QuantLinear per quantised linear weight; other quantised tensors dequantised in place."""
    from seedvr_desktop.models.gguf_io import GGUFTensor
    from seedvr_desktop.models.quant import dequantize

    layers: dict[str, QuantLinear] = {}
    taken: set[str] = set()
    for key in quantised:
        value = state[key]
        path = key.rsplit(".", 1)[0]
        module = model.get_submodule(path) if key.endswith(".weight") else None
        if not isinstance(module, nn.Linear):
            state[key] = (dequantize(value.data, value.qtype, value.shape, compute)
                          if isinstance(value, GGUFTensor) else value.to(compute))
            continue
        bias_key = f"{path}.bias"
        bias = state.get(bias_key)
        if isinstance(bias, GGUFTensor):
            bias = dequantize(bias.data, bias.qtype, bias.shape, compute)
        bias_t = bias.to(compute) if isinstance(bias, Tensor) else None
        shape = (module.out_features, module.in_features)
        scale = scales.get(path)
        scale_t = scale.float() if scale is not None else None
        if isinstance(value, GGUFTensor):
            layers[key] = QuantLinear(value.data, shape, kind="gguf", qtype=value.qtype,
                                      bias=bias_t, scale=scale_t)
        else:
            layers[key] = QuantLinear(value, shape, kind="fp8", bias=bias_t, scale=scale_t)
        taken.update((key, bias_key))
    return layers, taken


def _reset_rope(model: nn.Module, config: DiTConfig) -> None:
    """RoPE frequencies from the config (float32 on the CPU; they follow later device moves)."""
    from seedvr_desktop.models.dit.rope import Rope3d, default_freqs

    for m in model.modules():
        if isinstance(m, Rope3d):
            m.rope.freqs = default_freqs(m.kind, m.head_dim, config.rope_dim)


def check_dit_state(
    state: Mapping[str, Tensor],
    expected: Mapping[str, Tensor],
    config: DiTConfig,
    name: str = "the checkpoint",
) -> None:
    """Raise ModelError naming missing/unexpected/mis-shaped keys and the likely cause."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        k for k in expected
        if k in state and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    if not (missing or unexpected or wrong):
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing key(s) ({_few(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key(s) ({_few(unexpected)})")
    if wrong:
        k = wrong[0]
        parts.append(
            f"{len(wrong)} shape mismatch(es) ({k}: file {list(state[k].shape)}, "
            f"model {list(expected[k].shape)})"
        )
    raise ModelError(
        f"{name} does not fit the {config.describe()}: {'; '.join(parts)}. "
        f"{likely_cause(state, config)}"
    )


def _few(keys: list[str], n: int = 3) -> str:
    return ", ".join(keys[:n]) + (", ..." if len(keys) > n else "")


def describe_dit_state(state: Mapping[str, Tensor]) -> dict[str, Any] | None:
    """Family, width and depth of a DiT state dict, or None when it is not a SeedVR DiT at all."""
    w = state.get("vid_in.proj.weight")
    if w is None or w.dim() != 2:
        return None
    layers = {int(m.group(1)) for k in state if (m := re.match(r"blocks\.(\d+)\.", k))}
    if "vid_out_norm.weight" in state or any(".proj_in_gate." in k for k in state):
        family = "v2"
    elif any(re.search(r"\.mlp\.(vid|txt)\.proj_in\.bias$", k) for k in state):
        family = "v1"
    else:
        family = "unknown"
    return {"family": family, "dim": int(w.shape[0]), "layers": max(layers) + 1 if layers else 0}


_FAMILY_NAMES = {
    "v2": "3B family (SeedVR2-3B / SeedVR-3B)",
    "v1": "7B family (SeedVR2-7B / SeedVR-7B)",
}


def likely_cause(state: Mapping[str, Tensor], config: DiTConfig) -> str:
    """One sentence guessing why a checkpoint does not fit (wrong family, wrong size, not a DiT)."""
    info = describe_dit_state(state)
    if info is None:
        if any(k.startswith(("encoder.", "decoder.")) for k in state):
            return "Likely cause: this is a VAE file, not a DiT checkpoint."
        return "Likely cause: this is not a SeedVR DiT checkpoint (wrong file)."
    if info["family"] != "unknown" and info["family"] != config.family:
        return (
            f"Likely cause: the file is a {_FAMILY_NAMES[info['family']]} checkpoint "
            f"(dim {info['dim']}, {info['layers']} layers) but the selected model is the "
            f"{_FAMILY_NAMES[config.family]}; choose the matching model."
        )
    if info["dim"] != config.vid_dim or info["layers"] != config.num_layers:
        return (
            f"Likely cause: the file is a different size (dim {info['dim']}, {info['layers']} "
            f"layers) than the selected model (dim {config.vid_dim}, {config.num_layers} layers)."
        )
    return "Likely cause: the file is incomplete or damaged (re-download it)."


# ---------------------------------------------------------------------------------- file facts
_ST_DTYPES = {"F64": ("fp64", 8), "F32": ("fp32", 4), "F16": ("fp16", 2), "BF16": ("bf16", 2),
              "F8_E4M3": ("fp8_e4m3fn", 1), "F8_E5M2": ("fp8_e5m2", 1), "I8": ("int8", 1),
              "U8": ("uint8", 1), "I64": ("int64", 8), "I32": ("int32", 4)}


@dataclass(frozen=True)
class WeightInfo:
    """What a weight file stores, read from its header only (no tensor data).

    `quant_bytes`/`quant_params`: tensors kept in their stored low-precision form at run time
    (fp8, GGUF blocks); `plain_params`: tensors converted to the compute dtype. For a .pth file
    (no header to read cheaply) everything counts as plain.
    """

    format: str  # e.g. "fp32 .pth", "fp16 safetensors", "fp8_e4m3fn safetensors", "GGUF Q4_K"
    file_bytes: int
    quant_bytes: int = 0
    quant_params: int = 0
    plain_params: int = 0

    def bytes_per_param(self, compute_itemsize: int) -> float:
        """Bytes per parameter on the device when the rest runs with `compute_itemsize`."""
        total = self.quant_params + self.plain_params
        if total == 0:
            return float(compute_itemsize)
        return (self.quant_bytes + self.plain_params * compute_itemsize) / total


def weight_file_info(path: str | os.PathLike[str]) -> WeightInfo:
    """Format and sizes of a weight file from its header (safetensors, GGUF) or name (.pth)."""
    p = Path(path)
    size = p.stat().st_size
    with p.open("rb") as fh:
        head = fh.read(16)
    kind = _sniff(head)
    if kind == "safetensors":
        return _safetensors_info(p, size)
    if kind == "gguf":
        return _gguf_info(p, size)
    if kind in ("zip", "legacy"):
        return WeightInfo("PyTorch .pth", size)
    return WeightInfo("unknown", size)


def _safetensors_info(p: Path, size: int) -> WeightInfo:
    import json

    with p.open("rb") as fh:
        n = int.from_bytes(fh.read(8), "little")
        header = json.loads(fh.read(n))
    by_dtype: dict[str, int] = {}
    quant_b = quant_n = plain_n = 0
    for key, info in header.items():
        if key == "__metadata__" or not isinstance(info, dict):
            continue
        numel = 1
        for d in info.get("shape", []):
            numel *= int(d)
        name, item = _ST_DTYPES.get(info.get("dtype", ""), (str(info.get("dtype")), 2))
        by_dtype[name] = by_dtype.get(name, 0) + numel * item
        if name.startswith("fp8") and len(info.get("shape", [])) == 2:
            quant_b += numel * item
            quant_n += numel
        else:
            plain_n += numel
    main = max(by_dtype, key=lambda k: by_dtype[k]) if by_dtype else "empty"
    return WeightInfo(f"{main} safetensors", size, quant_b, quant_n, plain_n)


def _gguf_info(p: Path, size: int) -> WeightInfo:
    from gguf import GGUFReader

    from seedvr_desktop.models.quant import GGML_BF16, GGML_F16, GGML_F32, ggml_type_name

    by_type: dict[str, int] = {}
    quant_b = quant_n = plain_n = 0
    try:
        reader = GGUFReader(p)
    except (ValueError, OSError, KeyError, IndexError) as exc:
        raise ModelError(f"damaged or not a model file: {p.name}") from exc
    for t in reader.tensors:
        qtype = int(t.tensor_type)
        name = ggml_type_name(qtype)
        by_type[name] = by_type.get(name, 0) + int(t.n_bytes)
        if qtype in (GGML_F32, GGML_F16, GGML_BF16):
            plain_n += int(t.n_elements)
        else:
            quant_b += int(t.n_bytes)
            quant_n += int(t.n_elements)
    main = max(by_type, key=lambda k: by_type[k]) if by_type else "empty"
    return WeightInfo(f"GGUF {main}", size, quant_b, quant_n, plain_n)
