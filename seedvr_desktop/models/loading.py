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
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from seedvr_desktop.errors import ModelError
from seedvr_desktop.fsutil import atomic_path

if TYPE_CHECKING:
    from seedvr_desktop.models.dit.config import DiTConfig
    from seedvr_desktop.models.dit.model import NaDiT

log = logging.getLogger(__name__)

# Keys whose values must stay float32 whatever dtype the weights are converted to: the RoPE
# inverse frequencies feed fp32 angle products, and a bf16 copy would move every angle.
KEEP_FP32_PATTERNS = (re.compile(r"(^|\.)rope\.rope\.freqs$"),)
_WRAPPER_KEYS = ("state_dict", "model", "module", "ema", "params")


# ---------------------------------------------------------------------------------------- reading
def read_state_dict(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    """All tensors of a `.pth`/`.pt` (zip or legacy torch format) or `.safetensors` file.

    The format is recognised from the file's first bytes, not its name, so a renamed file still
    loads. Tensors are on the CPU; `.pth` zip files are memory-mapped (pages load on first use).
    """
    p = Path(path)
    if not p.is_file():
        raise ModelError(f"model file not found: {p}")
    try:
        with p.open("rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise ModelError(f"cannot read model file {p}: {exc.strerror or exc}") from exc
    kind = _sniff(head)
    if kind == "safetensors":
        state = _read_safetensors(p)
    elif kind in ("zip", "legacy"):
        state = _read_torch(p, mmap=kind == "zip")
    else:
        raise ModelError(f"{p.name} is not a model file (neither PyTorch .pth nor .safetensors)")
    if not state:
        raise ModelError(f"{p.name} contains no tensors")
    log.debug("read %d tensors from %s", len(state), p)
    return state


def _sniff(head: bytes) -> str:
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if len(head) >= 9 and head[8:9] == b"{":
        header_len = int.from_bytes(head[:8], "little")
        if 0 < header_len < 100_000_000:
            return "safetensors"
    if head[:2] == b"\x80\x02" or head[:1] == b"\x80":  # legacy pickle-based torch.save
        return "legacy"
    return "unknown"


def _read_safetensors(p: Path) -> dict[str, Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return dict(load_file(str(p), device="cpu"))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelError(f"{p.name} is a damaged .safetensors file ({_first_line(exc)})") from exc


def _read_torch(p: Path, *, mmap: bool) -> dict[str, Tensor]:
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as exc:  # torch raises many types for bad files: all mean "unusable file"
        msg = _first_line(exc)
        if "weights only" in msg.lower() or "weights_only" in msg or "Unsupported global" in msg:
            raise ModelError(
                f"{p.name} holds Python objects besides tensors and was refused for safety"
            ) from exc
        raise ModelError(f"{p.name} is damaged or not a PyTorch checkpoint ({msg})") from exc
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
    path_or_state: str | os.PathLike[str] | Mapping[str, Tensor],
    config: DiTConfig,
    *,
    dtype: torch.dtype | None = None,
    device: str | torch.device = "cpu",
) -> NaDiT:
    """A ready DiT with the checkpoint's weights (strict key and shape check, clear errors).

    `dtype=None` keeps the file's dtype (as the official loader does); otherwise floating weights
    are converted (the RoPE frequency buffers stay float32).
    """
    if isinstance(path_or_state, Mapping):
        state, name = dict(path_or_state), "the checkpoint"
    else:
        state, name = read_state_dict(path_or_state), Path(path_or_state).name
    model = build_dit(config, device="meta")
    check_dit_state(state, model.state_dict(), config, name)
    model.load_state_dict(state, strict=True, assign=True)
    # Convert while moving, tensor by tensor: a memory-mapped fp32 file is never copied whole
    # into RAM before the cast. The RoPE frequency buffers keep float32 (see RopeFreqs).
    if dtype is not None:
        return model.to(device=device, dtype=dtype)
    return model.to(device)


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
