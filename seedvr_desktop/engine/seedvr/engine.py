"""The SeedVR / SeedVR2 restoration engine: chunks of frames in, restored frames out.

Per chunk (architecture doc §6, with our changes marked *):
1. Resize each frame to the output size (antialiased bicubic), [-1, 1], *reflect-pad to /16
   (the official scripts centre-crop and lose up to 15 border pixels), pad the chunk to 4n+1.
2. VAE encode in temporal slices (exact streaming), sampling the posterior with *noise keyed to
   each latent's absolute frame position, so resumed and re-chunked runs get the same noise.
3. DiT: SeedVR2 one step at t=1000, or SeedVR's Euler steps with classifier-free guidance and a
   noised condition. *Long chunks are split into overlapping DiT windows of latent frames when
   memory demands it, blended in latent space (measured smoother than pixel cross-fades).
4. VAE decode in temporal slices; colour fix against the resized input (default chosen by
   measurement, see DEFAULT_COLOR_FIX); crop the padding; float32 [0, 1] at the output size.

Memory: settings come from `memory.fit` for the device's budget, and an out-of-memory error in
any stage retries the chunk with `memory.degrade`d settings instead of failing the job.
Cancel is checked between slices, steps and DiT blocks, so it takes effect within about one
block's compute time.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from seedvr_desktop.engine.base import ChunkContext, Engine, EngineCaps, SourceInfo
from seedvr_desktop.engine.seedvr.oom import is_out_of_memory
from seedvr_desktop.errors import ModelError, UserError
from seedvr_desktop.vocab import COLOR_FIXES, DEFAULT_COLOR_FIX, OFFLOAD_MODES

log = logging.getLogger(__name__)

# Chosen by measurement (bench/engine.py "colour"): on synthetic footage with a colour cast and
# low-frequency blotches, wavelet reconstruction cut the low-pass colour error from 26 to 1.4 dE
# (AdaIN 10, LAB 12) without losing detail (high-pass PSNR unchanged; AdaIN -0.8 dB, LAB
# -1.8 dB), and left correct colour alone (0.18 vs 0.21 dE). It follows the input's
# low-frequency noise (2.7 dE on a noisy input, AdaIN 1.7), hence AdaIN and LAB stay available.
# Pipeline chunks (4n+1 frames). Inside a chunk the VAE runs once and DiT windows are blended in
# latent space: measured (bench/engine.py "blend", same window step) it adds no seam at all
# (joins 1.03-1.06x the inside frame-to-frame change, exactly the unchunked result's ratio at
# those frames) and stays within 0.002 of the unchunked output, while chunks decoded apart and
# cross-faded in pixels either add a jump (5-frame overlap: 1.34x where unchunked has 1.24x)
# or average two different renderings (9 frames: 0.095 mean difference, ghosting). So chunks
# are long (host memory: 61 frames of 1080p float32 are 1.5 GB) and their pixel overlap wide.
CHUNK_FRAMES = 61
CHUNK_OVERLAP = 8  # frames cross-faded by the pipeline between chunks
# Stage hook for benchmarks: called with (stage, "start" | "end").
StageHook = Callable[[str, str], None]

OFFICIAL = {
    "seedvr2-3b": ("SeedVR2 3B: one-step generative restoration", 300),
    "seedvr2-7b": ("SeedVR2 7B: one-step generative restoration, more detail", 290),
    "seedvr2-7b-sharp": ("SeedVR2 7B sharp: one-step, crisper variant", 280),
    "seedvr-3b": ("SeedVR 3B: 50-step restoration with guidance (slow)", 5),
    "seedvr-7b": ("SeedVR 7B: 50-step restoration with guidance (very slow)", 4),
}


# The official inference resizes every input (up or down) to the pixel area of 1280x720,
# keeping its aspect ratio: the size the models were trained for.
OFFICIAL_AREA = 1280 * 720


def seedvr_caps(name: str, description: str) -> EngineCaps:
    return EngineCaps(name=name, chunk_length=CHUNK_FRAMES, overlap=CHUNK_OVERLAP,
                      temporal_multiple=4, size_multiple=2, min_chunk_length=1,
                      needs_download=True, generative=True, description=description,
                      default_area=OFFICIAL_AREA)


# Options every project carries that SeedVR has no use for: "strength" (the classic engine's
# knob), "prompt" (the official models run on the released text embedding; a prompt would need
# the T5 encoder, which is not shipped) and "model" (the engine name already names the model).
# Anything else unknown is a typo and refused, as the classic engine does.
ACCEPTED_UNUSED_OPTIONS = frozenset({"strength", "prompt", "model"})


class SeedVREngine(Engine):
    """One loaded SeedVR model restoring chunks on one device."""

    def __init__(self, name: str = "seedvr", *, model_dir: str | Path | None = None,
                 device: str = "auto", precision: str | None = "auto",
                 color_fix: str = DEFAULT_COLOR_FIX,
                 steps: int | None = None, cfg_scale: float | None = None,
                 memory_budget_gb: float | None = None, offload: str | None = None,
                 compile: bool | None = None, dit_window: int | None = None,
                 vae_tile: int | None = None,
                 stage_hook: StageHook | None = None, **ignored: Any) -> None:
        unknown = sorted(set(ignored) - ACCEPTED_UNUSED_OPTIONS)
        if unknown:
            raise UserError(f"unknown SeedVR engine option(s): {', '.join(unknown)}")
        if color_fix not in COLOR_FIXES:
            raise UserError(f"unknown colour fix {color_fix!r} (choose {', '.join(COLOR_FIXES)})")
        if offload is None or compile is None:  # not given: what the settings dialog says
            from seedvr_desktop.settings import load_settings

            saved = load_settings()
            offload = saved.offload if offload is None else offload
            compile = saved.compile_dit if compile is None else compile
        if offload not in OFFLOAD_MODES:
            raise UserError(f"unknown offload {offload!r} (choose {', '.join(OFFLOAD_MODES)})")
        self.name = name
        desc = OFFICIAL.get(name, ("SeedVR model from a folder", 0))[0]
        self.caps = seedvr_caps(name, desc)
        self.model_dir = Path(model_dir).expanduser() if model_dir else None
        self.device_name, self.precision_name = device or "auto", precision or "auto"
        self.color_fix = color_fix
        self.steps_override, self.cfg_override = steps, cfg_scale
        self.budget_override = memory_budget_gb
        self.offload, self.compile, self.forced_window = offload, compile, dit_window
        self.forced_tile = vae_tile
        self.stage_hook = stage_hook
        self.model: Any = None
        self.settings: Any = None
        self.block_streamer: Any = None  # hooks.BlockStreamer, made on first streamed chunk
        self.stage_seconds: dict[str, float] = {}
        self.stage_peaks: dict[str, int] = {}
        self.oom_retries: list[tuple[str, str]] = []  # (stage, new settings) per retry
        self._work: list[tuple[str, int, int]] = []  # see ChunkRun.work
        self._stage_name = ""

    # ------------------------------------------------------------------ model
    def spec(self) -> Any:
        """The model folder's description (reads no weights)."""
        from seedvr_desktop.engine.seedvr import store as model_store
        from seedvr_desktop.engine.seedvr.folder import resolve_folder

        if self.model_dir is not None:
            return resolve_folder(self.model_dir, preset=self.name if self.name in OFFICIAL
                                  else None)
        if self.name not in OFFICIAL:
            raise UserError("the generic seedvr engine needs --model-dir DIR (a SeedVR model "
                            "folder with a seedvr.json or the official files)")
        folder = model_store.installed_folder(self.name)
        if folder is None:
            missing = model_store.missing_files(self.name)
            raise ModelError(
                f"{self.name} is not installed ({', '.join(missing)} missing); run "
                f"`seedvr-desktop models download {self.name}` (or, for a smaller GPU, "
                f"`seedvr-desktop models recommend`)\n"
                + model_store.offline_instructions(self.name))
        if folder != model_store.model_dir(self.name):
            log.info("%s: the official files are not installed; using %s", self.name, folder)
        return resolve_folder(folder, preset=self.name)

    def _recipe(self, spec: Any) -> Any:
        recipe = spec.recipe
        if self.steps_override:
            recipe = replace(recipe, steps=int(self.steps_override))
        if self.cfg_override is not None:
            recipe = replace(recipe, cfg_scale=float(self.cfg_override))
        return recipe

    def load(self) -> None:
        """Resolve the device, read every weight and check it; idempotent."""
        if self.model is not None:
            return
        from seedvr_desktop.engine import device as dev

        spec = self.spec()
        self.choice = dev.resolve(self.device_name, self.precision_name)
        self.recipe = self._recipe(spec)
        if self.recipe.cfg_scale != 1.0 and spec.neg_path is None:
            raise ModelError(f"guided sampling needs neg_emb.pt in {spec.folder}")
        spec = replace(spec, recipe=self.recipe)
        self.model = self._load_weights(spec)
        if self.compile:
            import torch

            for block in self.model.dit.blocks:
                block.forward = torch.compile(block.forward)
        log.info("%s ready on %s (%s)", spec.name, self.choice.label, self.choice.precision)

    def _load_weights(self, spec: Any) -> Any:
        """Load; the DiT starts in CPU memory when offloading was asked for or when its weights
        would not leave room on the GPU (the memory fit then streams or offloads it)."""
        from seedvr_desktop.engine import device as dev
        from seedvr_desktop.engine.seedvr.folder import load_model
        from seedvr_desktop.engine.seedvr.memory import ModelSizes

        device = self.choice.device
        on_cpu = device.type != "cpu" and self.offload in ("dit", "stream")
        if device.type != "cpu" and not on_cpu:
            sizes = ModelSizes.from_configs(spec.dit_config, spec.vae_config, 64)
            weights = (sizes.dit_params + sizes.vae_params) * self.choice.dtype.itemsize
            on_cpu = weights > 0.75 * dev.free_memory(device)
        try:
            return load_model(spec, device=device, dtype=self.choice.dtype,
                              dit_device=_cpu() if on_cpu else None)
        except Exception as exc:
            if not is_out_of_memory(exc) or on_cpu:
                raise
            log.warning("the DiT does not fit on %s next to the VAE; keeping it in CPU memory",
                        self.choice.label)
            dev.empty_cache(device)
            return load_model(spec, device=device, dtype=self.choice.dtype, dit_device=_cpu())

    def sizes(self) -> Any:
        from seedvr_desktop.engine.seedvr.memory import ModelSizes

        spec = self.model.spec if self.model is not None else self.spec()
        txt = self.model.pos_emb.shape[0] if self.model is not None else 64
        return ModelSizes.from_configs(spec.dit_config, spec.vae_config, txt)

    # ------------------------------------------------------------------ memory
    def budget_bytes(self) -> int:
        """The memory a job may use on the device (see module docs of engine.memory)."""
        from seedvr_desktop.engine import device as dev
        from seedvr_desktop.settings import load_settings

        gb = self.budget_override
        if gb is None or gb <= 0:
            gb = load_settings().memory_budget_gb or None
        if gb:
            return int(float(gb) * (1 << 30))
        device = self.choice.device
        own = _resident_bytes(self.model, device) if self.model is not None else 0
        free = dev.free_memory(device) + own
        step = 1 << 29  # quantised so the same machine chooses the same settings next time
        return max(step, min(free, dev.total_memory(device)) // step * step)

    def fit_settings(self, frames: int, width: int, height: int) -> Any:
        from seedvr_desktop.engine.seedvr.memory import RunSettings, fit

        device = self.choice.device
        base = RunSettings()
        settings = fit(self.sizes(), frames, width, height, self.budget_bytes(),
                       self.choice.dtype.itemsize, scores=device.type != "cuda", start=base,
                       can_offload=device.type != "cpu",  # on the CPU there is nowhere to go
                       weight_bytes=self.weight_bytes(), rates=self._rates()[0])
        if self.offload == "dit":
            settings = replace(settings, offload_dit=True)
        elif self.offload == "stream" and device.type != "cpu":
            settings = replace(settings, offload_dit=True, stream_blocks=True)
        elif self.offload == "none":
            settings = replace(settings, offload_dit=False, stream_blocks=False)
        if self.forced_window:
            settings = replace(settings, dit_window=int(self.forced_window))
        if self.forced_tile:
            settings = replace(settings, tile=int(self.forced_tile))
        return settings

    def weight_bytes(self) -> float | None:
        """Device bytes per DiT parameter of the weight file (fp8/GGUF stay quantised)."""
        spec = self.model.spec if self.model is not None else self.spec()
        per_param = getattr(spec, "dit_bytes_per_param", None)
        return float(per_param(self.choice.dtype.itemsize)) if per_param else None

    def _rates(self) -> tuple[dict[str, float], bool]:
        """FLOP/s for this device and precision: calibrated, or the device class's guess."""
        from seedvr_desktop.engine import device as dev
        from seedvr_desktop.engine.seedvr.memory import load_rates

        return load_rates(dev.device_key(self.choice.device), self.choice.precision,
                          self.choice.device.type, _device_name(self.choice.device))

    def prepare(self, source: SourceInfo, output_size: tuple[int, int]) -> None:
        super().prepare(source, output_size)
        self.load()
        w, h = output_size
        self.settings = self.fit_settings(self.caps.chunk_length, w, h)
        log.info("%s memory plan at %dx%d: %s (budget %.1f GiB)", self.name, w, h,
                 self.settings.describe(), self.budget_bytes() / (1 << 30))

    # ------------------------------------------------------------------ restoring
    def restore_chunk(self, frames: np.ndarray, context: ChunkContext,
                      cancel: threading.Event | None = None) -> np.ndarray:
        from seedvr_desktop.engine.seedvr.geometry import latent_count, valid_frames
        from seedvr_desktop.engine.seedvr.memory import degrade

        if self.model is None or self.settings is None:
            self.prepare(getattr(self, "source", None) or _source_of(frames),
                         getattr(self, "output_size", None) or _size_of(frames))
        t_lat = latent_count(valid_frames(frames.shape[0]))
        while True:
            failure = ""
            try:
                return self._restore(frames, context, cancel, self.settings)
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                failure = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            # Out of the except block: the traceback (and with it the failed attempt's
            # tensors) is gone before memory is released and the chunk retried.
            stage = self._stage_name or "dit"
            self._stage_name = ""
            self._release()
            new = degrade(self.settings, stage, t_lat)
            if new is None:
                raise UserError(
                    f"out of memory in the {stage} stage even with the most frugal "
                    f"settings ({self.settings.describe()}): {failure}; choose a smaller output "
                    "size, close other GPU programs or use --device cpu")
            log.warning("out of memory during %s (%s); retrying the chunk with %s", stage,
                        failure, new.describe())
            self.oom_retries.append((stage, new.describe()))
            self.settings = new

    # ------------------------------------------------------------------ resume
    def run_state(self) -> dict[str, Any] | None:
        """The memory plan in use and the out-of-memory retries that led to it (journaled, so
        `--resume` restores with the same settings and hence the same pictures)."""
        if self.settings is None:
            return None
        from dataclasses import asdict

        return {"plan": asdict(self.settings), "model": self.name,
                "output_size": list(getattr(self, "output_size", ()) or ()),
                "retries": [list(r) for r in self.oom_retries]}

    def use_run_state(self, state: dict[str, Any]) -> None:
        """Adopt the plan an earlier run of this job recorded; says why when it cannot."""
        from seedvr_desktop.engine.seedvr.memory import RunSettings

        try:
            settings = RunSettings(**state["plan"])
        except (KeyError, TypeError) as exc:
            log.warning("the journal's memory plan cannot be used (%s: written by another "
                        "version?); planning afresh, so resumed chunks may differ slightly", exc)
            return
        size = list(getattr(self, "output_size", ()) or ())
        if state.get("model") != self.name or (state.get("output_size") or size) != size:
            log.warning("the journal's memory plan is for %s at %s, this job is %s at %s; "
                        "planning afresh", state.get("model"), state.get("output_size"),
                        self.name, size)
            return
        if settings != self.settings:
            log.info("resuming with the recorded memory plan: %s", settings.describe())
        self.settings = settings
        self.oom_retries = [(str(a), str(b)) for a, b in state.get("retries", [])]

    def _restore(self, frames: np.ndarray, context: ChunkContext,
                 cancel: threading.Event | None, settings: Any) -> np.ndarray:
        from seedvr_desktop.engine.seedvr import chunk as seedvr_run

        run = seedvr_run.ChunkRun(self, frames, context, cancel, settings)
        with self._stage("encode"):
            cond = run.encode()
        with self._stage("dit"):
            latent = run.denoise(cond)
        with self._stage("decode"):
            out = run.decode(latent)
        # The colour fix runs inside the decode loop (one slice at a time); report it apart.
        self.stage_seconds["decode"] -= run.color_seconds
        self.stage_seconds["color"] = self.stage_seconds.get("color", 0.0) + run.color_seconds
        self._work.extend(run.work)
        return out

    @contextmanager
    def _stage(self, name: str) -> Iterator[None]:
        import torch

        self._stage_name = name
        cuda = self.choice.device.type == "cuda"
        if cuda:
            torch.cuda.reset_peak_memory_stats(self.choice.device)
        if self.stage_hook:
            self.stage_hook(name, "start")
        t0 = time.perf_counter()
        try:
            yield
        finally:
            if self.choice.device.type == "mps":  # MPS queues work too: time it, not its launch
                torch.mps.synchronize()
            if cuda:
                torch.cuda.synchronize(self.choice.device)
                peak = torch.cuda.max_memory_allocated(self.choice.device)
                self.stage_peaks[name] = max(self.stage_peaks.get(name, 0), peak)
            self.stage_seconds[name] = self.stage_seconds.get(name, 0.0) + (
                time.perf_counter() - t0)
            if self.stage_hook:
                self.stage_hook(name, "end")
        self._stage_name = ""

    def _release(self) -> None:
        import gc

        from seedvr_desktop.engine import device as dev

        dit = self.model.dit if self.model is not None else None
        if dit is not None and hasattr(dit, "clear_cache"):
            dit.clear_cache()
        gc.collect()  # reference cycles of the failed attempt (autograd-free, but frames)
        dev.empty_cache(self.choice.device)

    def close(self) -> None:
        """Store this run's measured speed (for --plan estimates) and drop the weights."""
        if self.model is not None and self.stage_seconds:
            from seedvr_desktop.engine import device as dev
            from seedvr_desktop.engine.seedvr.memory import record_rates

            s = self.stage_seconds
            flops = self.work_flops()
            rates = {}
            if s.get("dit", 0) > 0.5:
                rates["dit"] = flops["dit"] / s["dit"]
            vae_s = s.get("encode", 0) + s.get("decode", 0)
            if vae_s > 0.5:
                rates["vae"] = (flops["encode"] + flops["decode"]) / vae_s
            if rates:
                record_rates(dev.device_key(self.choice.device), self.choice.precision, rates)
        if self.block_streamer is not None:  # unpin the block arena
            self.block_streamer.close()
            self.block_streamer = None
        self.model = None

    def work_flops(self) -> dict[str, float]:
        """FLOPs of every chunk restored so far, per stage (encode, dit, decode)."""
        from seedvr_desktop.engine.seedvr.memory import chunk_flops

        total = {"encode": 0.0, "dit": 0.0, "decode": 0.0}
        w, h = self.output_size
        guided = self.recipe.cfg_scale != 1.0
        for kind, frames, count in self._work:
            fl = chunk_flops(self.sizes(), frames, w, h, steps=self.recipe.steps, guided=guided)
            if kind == "dit":
                total["dit"] += fl["dit"] * count
            else:
                total["encode"] += fl["encode"] * count
                total["decode"] += fl["decode"] * count
        return total

    # ------------------------------------------------------------------ planning
    def plan(self, frames: int, output_size: tuple[int, int], chunks: int) -> Any:
        """Expected peak memory, time and settings for --plan; loads no weights."""
        from seedvr_desktop.engine import device as dev
        from seedvr_desktop.engine.seedvr.memory import Plan, chunk_flops, estimate

        spec = self.spec()
        self.choice = dev.resolve(self.device_name, self.precision_name)
        recipe = self._recipe(spec)
        w, h = output_size
        chunk = min(frames, self.caps.chunk_length)
        settings = self.fit_settings(chunk, w, h)
        sizes = self.sizes()
        nbytes = self.choice.dtype.itemsize
        peak = estimate(sizes, settings, chunk, w, h, nbytes,
                        scores=self.choice.device.type != "cuda",
                        weight_bytes=self.weight_bytes()).peak
        rates, calibrated = self._rates()
        fl = chunk_flops(sizes, chunk, w, h, steps=recipe.steps,
                         guided=recipe.cfg_scale != 1.0)
        per_chunk = fl["dit"] / rates["dit"] + (fl["encode"] + fl["decode"]) / rates["vae"]
        return Plan(self.name, spec.name, self.choice.label, self.choice.precision, (w, h),
                    frames, chunk, chunks, settings, peak, self.budget_bytes(),
                    per_chunk * chunks, calibrated)


def _device_name(device: Any) -> str:
    """The GPU's marketing name (for the uncalibrated speed guess), "" when unknown."""
    import torch

    if device.type == "cuda" and torch.cuda.is_available():
        return str(torch.cuda.get_device_name(device))
    return ""


def _cpu() -> Any:
    import torch

    return torch.device("cpu")


def _resident_bytes(model: Any, device: Any) -> int:
    total = 0
    for module in (model.dit, model.vae):
        # Buffers too: fp8/GGUF layers keep their stored weights as buffers.
        for p in [*module.parameters(), *module.buffers()]:
            if p.device.type == device.type:
                total += p.numel() * p.element_size()
    return total


def _source_of(frames: np.ndarray) -> SourceInfo:
    from fractions import Fraction

    return SourceInfo(frames.shape[2], frames.shape[1], Fraction(25))


def _size_of(frames: np.ndarray) -> tuple[int, int]:
    return frames.shape[2], frames.shape[1]


# ------------------------------------------------------------------------------ registration
@functools.lru_cache(maxsize=1)
def _gpu_hint() -> bool:
    """A cheap guess whether a GPU is present, without importing torch (registry start-up)."""
    import glob
    import os
    import platform

    if platform.system() == "Darwin":
        return platform.machine() == "arm64"
    if platform.system() == "Windows":
        root = os.environ.get("SYSTEMROOT", r"C:\Windows")
        return os.path.exists(os.path.join(root, "System32", "nvcuda.dll"))
    return bool(glob.glob("/dev/nvidia[0-9]*"))


def register() -> None:
    """Register the five official engines and the generic folder engine `seedvr`."""
    from seedvr_desktop.engine.registry import register_engine
    from seedvr_desktop.engine.seedvr import store as model_store

    for name, (desc, priority) in OFFICIAL.items():
        caps = seedvr_caps(name, f"{desc} (needs `seedvr-desktop models download {name}`)")

        def factory(_name: str = name, **options: Any) -> SeedVREngine:
            return SeedVREngine(_name, **options)

        def available(_name: str = name) -> bool:
            return model_store.installed_folder(_name) is not None

        # `auto` prefers SeedVR2 only where a GPU is present; on CPU-only machines it ranks
        # below the classic engine (priority 10) but stays selectable by name.
        def rank(_priority: int = priority) -> int:
            return _priority if _gpu_hint() else 3

        register_engine(name, factory, caps, available, priority=rank)
    register_engine("seedvr", lambda **o: SeedVREngine("seedvr", **o),
                    seedvr_caps("seedvr", "SeedVR model from a folder (--model-dir DIR)"),
                    lambda: True, priority=1)


register()
