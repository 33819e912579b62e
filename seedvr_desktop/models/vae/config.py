"""Shape of the SeedVR causal video VAE, and how to read it from the official keyword dictionary.

The official class (`VideoAutoencoderKLWrapper`) takes diffusers-style keyword arguments; parity
vector files and derived checkpoints describe their VAE with those names, so `from_official`
accepts them directly and rejects only the options that would change the maths in ways this
implementation does not cover (so a wrong model never runs silently).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from seedvr_desktop.errors import ModelError

# Official keywords that only matter for training, construction tricks or runtime settings we
# expose elsewhere (slicing), so they are accepted and ignored.
_IGNORED_KEYS = frozenset(
    {
        "__object__",
        "freeze_encoder",
        "gradient_checkpoint",
        "slicing_sample_min_size",
        "slicing_up_num",
        "sample_size",
        "force_upcast",
        "inflation_mode",  # only matters when inflating 2-D weights, never for released files
        "scaling_factor",  # the VAE yaml's 0.18215 is unused; the main config's 0.9152 counts
        "shifting_factor",
        "extra_cond_dim",  # checked separately below
    }
)


@dataclass(frozen=True)
class VAEConfig:
    """Hyper-parameters of the causal video VAE (defaults: the released `ema_vae.pth`)."""

    in_channels: int = 3
    out_channels: int = 3
    latent_channels: int = 16
    block_out_channels: tuple[int, ...] = (128, 256, 512, 512)
    layers_per_block: int = 2  # the decoder uses one more per block, as the official code
    norm_num_groups: int = 32
    temporal_scale_num: int = 2  # number of blocks that also halve (encoder) / double time
    time_receptive_field: str = "full"  # "full": resnet conv1 is 3x3x3; "half": 1x3x3
    attention: bool = True  # mid-block self-attention present
    use_quant_conv: bool = False
    use_post_quant_conv: bool = False
    # The DiT sees (z - shift) * scale; these come from the main config, not the VAE yaml.
    scaling_factor: float = 0.9152
    shifting_factor: float = 0.0
    norm_eps: float = 1e-6
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        n = len(self.block_out_channels)
        if n < 1:
            raise ModelError("VAE config needs at least one block")
        for ch in self.block_out_channels:
            if ch % self.norm_num_groups:
                raise ModelError(
                    f"VAE config: {ch} channels are not divisible into "
                    f"{self.norm_num_groups} groups"
                )
        if self.time_receptive_field not in ("full", "half"):
            raise ModelError(
                f"VAE config: unknown time_receptive_field {self.time_receptive_field!r}"
            )
        if not 0 <= self.temporal_scale_num <= n - 1:
            raise ModelError("VAE config: temporal_scale_num exceeds the number of down blocks")

    # ------------------------------------------------------------------ derived sizes
    @property
    def num_blocks(self) -> int:
        return len(self.block_out_channels)

    @property
    def spatial_factor(self) -> int:
        """Pixels per latent along H and W (8 for the released VAE)."""
        return 2 ** (self.num_blocks - 1)

    @property
    def temporal_factor(self) -> int:
        """Frames per latent after the first (4 for the released VAE)."""
        return 2**self.temporal_scale_num

    def encoder_temporal_down(self, i: int) -> bool:
        """Whether down block `i` also halves time (the official code takes the last ones)."""
        is_final = i == self.num_blocks - 1
        return not is_final and i >= self.num_blocks - self.temporal_scale_num - 1

    def decoder_temporal_up(self, i: int) -> bool:
        """Whether up block `i` also doubles time (the first ones, mirroring the encoder)."""
        return i < self.num_blocks - 1 and i < self.temporal_scale_num

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_official(
        cls,
        kwargs: Mapping[str, Any],
        *,
        scaling_factor: float = 0.9152,
        shifting_factor: float = 0.0,
    ) -> VAEConfig:
        """Build from the official `VideoAutoencoderKLWrapper` keyword names.

        `scaling_factor`/`shifting_factor` are separate because the official inference reads them
        from the main config (`vae.scaling_factor`), not from the VAE model keywords.
        """
        kw = dict(kwargs)
        for name in ("down_block_types", "up_block_types"):
            kinds = set(kw.pop(name, ()))
            allowed = {"DownEncoderBlock3D"} if name.startswith("down") else {"UpDecoderBlock3D"}
            if kinds - allowed:
                raise ModelError(f"unsupported VAE {name}: {sorted(kinds - allowed)}")
        act = kw.pop("act_fn", "silu")
        if act not in ("silu", "swish"):
            raise ModelError(f"unsupported VAE activation {act!r}")
        if kw.get("extra_cond_dim"):
            raise ModelError("VAE with extra conditioning input is not supported")
        if kw.pop("norm_type", "group") != "group":
            raise ModelError("only GroupNorm VAEs are supported")
        for key in ("spatial_downsample_factor", "temporal_downsample_factor"):
            kw.pop(key, None)  # derived from the block structure, checked below
        known = {f.name for f in fields(cls)} - {"extra", "scaling_factor", "shifting_factor"}
        args: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in kw.items():
            if key in known:
                args[key] = tuple(value) if key == "block_out_channels" else value
            elif key not in _IGNORED_KEYS:
                extra[key] = value
        cfg = cls(
            **args, scaling_factor=scaling_factor, shifting_factor=shifting_factor, extra=extra
        )
        sdf = kwargs.get("spatial_downsample_factor")
        tdf = kwargs.get("temporal_downsample_factor")
        if sdf is not None and int(sdf) != cfg.spatial_factor:
            raise ModelError(
                f"VAE config says spatial factor {sdf} but its blocks give {cfg.spatial_factor}"
            )
        if tdf is not None and int(tdf) != cfg.temporal_factor:
            raise ModelError(
                f"VAE config says temporal factor {tdf} but its blocks give {cfg.temporal_factor}"
            )
        return cfg
