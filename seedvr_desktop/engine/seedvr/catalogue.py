"""Every downloadable SeedVR model and weight variant, defined once.

`CATALOG` holds the official ByteDance releases (an engine name per DiT checkpoint, with the
VAE and text embeddings of its repository). `VARIANTS` holds the community conversions of the
SeedVR2 DiTs (fp16 and fp8 safetensors, GGUF) that fit consumer GPUs. A variant ships only the
DiT, so a variant's folder takes the VAE and the text embeddings from the official repository of
its model (hard-linked from an installed official model when one is present); the folder is then
a complete model folder the engine accepts as `--model-dir`.

The community repositories and file names below were checked against the ComfyUI node that
downloads them (numz/ComfyUI-SeedVR2_VideoUpscaler, `src/utils/model_registry.py`), which
publishes the fp16/fp8 files in `numz/SeedVR2_comfyUI` and the GGUF files and mixed fp8 7B
files in `AInVFX/SeedVR2_comfyUI`. Their SHA-256 come from the hub's LFS metadata at download
time, as for the official files. The store (`store.py`), the `models` command, the model manager
and `models recommend` all read these tables; nothing else lists models or variants.

A leaf module (no torch, no settings): anything may read it cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass

SHARED_FILES = ("ema_vae.pth", "pos_emb.pt", "neg_emb.pt")
# The variant name of the publisher's own checkpoint (fp32 .pth, run in the compute dtype).
OFFICIAL_VARIANT = "official"
# Share of a DiT's parameters that sit in linear weights (what low-precision files quantise);
# the rest (biases, norms, modulation, embeddings) runs in the compute dtype. Measured on the
# 3B and 7B presets: above 0.999; 0.97 leaves room for files that keep small layers unquantised.
QUANT_SHARE = 0.97


@dataclass(frozen=True)
class OfficialModel:
    """One downloadable model: an engine name and where the publisher keeps its files."""

    name: str
    repo_id: str
    dit_file: str
    family: str  # "v2" = SeedVR2 (one step), "v1" = SeedVR (multi-step with guidance)
    size: str  # "3b" or "7b": which DiT architecture the checkpoint needs
    approx_gb: float  # download size, for the listing only
    description: str

    @property
    def files(self) -> tuple[str, ...]:
        return (self.dit_file, *SHARED_FILES)

    @property
    def url(self) -> str:
        return f"https://huggingface.co/{self.repo_id}"


CATALOG: dict[str, OfficialModel] = {
    m.name: m
    for m in (
        OfficialModel("seedvr2-3b", "ByteDance-Seed/SeedVR2-3B", "seedvr2_ema_3b.pth", "v2", "3b",
                      14.2, "SeedVR2 3B, one-step restoration (recommended)"),
        OfficialModel("seedvr2-7b", "ByteDance-Seed/SeedVR2-7B", "seedvr2_ema_7b.pth", "v2", "7b",
                      33.5, "SeedVR2 7B, one-step restoration, more detail, needs a large GPU"),
        OfficialModel("seedvr2-7b-sharp", "ByteDance-Seed/SeedVR2-7B", "seedvr2_ema_7b_sharp.pth",
                      "v2", "7b", 33.5, "SeedVR2 7B sharp variant (crisper, may over-sharpen)"),
        OfficialModel("seedvr-3b", "ByteDance-Seed/SeedVR-3B", "seedvr_ema_3b.pth", "v1", "3b",
                      14.2, "SeedVR 3B, 50-step restoration with guidance (slow)"),
        OfficialModel("seedvr-7b", "ByteDance-Seed/SeedVR-7B", "seedvr_ema_7b.pth", "v1", "7b",
                      33.5, "SeedVR 7B, 50-step restoration with guidance (very slow)"),
    )
}


@dataclass(frozen=True)
class Variant:
    """A community conversion of one official model's DiT (the VAE and embeddings stay official).

    `quant_bits`: bits per quantised linear weight as it stays on the device (fp8 8, Q8_0 8.5,
    Q4_K_M about 4.9: Q4_K blocks with some Q6_K tensors); None when the file is converted to
    the compute dtype at load (fp16). `quant_share`: the share of parameters quantised.
    """

    model: str  # the CATALOG name it is a variant of
    name: str  # "fp16", "fp8_e4m3fn", "Q8_0", "Q4_K_M", ...
    repo_id: str
    dit_file: str
    approx_gb: float  # the DiT file's download size, for the listing only
    quant_bits: float | None = None
    quant_share: float = QUANT_SHARE
    note: str = ""

    @property
    def folder_name(self) -> str:
        """The variant's own folder under the models folder, e.g. `seedvr2-3b-q8_0`."""
        return f"{self.model}-{self.name.lower()}"

    @property
    def label(self) -> str:
        return f"{self.model} {self.name}"

    @property
    def url(self) -> str:
        return f"https://huggingface.co/{self.repo_id}"

    def bytes_per_param(self, compute_itemsize: int) -> float:
        """Device bytes per DiT parameter (what `memory.fit` calls `weight_bytes`)."""
        if self.quant_bits is None:
            return float(compute_itemsize)
        q = self.quant_share
        return q * self.quant_bits / 8 + (1 - q) * compute_itemsize


_NUMZ = "numz/SeedVR2_comfyUI"
_AINVFX = "AInVFX/SeedVR2_comfyUI"
# The 7B fp8 files keep their last block (35) in fp16: 35 of 36 blocks quantised.
_MIXED_SHARE = QUANT_SHARE * 35 / 36

VARIANTS: tuple[Variant, ...] = (
    Variant("seedvr2-3b", "fp16", _NUMZ, "seedvr2_ema_3b_fp16.safetensors", 6.8),
    Variant("seedvr2-3b", "fp8_e4m3fn", _NUMZ, "seedvr2_ema_3b_fp8_e4m3fn.safetensors", 3.4,
            quant_bits=8.0),
    Variant("seedvr2-3b", "Q8_0", _AINVFX, "seedvr2_ema_3b-Q8_0.gguf", 3.6, quant_bits=8.5),
    Variant("seedvr2-3b", "Q4_K_M", _AINVFX, "seedvr2_ema_3b-Q4_K_M.gguf", 2.1, quant_bits=4.9,
            note="visibly softer than 8-bit"),
    Variant("seedvr2-7b", "fp16", _NUMZ, "seedvr2_ema_7b_fp16.safetensors", 16.5),
    Variant("seedvr2-7b", "fp8_e4m3fn_mixed", _AINVFX,
            "seedvr2_ema_7b_fp8_e4m3fn_mixed_block35_fp16.safetensors", 8.7, quant_bits=8.0,
            quant_share=_MIXED_SHARE),
    Variant("seedvr2-7b", "Q4_K_M", _AINVFX, "seedvr2_ema_7b-Q4_K_M.gguf", 4.9, quant_bits=4.9,
            note="visibly softer than 8-bit"),
    Variant("seedvr2-7b-sharp", "fp16", _NUMZ, "seedvr2_ema_7b_sharp_fp16.safetensors", 16.5),
    Variant("seedvr2-7b-sharp", "fp8_e4m3fn_mixed", _AINVFX,
            "seedvr2_ema_7b_sharp_fp8_e4m3fn_mixed_block35_fp16.safetensors", 8.7,
            quant_bits=8.0, quant_share=_MIXED_SHARE),
    Variant("seedvr2-7b-sharp", "Q4_K_M", _AINVFX, "seedvr2_ema_7b_sharp-Q4_K_M.gguf", 4.9,
            quant_bits=4.9, note="visibly softer than 8-bit"),
)


def variants_of(model: str) -> tuple[Variant, ...]:
    return tuple(v for v in VARIANTS if v.model == model)


def variant_names() -> tuple[str, ...]:
    """Every variant name any model has, in catalogue order (for help texts)."""
    return tuple(dict.fromkeys(v.name for v in VARIANTS))


def find_variant(model: str, name: str) -> Variant | None:
    """The variant `name` (any letter case) of `model`, or None."""
    for v in variants_of(model):
        if v.name.lower() == name.lower():
            return v
    return None
