"""DiT cost: CPU time and peak memory of the tiny parity models, and a FLOP model of the presets.

1. CPU timing: the tiny DiT configs of the parity vectors (both families) run the largest
   batch-of-one case in three modes: float32 exact (reference arithmetic, per-window math
   attention), float32 fast (fused SDPA batched by window shape) and bf16 fast. Each mode runs
   in its own process so its peak resident memory (VmHWM, reset just before the forward) is its
   own; the time is the median of a few forwards after a warm-up.
2. FLOP model of the full-size presets at 720p (1280x720, 21 frames -> 6 x 90 x 160 latents,
   58 text tokens): DiT linear FLOPs per token counted from the module shapes, windowed
   attention FLOPs from the real window partition of every layer, and VAE encode/decode FLOPs
   counted with forward hooks on the VAE built on the meta device (no memory, no compute) plus
   its per-frame mid-block attention. The floor is the time at 800 TFLOP/s (H100 bf16 dense).

    python bench/model.py [--parity FILE] [--repeats 3]

Prints tables and writes bench/results/model.json. Measured on the CPU only: no GPU here.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
sys.path.insert(0, str(ROOT))

from seedvr_desktop.models.dit.config import DiTConfig  # noqa: E402
from seedvr_desktop.models.dit.packing import Packing  # noqa: E402
from seedvr_desktop.models.loading import build_dit, load_dit  # noqa: E402
from seedvr_desktop.models.presets import PRESETS  # noqa: E402

MODES = ("fp32-exact", "fp32-fast", "bf16-fast")
PEAK_TFLOPS = 800.0
CLIP = {"frames": 21, "height": 720, "width": 1280, "txt_len": 58}


# ------------------------------------------------------------------------------ CPU timing
def _default_parity() -> Path | None:
    folder = Path(os.environ.get("SEEDVR_PARITY_DIR", ROOT.parent / "shared" / "parity"))
    files = sorted(folder.glob("*.pt")) if folder.is_dir() else []
    return files[0] if files else None


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def worker(parity: Path, family: str, mode: str, repeats: int) -> dict[str, Any]:
    """One (family, mode) measurement; runs in a child process."""
    data = torch.load(parity, map_location="cpu", weights_only=True)[family]
    model = load_dit(data["state_dict"], DiTConfig.from_official(data["config"]))
    model.set_exact_attention(mode == "fp32-exact")
    if mode.startswith("bf16"):
        model = model.to(torch.bfloat16)
    cases = [c for c in data["cases"].values() if c["inputs"]["vid_shape"].shape[0] == 1]
    case = max(cases, key=lambda c: c["inputs"]["vid"].shape[0])
    inp = case["inputs"]
    args = (inp["vid"], inp["txt"], inp["vid_shape"], inp["txt_shape"], inp["timestep"])
    with torch.no_grad():
        model(*args)  # warm-up: builds the window plans and RoPE tables
        base = _rss_kib("VmRSS")
        try:
            Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM)
        except OSError:
            base = _rss_kib("VmHWM")
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = model(*args)
            times.append(time.perf_counter() - t0)
        peak = _rss_kib("VmHWM")
    err = (out.float() - case["output"]).abs().max().item()
    return {
        "family": family,
        "mode": mode,
        "latent": inp["vid_shape"][0].tolist(),
        "tokens": int(inp["vid"].shape[0] // 4),
        "seconds": statistics.median(times),
        "peak_extra_mib": (peak - base) / 1024.0,
        "max_abs_err_vs_reference": err,
        "threads": torch.get_num_threads(),
    }


def cpu_table(parity: Path, repeats: int, threads: int) -> list[dict[str, Any]]:
    rows = []
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    for family in ("dit_v2", "dit_v1"):
        for mode in MODES:
            cmd = [sys.executable, __file__, "--worker", family, mode, "--parity", str(parity),
                   "--repeats", str(repeats), "--threads", str(threads)]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
            if proc.returncode != 0:
                raise RuntimeError(proc.stderr[-2000:])
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return rows


# ------------------------------------------------------------------------------ FLOP model
def _linear_flops(module: nn.Module | None) -> int:
    """FLOPs per token (2 per multiply-add) of every Linear inside `module`."""
    if module is None:
        return 0
    return sum(2 * m.in_features * m.out_features for m in module.modules()
               if isinstance(m, nn.Linear))


def dit_flops(preset: str, latent: tuple[int, int, int], txt_len: int) -> dict[str, float]:
    cfg = PRESETS[preset].dit
    model = build_dit(cfg, device="meta")
    per_vid = _linear_flops(model.vid_in) + _linear_flops(model.vid_out)
    per_txt = _linear_flops(model.txt_in)
    for block in model.blocks:
        for pair in (block.attn.proj_qkv, block.attn.proj_out, block.mlp):
            per_vid += _linear_flops(pair.branch("vid"))
            per_txt += _linear_flops(pair.branch("txt"))
    t, h, w = latent
    grid = (t, h // 2, w // 2)
    tokens = grid[0] * grid[1] * grid[2]
    packing = Packing([grid], [txt_len], torch.device("cpu"))
    attn = 0
    for block in model.blocks:
        plan = packing.window_plan(block.attn.window, block.attn.method, block.attn.rope.kind)
        for group in plan.groups:
            n, s = group.vid_idx.shape
            seg = s + group.txt_idx.shape[1]
            attn += n * 4 * seg * seg * cfg.inner_dim  # QK^T and PV
    linear = per_vid * tokens + per_txt * txt_len
    return {
        "tokens": tokens,
        "linear_gflop_per_vid_token": per_vid / 1e9,
        "linear_tflop": linear / 1e12,
        "attention_tflop": attn / 1e12,
        "tflop_per_call": (linear + attn) / 1e12,
    }


def vae_flops(frames: int, height: int, width: int) -> dict[str, Any]:
    """Encode/decode FLOPs of the released VAE, counted on the meta device."""
    try:
        from seedvr_desktop.models.vae.config import VAEConfig
        from seedvr_desktop.models.vae.model import VideoVAE
    except ImportError as exc:
        return {"available": False, "reason": f"VAE package not importable: {exc}"}
    cfg = VAEConfig()
    with torch.device("meta"):
        vae = VideoVAE(cfg)
    counted = {"n": 0}

    def hook(mod: nn.Module, _args: Any, out: Any) -> None:
        # Convolutions (nn.ConvNd or the VAE's own causal conv): weight (C_out, C_in/groups, *k),
        # one multiply-add per weight element of an output channel, per output element.
        if isinstance(out, torch.Tensor):
            w = mod.weight
            per_out = w.shape[1] if isinstance(mod, nn.Linear) else w[0].numel()
            counted["n"] += 2 * out.numel() * per_out

    def is_counted(m: nn.Module) -> bool:
        w = getattr(m, "weight", None)
        return isinstance(w, torch.Tensor) and (isinstance(m, nn.Linear) or w.dim() >= 3)

    handles = [m.register_forward_hook(hook) for m in vae.modules() if is_counted(m)]
    result: dict[str, Any] = {"available": True}
    try:
        x = torch.empty(1, 3, frames, height, width, device="meta")
        counted["n"] = 0
        post = vae.encode(x)
        result["encode_conv_linear_tflop"] = counted["n"] / 1e12
        counted["n"] = 0
        vae.decode(post.mean)
        result["decode_conv_linear_tflop"] = counted["n"] / 1e12
    except Exception as exc:  # meta execution unsupported somewhere: report, don't guess
        return {"available": False, "reason": f"meta-device VAE run failed: {exc}"}
    finally:
        for h in handles:
            h.remove()
    # Mid-block single-head attention per latent frame, in the encoder and the decoder.
    lat_t = (frames - 1) // cfg.temporal_factor + 1
    n = (height // cfg.spatial_factor) * (width // cfg.spatial_factor)
    attn = lat_t * 4 * n * n * cfg.block_out_channels[-1] / 1e12
    result["mid_attention_tflop_each"] = attn
    result["encode_tflop"] = result["encode_conv_linear_tflop"] + attn
    result["decode_tflop"] = result["decode_conv_linear_tflop"] + attn
    return result


def cost_model() -> dict[str, Any]:
    f, hh, ww = CLIP["frames"], CLIP["height"], CLIP["width"]
    latent = ((f - 1) // 4 + 1, hh // 8, ww // 8)
    vae = vae_flops(f, hh, ww)
    out: dict[str, Any] = {"clip": CLIP, "latent": latent, "vae": vae, "presets": {}}
    for name, preset in PRESETS.items():
        dit = dit_flops(name, latent, CLIP["txt_len"])
        total = dit["tflop_per_call"] * preset.dit_calls
        if vae.get("available"):
            total += vae["encode_tflop"] + vae["decode_tflop"]
        per_frame = total / f
        out["presets"][name] = {
            **dit,
            "dit_calls": preset.dit_calls,
            "dit_tflop_total": dit["tflop_per_call"] * preset.dit_calls,
            "total_tflop": total,
            "tflop_per_frame": per_frame,
            "vae_share": ((vae["encode_tflop"] + vae["decode_tflop"]) / total
                          if vae.get("available") else None),
            "floor_ms_per_frame": per_frame / PEAK_TFLOPS * 1e3,
        }
    return out


# ------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parity", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--worker", nargs=2, metavar=("FAMILY", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.worker:
        print(json.dumps(worker(args.parity, *args.worker, args.repeats)))
        return 0

    print(f"CPU only ({platform.processor() or platform.machine()}, {args.threads} threads, "
          f"ATen {torch.backends.cpu.get_cpu_capability()}); no GPU in this session: the GPU "
          "720p benchmark was not run.")
    result: dict[str, Any] = {"gpu": None, "threads": args.threads,
                              "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    parity = args.parity or _default_parity()
    if parity is None:
        print("no parity vectors found: skipping the tiny-model CPU timing")
        result["cpu"] = []
    else:
        rows = cpu_table(parity, args.repeats, args.threads)
        result["cpu"] = rows
        print(f"\nTiny parity DiTs ({parity.name}), largest batch-of-one case:")
        print(f"{'family':<8} {'mode':<11} {'latent':<13} {'tokens':>6} {'s/forward':>10} "
              f"{'peak MiB':>9} {'err vs ref':>10}")
        for r in rows:
            print(f"{r['family']:<8} {r['mode']:<11} {'x'.join(map(str, r['latent'])):<13} "
                  f"{r['tokens']:>6} {r['seconds']:>10.3f} {r['peak_extra_mib']:>9.1f} "
                  f"{r['max_abs_err_vs_reference']:>10.1e}")

    cost = cost_model()
    result["cost_model"] = cost
    lat = "x".join(map(str, cost["latent"]))
    print(f"\nFLOP model, {CLIP['width']}x{CLIP['height']}, {CLIP['frames']} frames "
          f"(latent {lat}), {CLIP['txt_len']} text tokens, floor at {PEAK_TFLOPS:.0f} TFLOP/s:")
    vae = cost["vae"]
    if vae.get("available"):
        print(f"VAE: encode {vae['encode_tflop']:.1f} TFLOP, decode {vae['decode_tflop']:.1f} "
              f"TFLOP (mid-block attention {vae['mid_attention_tflop_each']:.2f} each)")
    else:
        print(f"VAE: not counted ({vae['reason']})")
    print(f"{'preset':<17} {'GFLOP/tok':>9} {'DiT TF/call':>11} {'attn TF':>8} {'calls':>5} "
          f"{'total TF':>9} {'TF/frame':>8} {'VAE %':>6} {'ms/frame':>8}")
    for name, p in cost["presets"].items():
        share = f"{100 * p['vae_share']:.0f}" if p["vae_share"] is not None else "-"
        print(f"{name:<17} {p['linear_gflop_per_vid_token']:>9.2f} {p['tflop_per_call']:>11.2f} "
              f"{p['attention_tflop']:>8.2f} {p['dit_calls']:>5} {p['total_tflop']:>9.1f} "
              f"{p['tflop_per_frame']:>8.2f} {share:>6} {p['floor_ms_per_frame']:>8.1f}")

    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "model.json"
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2))
    os.replace(tmp, out)
    print(f"\nwrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
