"""Benchmark the SeedVR engine with tiny random-weight models on the CPU.

Sections (all seeded, all on the CPU; a GPU run of the full-size 3B needs a lent GPU machine):

* stages: seconds and peak memory per stage (decode, VAE encode, DiT, VAE decode, colour fix,
  encode) for one chunk, and the memory estimate of engine/memory.py next to the measurement.
* colour: the colour-fix choice. Synthetic footage, a "restoration" that has the right detail
  but a colour cast and low-frequency colour blotches (the drift users report), fixed with each
  method against the upscaled low-resolution input; colour error (CIE76 dE of the low-pass
  image), detail error (PSNR of the high-pass image) and time per frame.
* blend: long-clip seams. DiT windows blended in latent space (one VAE pass over the chunk)
  against separate chunks cross-faded in pixel space (what the pipeline does between chunks),
  at equal window length and step: mean |frame-to-frame difference| at joins / inside chunks,
  and the distance to the seamless whole-clip result.
* flicker: the default configuration (pipeline chunks with pixel cross-fade) on a long clip.
* cancel: seconds from setting the cancel event to `Cancelled`, during the DiT and the decode.

Peak memory is the rise of the resident set (VmHWM after a reset via /proc/self/clear_refs) with
glibc returning large blocks to the OS at once (the script re-executes itself with
MALLOC_MMAP_THRESHOLD_ set), so freed and reused blocks do not hide a peak.

    python bench/engine.py [--quick]

Prints tables and writes bench/results/engine.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
sys.path.insert(0, str(REPO))  # the tiny-model writer and clip factories live in tests/

_MALLOC = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}
if __name__ == "__main__" and any(os.environ.get(k) != v for k, v in _MALLOC.items()):
    os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **_MALLOC})

import torch  # noqa: E402

from seedvr_desktop.engine.base import ChunkContext, SourceInfo  # noqa: E402
from seedvr_desktop.engine.chunking import OverlapBlender, pad_chunk, plan_chunks  # noqa: E402
from seedvr_desktop.engine.seedvr.engine import SeedVREngine  # noqa: E402
from seedvr_desktop.engine.seedvr.memory import estimate  # noqa: E402
from seedvr_desktop.errors import Cancelled  # noqa: E402
from seedvr_desktop.models import color_fix  # noqa: E402
from tests.engine.classic_material import downscale, render_clip  # noqa: E402
from tests.engine.seedvr_tiny import TINY_DIT_V2, TINY_VAE, write_tiny_model  # noqa: E402

MIB = 1024**2


# ------------------------------------------------------------------------------ measuring
class Peak:
    """Peak resident-set rise of this process between start() and stop() (Linux)."""

    @staticmethod
    def _status(key: str) -> int:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
        return 0

    def start(self) -> None:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")  # resets VmHWM to the current RSS
        self.base = self._status("VmRSS:")

    def stop(self) -> int:
        return max(self._status("VmHWM:") - self.base, 0)


def _parity_configs() -> tuple[dict[str, Any], dict[str, Any], str]:
    """The official-code tiny configs from ../shared/parity when present, else ours."""
    folder = Path(os.environ.get("SEEDVR_PARITY_DIR", REPO.parent / "shared" / "parity"))
    for path in sorted(folder.glob("*.pt")) if folder.is_dir() else []:
        data = torch.load(path, map_location="cpu", weights_only=True)
        return data["dit_v2"]["config"], data["vae"]["config"], f"parity tiny ({path.name})"
    return TINY_DIT_V2, TINY_VAE, "tests tiny"


def _model(root: Path, name: str, **kw: Any) -> Path:
    folder = root / name
    if not folder.exists():
        write_tiny_model(folder, **kw)
    return folder


def _parity_model(root: Path) -> tuple[Path, str]:
    dit, vae, label = _parity_configs()
    folder = _model(root, "parity")
    meta = json.loads((folder / "seedvr.json").read_text())
    if meta["dit"] != dit:  # rewrite weights for the bigger config
        from seedvr_desktop.models.dit.config import DiTConfig
        from seedvr_desktop.models.loading import build_dit
        from seedvr_desktop.models.vae.config import VAEConfig
        from seedvr_desktop.models.vae.loading import build_vae

        torch.manual_seed(0)
        d = build_dit(DiTConfig.from_official(dit), device="cpu")
        v = build_vae(VAEConfig.from_official(vae), device="cpu")
        torch.save(d.state_dict(), folder / "seedvr2_ema_3b.pth")
        torch.save(v.state_dict(), folder / "ema_vae.pth")
        emb = torch.randn(58, dit["txt_in_dim"]).to(torch.bfloat16)
        torch.save(emb, folder / "pos_emb.pt")
        meta.update(dit=dit, vae=vae, name="parity-tiny")
        (folder / "seedvr.json").write_text(json.dumps(meta))
    return folder, label


# ------------------------------------------------------------------------------ stages
def bench_stages(root: Path, size: tuple[int, int], frames: int) -> dict[str, Any]:
    from seedvr_desktop.media.codecs import EncodeSettings
    from seedvr_desktop.media.reader import VideoReader
    from seedvr_desktop.media.writer import VideoWriter
    from tests.clips import make_video

    folder, label = _parity_model(root)
    out_w, out_h = size
    src = make_video(root / "stages.mp4", frames=frames, size=(out_w // 2, out_h // 2))
    peak = Peak()
    rows: dict[str, dict[str, float]] = {}

    peak.start()
    t0 = time.perf_counter()
    with VideoReader(src.path) as reader:
        clip = np.stack([f.image for f in reader.frames()]).astype(np.float32) / 255.0
    rows["decode"] = {"seconds": time.perf_counter() - t0, "peak_mib": peak.stop() / MIB}

    marks: dict[str, float] = {}

    def hook(stage: str, phase: str) -> None:
        if phase == "start":
            peak.start()
        else:
            marks[stage] = peak.stop()

    engine = SeedVREngine("seedvr", model_dir=folder, device="cpu", stage_hook=hook)
    engine.prepare(SourceInfo(clip.shape[2], clip.shape[1], Fraction(25)), size)
    engine.restore_chunk(clip[:5], ChunkContext(0, 0))  # warm-up (kernel selection)
    engine.stage_seconds.clear()
    restored = engine.restore_chunk(clip, ChunkContext(0, 0, seed=1))
    for stage in ("encode", "dit", "decode"):
        key = {"encode": "VAE encode", "dit": "DiT", "decode": "VAE decode"}[stage]
        rows[key] = {"seconds": engine.stage_seconds[stage], "peak_mib": marks[stage] / MIB}
    # The colour fix runs inside the decode loop slice by slice; its own peak is one slice's.
    slice_px = torch.from_numpy(restored[:5]).permute(0, 3, 1, 2) * 2 - 1
    peak.start()
    color_fix.apply_color_fix(engine.color_fix, slice_px, slice_px.flip(-1))
    rows["colour fix"] = {"seconds": engine.stage_seconds["color"], "peak_mib": peak.stop() / MIB}

    peak.start()
    t0 = time.perf_counter()
    with VideoWriter(root / "stages_out.mkv", width=out_w, height=out_h,
                     frame_rate=Fraction(25), settings=EncodeSettings(codec="ffv1"),
                     overwrite=True) as writer:
        for i, frame in enumerate(restored):
            writer.write(frame, Fraction(i, 25))
    rows["encode"] = {"seconds": time.perf_counter() - t0, "peak_mib": peak.stop() / MIB}
    for row in rows.values():
        row["ms_per_frame"] = 1000 * row["seconds"] / frames

    est = estimate(engine.sizes(), engine.settings, frames, out_w, out_h, 4, scores=True)
    weights = (engine.sizes().dit_params + engine.sizes().vae_params) * 4
    # Weights were resident before each stage started, so compare activations only.
    validation = {
        stage: {"measured_mib": marks[stage] / MIB,
                "estimated_mib": (getattr(est, stage) - weights) / MIB}
        for stage in ("encode", "dit", "decode")
    }
    return {"model": label, "size": list(size), "frames": frames, "stages": rows,
            "memory_estimate": validation, "settings": engine.settings.describe()}


# ------------------------------------------------------------------------------ colour fix
def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    return np.stack([cv2.GaussianBlur(f, (0, 0), sigma) for f in x])


def _lab(x: np.ndarray) -> np.ndarray:
    return np.stack([cv2.cvtColor(np.clip(f, 0, 1), cv2.COLOR_RGB2LAB) for f in x])


def bench_colour(frames: int) -> dict[str, Any]:
    w, h = 256, 192
    hr = render_clip(w, h, frames, seed=3)
    rng = np.random.default_rng(5)
    lr = downscale(hr)
    ref = np.clip(np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_CUBIC) for f in lr]),
                  0, 1)
    cast = np.array([0.05, -0.03, 0.04], np.float32)
    gain = np.array([1.06, 0.96, 1.0], np.float32)
    blotch = np.stack([cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0),
                                        30) for _ in range(3)], -1)
    blotch *= 0.06 / blotch.std()
    detail_noise = 0.015 * rng.standard_normal(hr.shape).astype(np.float32)
    chroma = np.stack([cv2.GaussianBlur(rng.standard_normal((h // 2, w // 2)).astype(np.float32),
                                        (0, 0), 2) for _ in range(3)], -1)
    noisy_lr = np.clip(lr + 0.04 * chroma / chroma.std(), 0, 1)
    noisy_ref = np.clip(np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_CUBIC)
                                  for f in noisy_lr]), 0, 1)
    scenarios = {
        "cast+blotches": (np.clip(hr * gain + cast + blotch + detail_noise, 0, 1), ref),
        "global cast": (np.clip(hr * gain + cast + detail_noise, 0, 1), ref),
        "correct colour": (np.clip(hr + detail_noise, 0, 1), ref),
        "cast, noisy input": (np.clip(hr * gain + cast + detail_noise, 0, 1), noisy_ref),
    }
    truth_low = _lab(_blur(hr, 6))
    truth_high = hr - _blur(hr, 2)
    results: dict[str, Any] = {}
    for method in ("none", "wavelet", "adain", "lab"):
        per = {}
        for name, (restored, reference) in scenarios.items():
            x = torch.from_numpy(restored).permute(0, 3, 1, 2) * 2 - 1
            r = torch.from_numpy(reference).permute(0, 3, 1, 2) * 2 - 1
            t0 = time.perf_counter()
            y = color_fix.apply_color_fix(method, x, r)
            sec = time.perf_counter() - t0
            fixed = ((y.clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).numpy()
            de = float(np.linalg.norm(_lab(_blur(fixed, 6)) - truth_low, axis=-1).mean())
            high = fixed - _blur(fixed, 2)
            mse = float(np.mean((high - truth_high) ** 2))
            per[name] = {"colour_dE": de, "detail_psnr": 10 * np.log10(1 / mse),
                         "ms_per_frame": 1000 * sec / frames}
        results[method] = per
    return {"size": [w, h], "frames": frames, "methods": results}


# ------------------------------------------------------------------------------ seams
def _jumps(frames: np.ndarray) -> np.ndarray:
    """(T-1,) mean |f[t] - f[t-1]|: the frame-to-frame change."""
    return np.abs(np.diff(frames.astype(np.float64), axis=0)).mean(axis=(1, 2, 3))


def _seam_stats(out: np.ndarray, joins: list[tuple[int, int]], reference: np.ndarray
                ) -> dict[str, float]:
    """Joins are frame ranges [a, b) where two pieces meet (the blended frames). The same
    ratios of the seamless whole-clip reference at the same frames are given for scale."""
    def ratios(frames: np.ndarray) -> tuple[float, float, float, float]:
        d = _jumps(frames)
        near = np.zeros(len(d), bool)
        for a, b in joins:
            near[max(a - 1, 0):min(b, len(d))] = True
        inside = float(d[~near].mean())
        return float(d[near].mean()), inside, float(d[near].mean()) / inside, float(
            d[near].max()) / inside

    join, inside, ratio, worst = ratios(out)
    _, _, ref_ratio, ref_worst = ratios(reference)
    return {"join_jump": join, "inside_jump": inside, "ratio": ratio, "max_join_ratio": worst,
            "reference_ratio": ref_ratio, "reference_max_join_ratio": ref_worst,
            "distance_to_whole": float(np.abs(out - reference).mean())}


def _pixel_chunks(engine: SeedVREngine, clip: np.ndarray, length: int, overlap: int
                  ) -> tuple[np.ndarray, list[tuple[int, int]]]:
    plans = plan_chunks(len(clip), length, overlap, temporal_multiple=4)
    blender = OverlapBlender(overlap)
    out: list[np.ndarray] = []
    for plan in plans:
        chunk = pad_chunk(plan, clip[plan.start:plan.stop])
        restored = engine.restore_chunk(chunk, ChunkContext(plan.index, plan.start, seed=9))
        out.extend(f for _, f in blender.push(plan, restored))
    out.extend(f for _, f in blender.flush())
    joins = [(p.start, p.start + max(p.overlap_before, 1)) for p in plans[1:]]
    return np.stack(out), joins


def bench_blend(root: Path, frames: int, size: tuple[int, int]) -> dict[str, Any]:
    folder = _model(root, "tiny")
    src = render_clip(size[0] // 2, size[1] // 2, frames, seed=2)
    results: dict[str, Any] = {}
    whole_engine = SeedVREngine("seedvr", model_dir=folder, device="cpu")
    whole_engine.prepare(SourceInfo(size[0] // 2, size[1] // 2, Fraction(25)), size)
    whole = whole_engine.restore_chunk(src, ChunkContext(0, 0, seed=9))
    from seedvr_desktop.engine.seedvr.geometry import latent_count
    from seedvr_desktop.engine.seedvr.windows import plan_spans

    # Pairs with the same step (8 and 12 frames: the same number of joins) and about the same
    # overlap in frames: (DiT window latents, latent overlap, pixel chunk frames, pixel overlap).
    for window, lat_overlap, length, px_overlap in ((3, 1, 13, 5), (5, 2, 21, 9)):
        engine = SeedVREngine("seedvr", model_dir=folder, device="cpu", dit_window=window)
        engine.prepare(SourceInfo(size[0] // 2, size[1] // 2, Fraction(25)), size)
        engine.settings = type(engine.settings)(**{**engine.settings.__dict__,
                                                   "dit_overlap": lat_overlap})
        latent = engine.restore_chunk(src, ChunkContext(0, 0, seed=9))
        spans = plan_spans(latent_count(len(src)), window, lat_overlap)
        # Latent j >= 1 stands for frames 4j-3..4j: the blended latents cover these frames.
        joins = [(4 * a - 3, 4 * (a + lat_overlap) - 3) for a, _ in spans[1:]]
        results[f"latent: windows {window} lat, overlap {lat_overlap} lat"] = _seam_stats(
            latent, joins, whole)
        pixel_engine = SeedVREngine("seedvr", model_dir=folder, device="cpu")
        pixel_engine.prepare(SourceInfo(size[0] // 2, size[1] // 2, Fraction(25)), size)
        pixel, joins = _pixel_chunks(pixel_engine, src, length, px_overlap)
        results[f"pixel: chunks {length} fr, overlap {px_overlap} fr"] = _seam_stats(
            pixel, joins, whole)
    return {"frames": frames, "size": list(size), "methods": results}


def bench_flicker(root: Path, frames: int, size: tuple[int, int]) -> dict[str, Any]:
    from seedvr_desktop.engine.seedvr.engine import CHUNK_FRAMES, CHUNK_OVERLAP

    folder = _model(root, "tiny")
    src = render_clip(size[0] // 2, size[1] // 2, frames, seed=4)
    engine = SeedVREngine("seedvr", model_dir=folder, device="cpu")
    engine.prepare(SourceInfo(size[0] // 2, size[1] // 2, Fraction(25)), size)
    whole = engine.restore_chunk(src, ChunkContext(0, 0, seed=9))
    out, joins = _pixel_chunks(engine, src, CHUNK_FRAMES, CHUNK_OVERLAP)
    stats = _seam_stats(out, joins, whole)
    stats.update(chunk_frames=CHUNK_FRAMES, overlap=CHUNK_OVERLAP, frames=frames,
                 chunks=len(joins) + 1, size=list(size))
    return stats


# ------------------------------------------------------------------------------ cancel
def bench_cancel(root: Path) -> dict[str, float]:
    folder = root / "slow"
    if not folder.exists():
        write_tiny_model(folder, family="v1", steps=500, cfg_scale=6.5)
    results = {}
    for stage, size in (("dit", (256, 192)), ("decode", (640, 480))):
        engine = SeedVREngine("seedvr", model_dir=folder, device="cpu")
        engine.prepare(SourceInfo(size[0] // 2, size[1] // 2, Fraction(25)), size)
        clip = render_clip(size[0] // 2, size[1] // 2, 9, seed=1)
        if stage == "decode":
            engine.recipe = type(engine.recipe)(**{**engine.recipe.__dict__, "steps": 1,
                                                   "cfg_scale": 1.0})
        cancel = threading.Event()
        done: dict[str, float] = {}

        def run(engine: SeedVREngine = engine, clip: np.ndarray = clip,
                cancel: threading.Event = cancel, done: dict[str, float] = done) -> None:
            try:
                engine.restore_chunk(clip, ChunkContext(0, 0), cancel)
            except Cancelled:
                done["at"] = time.monotonic()

        worker = threading.Thread(target=run)
        worker.start()
        while engine._stage_name != stage and worker.is_alive():
            time.sleep(0.005)
        time.sleep(0.3)
        asked = time.monotonic()
        cancel.set()
        worker.join()
        results[f"during {stage} ({size[0]}x{size[1]})"] = done.get("at", float("nan")) - asked
    return results


# ------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer frames")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    q = args.quick
    result: dict[str, Any] = {
        "device": f"cpu ({platform.machine()}, {os.cpu_count()} threads, torch "
                  f"{torch.__version__})",
        "gpu": "none in this session: the full-size 3B at 720p was not measured",
        "load_average": os.getloadavg(),
    }
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        result["stages"] = st = bench_stages(root, (160, 128) if q else (320, 240),
                                             9 if q else 21)
        print(f"\nStages: {st['model']} model, {st['frames']} frames at "
              f"{st['size'][0]}x{st['size'][1]}, CPU fp32 ({st['settings']})")
        print(f"{'stage':<12} {'seconds':>8} {'ms/frame':>9} {'peak MiB':>9}")
        for name, row in st["stages"].items():
            print(f"{name:<12} {row['seconds']:>8.3f} {row['ms_per_frame']:>9.1f} "
                  f"{row['peak_mib']:>9.1f}")
        print("memory estimate (activations) vs measured rise:")
        for name, row in st["memory_estimate"].items():
            print(f"  {name:<7} estimated {row['estimated_mib']:7.1f} MiB, measured "
                  f"{row['measured_mib']:7.1f} MiB")

        result["colour"] = col = bench_colour(6 if q else 12)
        print("\nColour fix (synthetic; lower dE is better, higher detail PSNR is better):")
        names = list(next(iter(col["methods"].values())))
        print(f"{'method':<8} " + " ".join(f"{n[:17]:>17}" for n in names) + f" {'ms/frame':>9}")
        for method, per in col["methods"].items():
            cells = " ".join(f"{per[n]['colour_dE']:6.2f}dE {per[n]['detail_psnr']:5.1f}dB"
                             for n in names)
            ms = np.mean([per[n]["ms_per_frame"] for n in names])
            print(f"{method:<8} {cells} {ms:9.2f}")

        result["blend"] = bl = bench_blend(root, 29 if q else 45, (128, 96))
        print(f"\nSeams, {bl['frames']} frames at {bl['size'][0]}x{bl['size'][1]}, pieces every "
              "8 (first pair) and 12 frames (second pair), tiny random model:")
        print(f"{'method':<40} {'join/inside':>11} {'worst join':>10} {'whole clip':>14} "
              f"{'dist whole':>10}")
        for name, row in bl["methods"].items():
            print(f"{name:<40} {row['ratio']:>11.2f} {row['max_join_ratio']:>10.2f} "
                  f"{row['reference_ratio']:>6.2f}/{row['reference_max_join_ratio']:<7.2f} "
                  f"{row['distance_to_whole']:>10.4f}")
        print("(join/inside: mean frame-to-frame change at joins over the change elsewhere; "
              "whole clip: the same ratios of the unchunked result at those frames)")

        result["flicker"] = fl = bench_flicker(root, 61 if q else 121, (128, 96))
        print(f"\nBoundary flicker, default chunks ({fl['chunk_frames']} frames, "
              f"{fl['overlap']} cross-faded), {fl['frames']} frames: join jump "
              f"{fl['join_jump']:.4f} vs inside {fl['inside_jump']:.4f} "
              f"(ratio {fl['ratio']:.2f}; unchunked at the same frames "
              f"{fl['reference_ratio']:.2f})")

        result["cancel_seconds"] = cs = bench_cancel(root)
        print("\nCancel latency: " + ", ".join(f"{k}: {v:.3f} s" for k, v in cs.items()))
        result["total_seconds"] = time.perf_counter() - t0
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "engine.json"
    tmp_out = out.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(result, indent=2, default=float), encoding="utf-8")
    os.replace(tmp_out, out)
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
