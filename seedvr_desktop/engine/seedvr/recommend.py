"""Which model and weight variant to download for a machine, decided by the real memory planner.

For every SeedVR2 model (3B, 7B) in every format the catalogue offers (the official checkpoint
run in bf16, fp16, fp8, GGUF Q8_0 / Q4_K_M), `memory.fit` picks the settings a chunk would run
with at 720p and at 1080p on the machine's GPU memory (each format with its own bytes per DiT
parameter), and `memory.estimate` gives the expected peak. A candidate qualifies when its 720p
estimate fits the budget and the host RAM holds what offloading or streaming keeps there. Among
those the choice is, in order: no block streaming (it moves every block across the bus for
every DiT call, several times slower), then picture quality (8-bit or better before 4-bit, then
the larger model (the smaller one on the CPU, where time is what runs out), then the more
precise format), then the longer DiT window.

No Qt, no printing: `models recommend` and the GUI model manager both show `Recommendation`.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from seedvr_desktop.engine.seedvr.catalogue import (
    CATALOG,
    OFFICIAL_VARIANT,
    Variant,
    variants_of,
)

log = logging.getLogger(__name__)

GIB = 1 << 30
MODELS = ("seedvr2-7b", "seedvr2-3b")  # what is recommended: the one-step SeedVR2 models
RESOLUTIONS = {"720p": (1280, 720), "1080p": (1920, 1080)}
TXT_LEN = 64  # text embedding rows the planner assumes before a model is loaded (as the engine)
HOST_BASELINE = 3 * GIB  # the app, torch, decoded frames and the encoder: RAM beyond weights
HOST_SHARE = 0.85  # of host RAM a job may fill (the desktop and other programs keep the rest)
UNIFIED_SHARE = 0.70  # of Apple unified memory the GPU may use (macOS keeps the rest)
# Picture quality of a format relative to the others of the same model (larger is better).
_PRECISION_RANK = {OFFICIAL_VARIANT: 5, "fp16": 4, "Q8_0": 3, "fp8_e4m3fn": 2,
                   "fp8_e4m3fn_mixed": 2, "Q4_K_M": 0}


@dataclass(frozen=True)
class Machine:
    """What the planner plans for: the compute device kind, its memory and the host RAM."""

    kind: str  # "cuda", "mps" or "cpu"
    vram: int  # bytes of GPU memory (0 without a GPU; the unified memory on Apple)
    ram: int  # bytes of host RAM
    name: str = ""  # the GPU's name when detected
    detected: bool = True  # False when --vram/--ram described another machine

    def describe(self) -> str:
        ram = f"{_gb(self.ram)} RAM"
        if self.kind == "cpu":
            return f"no GPU, {ram}"
        if self.kind == "mps":
            return f"Apple GPU, {_gb(self.ram)} unified memory"
        return f"{_gb(self.vram)} card, {ram}"


def _gb(n: int) -> str:
    return f"{n / GIB:.0f} GB"


@dataclass(frozen=True)
class Fit:
    """The planner's answer for one candidate at one output size."""

    resolution: str
    settings: Any  # memory.RunSettings
    peak: int  # estimated device bytes
    budget: int  # device bytes the planner may use (before its safety margin)
    host: int  # estimated host RAM bytes
    fits: bool  # device estimate within the planner's limit
    host_fits: bool

    @property
    def streamed(self) -> bool:
        return bool(self.settings.stream_blocks)

    @property
    def ok(self) -> bool:
        return self.fits and self.host_fits


@dataclass(frozen=True)
class Candidate:
    model: str
    variant: str  # OFFICIAL_VARIANT or a catalogue variant name
    weight_bytes: float  # device bytes per DiT parameter
    download_gb: float
    fits: dict[str, Fit] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.model} (official)" if self.variant == OFFICIAL_VARIANT \
            else f"{self.model} {self.variant}"

    @property
    def command(self) -> str:
        opt = "" if self.variant == OFFICIAL_VARIANT else f" --variant {self.variant}"
        return f"seedvr-desktop models download {self.model}{opt}"

    @property
    def ok(self) -> bool:
        return self.fits["720p"].ok

    def quality(self) -> tuple[bool, str, int]:
        """Larger is better: 8-bit or more first, then the 7B model, then the format."""
        rank = _PRECISION_RANK.get(self.variant, 1)
        return rank > 0, CATALOG[self.model].size, rank


@dataclass(frozen=True)
class Recommendation:
    machine: Machine
    choice: Candidate | None
    line: str  # one line of why, e.g. "8 GB card, 16 GB RAM -> seedvr2-3b Q8_0, ..."
    candidates: tuple[Candidate, ...]

    def to_dict(self) -> dict[str, Any]:
        def cand(c: Candidate) -> dict[str, Any]:
            return {
                "model": c.model, "variant": c.variant, "label": c.label,
                "weight_bytes_per_param": round(c.weight_bytes, 4),
                "download_gb": c.download_gb, "command": c.command, "ok": c.ok,
                "fits": {r: {"settings": asdict(f.settings), "describe": f.settings.describe(),
                             "peak_gib": round(f.peak / GIB, 2),
                             "budget_gib": round(f.budget / GIB, 2),
                             "host_gib": round(f.host / GIB, 2),
                             "fits": f.fits, "host_fits": f.host_fits}
                         for r, f in c.fits.items()},
            }

        return {"machine": asdict(self.machine), "line": self.line,
                "choice": cand(self.choice) if self.choice else None,
                "candidates": [cand(c) for c in self.candidates]}


# ------------------------------------------------------------------------------ machine
def detect() -> Machine:
    """This machine: the CUDA GPU's total memory, else an Apple GPU, else the CPU; host RAM."""
    import torch

    from seedvr_desktop.engine import device as dev

    ram = dev.total_memory(torch.device("cpu"))
    if torch.cuda.is_available():
        gpu = torch.device("cuda", torch.cuda.current_device())
        return Machine("cuda", dev.total_memory(gpu), ram, torch.cuda.get_device_name(gpu))
    if dev.mps_available():
        return Machine("mps", ram, ram, "Apple GPU")
    return Machine("cpu", 0, ram)


def machine_for(vram_gb: float | None = None, ram_gb: float | None = None) -> Machine:
    """The machine `--vram GB --ram GB` describes; what is not given is detected. `--vram 0`
    means no GPU (a CUDA card otherwise)."""
    from seedvr_desktop.errors import UserError

    for what, v in (("--vram", vram_gb), ("--ram", ram_gb)):
        if v is not None and not (0 <= v <= 4096):
            raise UserError(f"{what} must be a size in GB between 0 and 4096, got {v:g}")
    if ram_gb is not None and ram_gb <= 0:
        raise UserError("--ram must be more than 0 GB")
    if vram_gb is None and ram_gb is None:
        return detect()
    here = detect()
    ram = int(ram_gb * GIB) if ram_gb is not None else here.ram
    if vram_gb is None:
        vram = ram if here.kind == "mps" else here.vram
        return Machine(here.kind, vram, ram, here.name, detected=False)
    if vram_gb == 0:
        return Machine("cpu", 0, ram, detected=False)
    return Machine("cuda", int(vram_gb * GIB), ram, detected=False)


# ------------------------------------------------------------------------------ planning
def _compute_itemsize(machine: Machine) -> int:
    return 4 if machine.kind == "cpu" else 2  # fp32 on the CPU, bf16/fp16 on a GPU


def device_budget(machine: Machine) -> int:
    """Bytes the planner may plan with on the compute device."""
    if machine.kind == "cuda":
        return machine.vram
    share = UNIFIED_SHARE if machine.kind == "mps" else HOST_SHARE
    return max(int(machine.ram * share) - HOST_BASELINE, 0)


def candidates(models: tuple[str, ...] = MODELS) -> list[tuple[str, Variant | None]]:
    """(model, variant or None for the official files) of everything worth recommending."""
    return [(m, v) for m in models for v in (None, *variants_of(m))]


def plan_candidate(machine: Machine, model: str, variant: Variant | None,
                   frames: int | None = None) -> Candidate:
    """The planner's fits of one model format at every resolution of RESOLUTIONS."""
    from seedvr_desktop.engine.seedvr.engine import CHUNK_FRAMES
    from seedvr_desktop.engine.seedvr.memory import SAFETY, ModelSizes, estimate, fit
    from seedvr_desktop.models.presets import get_preset

    preset = get_preset(model)
    sizes = ModelSizes.from_configs(preset.dit, preset.vae, TXT_LEN)
    nbytes = _compute_itemsize(machine)
    wb = variant.bytes_per_param(nbytes) if variant else float(nbytes)
    budget = device_budget(machine)
    on_gpu = machine.kind == "cuda"
    chunk = frames or CHUNK_FRAMES
    fits = {}
    for res, (w, h) in RESOLUTIONS.items():
        settings = fit(sizes, chunk, w, h, max(budget, 1), nbytes, scores=not on_gpu,
                       can_offload=on_gpu, weight_bytes=wb)
        peak = estimate(sizes, settings, chunk, w, h, nbytes, scores=not on_gpu,
                        weight_bytes=wb).peak
        host = HOST_BASELINE
        if on_gpu and (settings.offload_dit or settings.stream_blocks):
            host += int(sizes.dit_params * wb)  # the DiT waits (or streams from) host RAM
        host_ok = host <= machine.ram * HOST_SHARE if on_gpu else True  # CPU/MPS: in `peak`
        fits[res] = Fit(res, settings, peak, budget, host, budget > 0 and peak <= budget * SAFETY,
                        host_ok)
    download = variant.approx_gb + 1.0 if variant else CATALOG[model].approx_gb
    return Candidate(model, variant.name if variant else OFFICIAL_VARIANT, wb, download, fits)


def _shortfall(c: Candidate, ram: int) -> float:
    """How far a candidate is from fitting at 720p: its worse ratio of need to memory."""
    f = c.fits["720p"]
    return max(f.peak / max(f.budget, 1), f.host / max(ram * HOST_SHARE, 1))


def _preference(c: Candidate, kind: str) -> tuple[bool, tuple[bool, bool, int], int]:
    """Larger is better. On the CPU (minutes per frame) the 3B model comes before the 7B one:
    it is 2.4x less work for most of the 7B's pictures."""
    f = c.fits["720p"]
    eight_bit, size, rank = c.quality()
    model_first = size == ("3b" if kind == "cpu" else "7b")
    return not f.streamed, (eight_bit, model_first, rank), f.settings.dit_window or 1 << 20


def recommend(machine: Machine, frames: int | None = None) -> Recommendation:
    """The best model and format for `machine`, with one line saying why."""
    planner_log = logging.getLogger("seedvr_desktop.engine.seedvr.memory")
    level = planner_log.level
    planner_log.setLevel(logging.ERROR)  # "does not fit" is the expected answer for many here
    try:
        cands = tuple(plan_candidate(machine, m, v, frames) for m, v in candidates())
    finally:
        planner_log.setLevel(level)
    good = [c for c in cands if c.ok]
    head = machine.describe()
    if not good:
        smallest = min(cands, key=lambda c: _shortfall(c, machine.ram))
        f = smallest.fits["720p"]
        need = f"est. {f.peak / GIB:.1f} GiB at 720p" if not f.fits else \
            f"{f.host / GIB:.0f} GB of RAM while the DiT waits in it"
        line = (f"{head} -> no SeedVR2 model fits: even {smallest.label} needs {need}; use the "
                "classic engine, or a machine with more memory")
        return Recommendation(machine, None, line, cands)
    best = max(good, key=lambda c: _preference(c, machine.kind))
    line = f"{head} -> {best.label}, {_why(best, machine.kind)}"
    if machine.kind == "cpu":
        line += " (on the CPU SeedVR takes minutes per frame; the classic engine is far faster)"
    return Recommendation(machine, best, line, cands)


def _why(c: Candidate, kind: str) -> str:
    f, big = c.fits["720p"], c.fits["1080p"]
    where = "of RAM " if kind == "cpu" else ""
    if not big.ok:
        at_1080 = "1080p does not fit"
    else:
        at_1080 = f"1080p: est. {big.peak / GIB:.1f} GiB"
        if big.streamed and not f.streamed:
            at_1080 += ", DiT streamed"
    return (f"{_settings_words(f.settings, kind)} "
            f"(est. {f.peak / GIB:.1f} GiB {where}at 720p; {at_1080})")


def _settings_words(s: Any, kind: str) -> str:
    """The settings in a few words: what a user should expect of speed and pictures."""
    from seedvr_desktop.engine.seedvr.geometry import TEMPORAL_FACTOR

    if s.stream_blocks:
        parts = ["DiT streamed"]
    elif s.offload_dit:
        parts = ["DiT offloaded during VAE"]
    else:
        parts = [{"cpu": "in RAM", "mps": "on the Apple GPU"}.get(kind, "all on the GPU")]
    if s.tile:
        parts.append(f"VAE tiles {s.tile * 8}px")
    if s.dit_window:
        parts.append(f"DiT window {TEMPORAL_FACTOR * (s.dit_window - 1) + 1} frames")
    return ", ".join(parts)
