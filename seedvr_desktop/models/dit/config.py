"""DiT hyper-parameters, named as in the official configs so their dictionaries load unchanged.

The official code has two DiT classes: `models.dit_v2.nadit.NaDiT` ("v2", the 3B family) and
`models.dit.nadit.NaDiT` ("v1", the 7B family). Their keyword arguments overlap but differ in a
few names (`rope_type`/`mm_layers` only in v2, `qk_rope`/`shared_*` only in v1); `DiTConfig` holds
the union plus `family`, with per-layer lists expanded so the model code never has to guess.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

WINDOW_METHODS = ("720pwin_by_size_bysize", "720pswin_by_size_bysize")
_RMS_NAMES = ("fusedrms", "rms")
# Official keys that are accepted but have no effect on the model (training or unused options).
_IGNORED_KEYS = ("__object__", "txt_in_norm", "msa_type")


@dataclass(frozen=True)
class DiTConfig:
    """One DiT architecture. Defaults are the SeedVR2-3B (v2) model."""

    family: str = "v2"  # "v2" = models.dit_v2 (3B), "v1" = models.dit (7B)
    vid_in_channels: int = 33
    vid_out_channels: int = 16
    vid_dim: int = 2560
    txt_in_dim: int = 5120
    txt_dim: int = 2560
    emb_dim: int = 6 * 2560
    heads: int = 20
    head_dim: int = 128
    expand_ratio: int = 4
    norm: str = "fusedrms"
    norm_eps: float = 1e-5
    ada: str = "single"
    qk_bias: bool = False
    qk_norm: str = "fusedrms"
    patch_size: tuple[int, int, int] = (1, 2, 2)
    num_layers: int = 32
    block_type: tuple[str, ...] = ()
    window: tuple[tuple[int, int, int], ...] = ()
    window_method: tuple[str, ...] = ()
    mlp_type: str = "swiglu"
    # v2 only
    mm_layers: int = 10
    rope_type: str | None = "mmrope3d"
    rope_dim: int = 128
    vid_out_norm: str | None = "fusedrms"
    # v1 only
    qk_rope: bool = False
    shared_mlp: bool = False
    shared_qkv: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        n = self.num_layers
        # Expand single values to one entry per layer (the official code accepts both forms).
        set_ = object.__setattr__
        set_(self, "patch_size", tuple(int(p) for p in self.patch_size))
        set_(self, "block_type", _per_layer(self.block_type or "mmdit_sr", n, "block_type"))
        # As given: one (nt, nh, nw) for every layer, or one entry per layer.
        given: Sequence[Any] = self.window or ((4, 3, 3),)
        if len(given) == 3 and all(isinstance(v, int) for v in given):
            given = (tuple(given),)
        window = tuple(tuple(int(v) for v in w) for w in given)
        set_(self, "window", _per_layer(window, n, "window"))
        methods = self.window_method or ("720pwin_by_size_bysize", "720pswin_by_size_bysize")
        if isinstance(methods, str):
            methods = (methods,)
        if len(methods) == 2 and n != 2 and not self.window_method:
            methods = tuple(methods[i % 2] for i in range(n))
        set_(self, "window_method", _per_layer(tuple(methods), n, "window_method"))
        self.validate()

    # ------------------------------------------------------------------ derived sizes
    @property
    def is_v2(self) -> bool:
        return self.family == "v2"

    @property
    def inner_dim(self) -> int:
        """Attention width heads·head_dim (equals vid_dim in every released model)."""
        return self.heads * self.head_dim

    @property
    def mlp_hidden(self) -> int:
        """MLP hidden width: SwiGLU rounds 2/3 of the expanded width up to a multiple of 256."""
        if self.mlp_type == "swiglu":
            return 256 * math.ceil(int(2 * self.vid_dim * self.expand_ratio / 3) / 256)
        return self.vid_dim * self.expand_ratio

    def layer_is_shared(self, index: int) -> bool:
        """v2 layers at or after `mm_layers` use one `.all.` weight set for video and text."""
        return self.is_v2 and index >= self.mm_layers

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        if self.family not in ("v1", "v2"):
            raise ValueError(f"unknown DiT family {self.family!r} (expected 'v1' or 'v2')")
        if self.inner_dim != self.vid_dim or self.txt_dim != self.vid_dim:
            raise ValueError("vid_dim, txt_dim and heads*head_dim must be equal")
        if self.emb_dim != 6 * self.vid_dim:
            raise ValueError("emb_dim must be 6*vid_dim (ada 'single' layout)")
        if self.ada != "single":
            raise ValueError(f"unsupported ada {self.ada!r} (only 'single')")
        if self.norm not in _RMS_NAMES or self.qk_norm not in _RMS_NAMES:
            raise ValueError("only RMS norms (fusedrms) are supported")
        if tuple(self.patch_size[1:]) != (2, 2) or self.patch_size[0] != 1:
            raise ValueError(f"unsupported patch_size {self.patch_size} (expected (1, 2, 2))")
        if any(b != "mmdit_sr" for b in self.block_type):
            raise ValueError(f"unsupported block_type {set(self.block_type)} (only mmdit_sr)")
        if any(m not in WINDOW_METHODS for m in self.window_method):
            raise ValueError(f"unsupported window_method {set(self.window_method)}")
        expected_mlp = "swiglu" if self.is_v2 else "normal"
        if self.mlp_type != expected_mlp:
            raise ValueError(f"{self.family} uses mlp_type {expected_mlp!r}, got {self.mlp_type!r}")
        if self.is_v2 and self.rope_type != "mmrope3d":
            raise ValueError(f"unsupported v2 rope_type {self.rope_type!r} (only mmrope3d)")
        if not self.is_v2 and (not self.qk_rope or self.shared_mlp or self.shared_qkv):
            raise ValueError("v1 needs qk_rope=True, shared_mlp=False, shared_qkv=False")
        if self.qk_bias:
            raise ValueError("qk_bias=True is not supported (no released model uses it)")

    # ------------------------------------------------------------------ conversion
    @classmethod
    def from_official(cls, kwargs: Mapping[str, Any], family: str | None = None) -> DiTConfig:
        """Build from the official constructor keywords (main.yaml `dit.model` or a parity config).

        The family comes from `__object__.path` when present (`models.dit_v2.*` = v2), else from
        the v2-only keys (`rope_type`, `mm_layers`) or v1's `qk_rope`.
        """
        kw = dict(kwargs)
        if family is None:
            family = _guess_family(kw)
        names = {f.name for f in dataclasses.fields(cls)} - {"family", "extra"}
        values: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in kw.items():
            if key in names:
                values[key] = _plain(value)
            elif key not in _IGNORED_KEYS:
                extra[key] = value
        if family == "v1":
            # v1 has none of the v2-only features; do not let the v2 defaults leak in.
            values.setdefault("mlp_type", "normal")
            values.setdefault("mm_layers", 0)
            values.setdefault("rope_type", None)
            values.setdefault("vid_out_norm", None)
            values.setdefault("qk_rope", True)
        else:
            values.setdefault("mm_layers", int(values.get("num_layers", 32)))
        if "vid_out_norm" in values and values["vid_out_norm"] in ("none", "None", ""):
            values["vid_out_norm"] = None
        return cls(family=family, extra=extra, **values)

    def to_official(self) -> dict[str, Any]:
        """The official keyword dictionary for this architecture (inverse of `from_official`)."""
        common = [
            "vid_in_channels", "vid_out_channels", "vid_dim", "txt_in_dim", "txt_dim", "emb_dim",
            "heads", "head_dim", "expand_ratio", "norm", "norm_eps", "ada", "qk_bias", "qk_norm",
            "num_layers", "mlp_type",
        ]
        out: dict[str, Any] = {k: getattr(self, k) for k in common}
        out["patch_size"] = list(self.patch_size)
        out["block_type"] = list(self.block_type)
        out["window"] = [tuple(w) for w in self.window]
        out["window_method"] = list(self.window_method)
        if self.is_v2:
            out.update(mm_layers=self.mm_layers, rope_type=self.rope_type, rope_dim=self.rope_dim,
                       vid_out_norm=self.vid_out_norm)
        else:
            out.update(qk_rope=self.qk_rope, shared_mlp=self.shared_mlp,
                       shared_qkv=self.shared_qkv)
        return out

    def describe(self) -> str:
        """Short human label, e.g. 'v2 DiT (dim 2560, 32 layers)'."""
        return f"{self.family} DiT (dim {self.vid_dim}, {self.num_layers} layers)"


def _per_layer(value: Any, n: int, name: str) -> tuple[Any, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        return tuple(value for _ in range(n))
    items = tuple(value)
    if len(items) == 1:
        return items * n
    if len(items) != n:
        raise ValueError(f"{name} has {len(items)} entries for {n} layers")
    return items


def _plain(value: Any) -> Any:
    """OmegaConf/list values to tuples so the frozen dataclass stays hashable-ish and comparable."""
    if isinstance(value, list):
        return tuple(_plain(v) for v in value)
    return value


def _guess_family(kw: Mapping[str, Any]) -> str:
    obj = kw.get("__object__")
    path = obj.get("path", "") if isinstance(obj, Mapping) else ""
    if "dit_v2" in path:
        return "v2"
    if path.endswith("models.dit.nadit") or path == "models.dit.nadit":
        return "v1"
    if "rope_type" in kw or "mm_layers" in kw or "vid_out_norm" in kw:
        return "v2"
    if kw.get("qk_rope") or kw.get("mlp_type") == "normal":
        return "v1"
    raise ValueError("cannot tell the DiT family (v1/v2) from these keywords; pass family=")
