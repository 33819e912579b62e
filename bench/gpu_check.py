"""One-command GPU check: the real chunk path at 720p with full-size random weights, no download.

    python bench/gpu_check.py                      # on a CUDA GPU, <= 8 minutes
    python bench/gpu_check.py --device cpu --tiny  # the same code path on tiny models (CI)

For seedvr2-3b (weights made on the device: bf16, fp8 e4m3 and Q8_0 converted on the fly) it
restores a 21- and a 61-frame chunk at 1280x720 through `SeedVREngine.restore_chunk` (encode ->
DiT -> decode, the path users run) and records per-stage seconds, fps, peak VRAM allocated and
reserved against the plan's estimate; checks that the same seed twice gives identical bytes and
that a forced 8 GB budget peaks under 8 GB; measures each format's output difference against
bf16 on the parity inputs (CPU); then runs `pytest -m cuda`. Prints a table and writes
bench/results/gpu_check.json. `--tiny` uses the tests' tiny configs at 128x96 with 5/9 frames.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

RESULTS = ROOT / "bench" / "results"
GIB = float(1 << 30)
FORMATS = ("bf16", "fp8_e4m3fn", "Q8_0")


# ------------------------------------------------------------------------------ models
def _configs(tiny: bool) -> tuple[Any, Any]:
    from seedvr_desktop.models import presets
    from seedvr_desktop.models.dit.config import DiTConfig
    from seedvr_desktop.models.vae.config import VAEConfig

    if tiny:
        from tests.engine.seedvr_tiny import TINY_DIT_V2, TINY_VAE

        return DiTConfig.from_official(TINY_DIT_V2), VAEConfig.from_official(TINY_VAE)
    return presets.get_preset("seedvr2-3b").dit, VAEConfig()


def make_model(fmt: str, device: torch.device, dtype: torch.dtype, tiny: bool, seed: int) -> Any:
    """A LoadedModel with random weights made on `device`, the DiT stored as `fmt`."""
    from seedvr_desktop.engine.seedvr.folder import RECIPES, LoadedModel, ModelSpec
    from seedvr_desktop.models.gguf_io import quantize_q8_0
    from seedvr_desktop.models.loading import build_dit, load_dit
    from seedvr_desktop.models.vae.loading import build_vae

    dit_cfg, vae_cfg = _configs(tiny)
    torch.manual_seed(seed)
    dit = build_dit(dit_cfg, device=device).to(dtype)
    if fmt != "bf16":
        state: dict[str, Any] = {}
        for key, value in dit.state_dict().items():
            big = value.dim() == 2 and key.endswith(".weight") and value.shape[-1] % 32 == 0
            if big and fmt == "Q8_0":
                state[key] = quantize_q8_0(value)
            elif big:
                state[key] = value.to(torch.float8_e4m3fn)
            else:
                state[key] = value
        del dit
        dit = load_dit(state, dit_cfg, dtype=dtype, device=device)
        del state
    vae = build_vae(vae_cfg, device=device).to(dtype)
    pos = torch.randn(64 if not tiny else 7, dit_cfg.txt_in_dim, generator=torch.Generator()
                      .manual_seed(seed))
    dummy = Path("<random weights>")
    spec = ModelSpec(dummy, "seedvr2-3b" if not tiny else "tiny", dummy, dummy, dummy, None,
                     dit_cfg, vae_cfg, RECIPES["v2"])
    return LoadedModel(spec, dit, vae, pos, None)


def make_engine(model: Any, device: str, budget_gb: float | None) -> Any:
    from seedvr_desktop.engine import device as dev
    from seedvr_desktop.engine.seedvr.engine import SeedVREngine

    eng = SeedVREngine("seedvr2-3b", device=device, memory_budget_gb=budget_gb)
    eng.choice = dev.resolve(device, "auto")
    eng.recipe = model.spec.recipe
    eng.model = model
    return eng


# ------------------------------------------------------------------------------ one run
def restore(eng: Any, frames: np.ndarray, size: tuple[int, int], seed: int) -> dict[str, Any]:
    from seedvr_desktop.engine.base import ChunkContext
    from seedvr_desktop.engine.seedvr.engine import _source_of
    from seedvr_desktop.engine.seedvr.memory import estimate

    device = eng.choice.device
    eng.prepare(_source_of(frames), size)
    eng.stage_seconds.clear()
    eng.stage_peaks.clear()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    out = eng.restore_chunk(frames, ChunkContext(0, 0, seed))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    wall = time.perf_counter() - t0
    est = estimate(eng.sizes(), eng.settings, frames.shape[0], size[0], size[1],
                   eng.choice.dtype.itemsize, scores=device.type != "cuda").peak
    row: dict[str, Any] = {
        "frames": int(frames.shape[0]), "seconds": round(wall, 3),
        "fps": round(frames.shape[0] / wall, 3),
        "stages": {k: round(v, 3) for k, v in eng.stage_seconds.items()},
        "plan": eng.settings.describe(), "estimate_gib": round(est / GIB, 3),
        "finite": bool(np.isfinite(out).all()), "output": out,
    }
    if device.type == "cuda":
        row["peak_allocated_gib"] = round(torch.cuda.max_memory_allocated(device) / GIB, 3)
        row["peak_reserved_gib"] = round(torch.cuda.max_memory_reserved(device) / GIB, 3)
    return row


def source_frames(n: int, size: tuple[int, int], seed: int) -> np.ndarray:
    w, h = size
    rng = np.random.default_rng(seed)
    base = rng.random((1, h // 8, w // 8, 3), dtype=np.float32)
    frames = np.repeat(np.repeat(base, 8, axis=1), 8, axis=2).repeat(n, axis=0)
    return np.clip(frames + 0.02 * rng.standard_normal(frames.shape, dtype=np.float32), 0, 1)


# ------------------------------------------------------------------------------ accuracy
def precision_table() -> list[dict[str, Any]]:
    """Relative L2 difference of the DiT output vs bf16 weights on the parity inputs."""
    from seedvr_desktop.models import gguf_io
    from seedvr_desktop.models.dit.config import DiTConfig
    from seedvr_desktop.models.loading import load_dit
    from tests.models.parity_data import load_parity, parity_dir
    from tests.models.test_quant import fp8_state, rel_err

    files = sorted(parity_dir().glob("*.pt")) if parity_dir().is_dir() else []
    rows: list[dict[str, Any]] = []
    if not files:
        return rows
    import tempfile

    data = load_parity(files[0])
    for family in ("dit_v2", "dit_v1"):
        cfg = DiTConfig.from_official(data[family]["config"])
        sd = data[family]["state_dict"]
        inp = next(iter(data[family]["cases"].values()))["inputs"]

        def run(m: Any, inp: dict[str, Any] = inp) -> torch.Tensor:
            with torch.no_grad():
                return m(inp["vid"], inp["txt"], inp["vid_shape"], inp["txt_shape"],
                         inp["timestep"]).float()

        ref = run(load_dit(sd, cfg, dtype=torch.bfloat16))
        for name, dt in (("fp8_e4m3fn", torch.float8_e4m3fn), ("fp8_e5m2", torch.float8_e5m2)):
            out = run(load_dit(fp8_state(sd, dt), cfg, dtype=torch.bfloat16))
            rows.append({"family": family, "format": name, "rel_l2": rel_err(out, ref),
                         "max_abs": float((out - ref).abs().max())})
        with tempfile.TemporaryDirectory() as tmp:
            for kind in ("Q8_0", "Q4_K"):
                path = Path(tmp) / f"{kind}.gguf"
                gguf_io.write_gguf(sd, path, gguf_io.default_qtype(kind))
                out = run(load_dit(path, cfg, dtype=torch.bfloat16))
                rows.append({"family": family, "format": kind, "rel_l2": rel_err(out, ref),
                             "max_abs": float((out - ref).abs().max())})
    return rows


# ------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tiny", action="store_true", help="tiny models (CPU smoke run)")
    ap.add_argument("--skip-pytest", action="store_true")
    ap.add_argument("--out", type=Path, default=RESULTS / "gpu_check.json")
    args = ap.parse_args(argv)
    device = torch.device(args.device if args.device != "cuda" else "cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA GPU visible to this torch build; use --device cpu --tiny", file=sys.stderr)
        return 2
    size = (128, 96) if args.tiny else (1280, 720)
    counts = (5, 9) if args.tiny else (21, 61)
    from seedvr_desktop.engine import device as dev

    dtype = dev.resolve(args.device, "auto").dtype
    started = time.perf_counter()
    report: dict[str, Any] = {"device": dev.describe(device), "dtype": str(dtype),
                              "size": list(size), "tiny": args.tiny, "runs": []}
    for fmt in FORMATS:
        model = make_model(fmt, device, dtype, args.tiny, seed=0)
        eng = make_engine(model, args.device, None)
        for n in counts:
            frames = source_frames(n, size, seed=n)
            row = restore(eng, frames, size, seed=7)
            out = row.pop("output")
            if fmt == "bf16" and n == counts[0]:
                second = restore(eng, frames, size, seed=7)
                again = second.pop("output")
                report["deterministic"] = bool(np.array_equal(out, again))
                if not report["deterministic"]:  # what a failure report needs to say why
                    diff = np.abs(out.astype(np.float64) - again.astype(np.float64))
                    report["determinism_detail"] = {
                        "max_abs": float(np.nanmax(diff)) if np.isfinite(diff).any() else None,
                        "differing": int((out != again).sum()), "plans": [row["plan"],
                                                                          second["plan"]]}
            report["runs"].append({"format": fmt, **row})
            print(f"{fmt:<11} {n:>3} frames: {row['seconds']:7.2f}s  {row['fps']:6.2f} fps  "
                  f"stages {row['stages']}  peak {row.get('peak_allocated_gib', '-')} / "
                  f"{row.get('peak_reserved_gib', '-')} GiB  estimate {row['estimate_gib']} GiB",
                  flush=True)
        if fmt == "Q8_0":  # the smallest weights: the forced 8 GB budget run
            budget = make_engine(model, args.device, 8.0)
            row = restore(budget, source_frames(counts[-1], size, 3), size, seed=7)
            row.pop("output")
            peak = row.get("peak_reserved_gib")
            row["under_8gb"] = None if peak is None else bool(peak < 8.0)
            report["budget_8gb"] = row
        del model, eng
        dev.empty_cache(device)
    report["precision_vs_bf16"] = precision_table()
    if not args.skip_pytest:
        proc = subprocess.run([sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-p",
                               "no:cacheprovider", "tests"], cwd=ROOT, capture_output=True,
                              text=True)
        tail = (proc.stdout.strip().splitlines() or [""])[-1]
        report["pytest_cuda"] = {"returncode": proc.returncode, "summary": tail}
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    print_table(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(f"wrote {args.out}")
    failures = check_failures(report)
    for line in failures:
        print(f"check failed: {line}", file=sys.stderr)
    return 1 if failures else 0


def check_failures(report: dict[str, Any]) -> list[str]:
    """One line per check the report fails (empty when all pass)."""
    failures = []
    if not report.get("deterministic"):
        failures.append(f"the same seed twice gave different output: "
                        f"{report.get('determinism_detail')}")
    failures += [f"{r['format']} {r['frames']} frames: non-finite output (plan {r['plan']})"
                 for r in report["runs"] if not r["finite"]]
    b = report.get("budget_8gb", {})
    if b.get("under_8gb") is False:
        failures.append(f"the forced 8 GB budget peaked at {b.get('peak_reserved_gib')} GiB")
    cuda = report.get("pytest_cuda", {})
    if cuda.get("returncode", 0) not in (0, 5):
        failures.append(f"pytest -m cuda: {cuda.get('summary')}")
    return failures


def print_table(report: dict[str, Any]) -> None:
    print(f"\n{report['device']}, {report['dtype']}, {report['size'][0]}x{report['size'][1]}")
    print(f"{'format':<11} {'frames':>6} {'encode':>7} {'dit':>7} {'decode':>7} {'fps':>7} "
          f"{'alloc GiB':>9} {'resv GiB':>9} {'plan GiB':>8}  plan")
    for r in report["runs"]:
        s = r["stages"]
        print(f"{r['format']:<11} {r['frames']:>6} {s.get('encode', 0):7.2f} {s.get('dit', 0):7.2f}"
              f" {s.get('decode', 0):7.2f} {r['fps']:7.2f} {r.get('peak_allocated_gib', '-'):>9}"
              f" {r.get('peak_reserved_gib', '-'):>9} {r['estimate_gib']:>8}  {r['plan']}")
    b = report.get("budget_8gb", {})
    print(f"same seed twice identical: {report.get('deterministic')}; forced 8 GB budget: peak "
          f"reserved {b.get('peak_reserved_gib', '-')} GiB (under 8: {b.get('under_8gb')})")
    if report.get("precision_vs_bf16"):
        print(f"{'family':<7} {'format':<11} {'rel L2 vs bf16':>14} {'max abs':>8}")
        for r in report["precision_vs_bf16"]:
            print(f"{r['family']:<7} {r['format']:<11} {r['rel_l2']:14.4f} {r['max_abs']:8.4f}")
    if "pytest_cuda" in report:
        print(f"pytest -m cuda: {report['pytest_cuda']['summary']}")
    print(f"total {report['total_seconds']} s")


if __name__ == "__main__":
    raise SystemExit(main())
