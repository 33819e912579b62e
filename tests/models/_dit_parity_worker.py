"""Run every DiT case of one parity file and print the max-abs errors as JSON (one line).

Run as `python -m tests.models._dit_parity_worker FILE [--fast]` from the repository root.

Why a separate process: the reference vectors were produced on CPU kernels of a particular
instruction set (AVX2 ATen kernels, two threads). The official attention casts q/k/v and its
output to bf16, so a one-ulp difference from a wider-vector reduction (AVX-512 softmax sums, small
GEMMs) flips a bf16 rounding and shows up as ~1e-4 at the output. The parity test therefore runs
this worker with ATEN_CPU_CAPABILITY=avx2 and 2 threads, where an implementation that follows
the reference's operation order matches bit for bit; the environment variable must be set
before torch starts, hence the subprocess.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

from seedvr_desktop.models.dit.config import DiTConfig
from seedvr_desktop.models.dit.model import NaDiT
from seedvr_desktop.models.dit.window import make_windows
from seedvr_desktop.models.loading import load_dit

FAMILIES = ("dit_v2", "dit_v1")


def _hook_intermediates(model: NaDiT, wanted: list[str]) -> tuple[dict[str, torch.Tensor], list]:
    """Forward hooks storing module outputs under the reference's names ('blocks.0.1' etc.)."""
    names = {k.rsplit(".", 1)[0] if k.rsplit(".", 1)[-1].isdigit() else k for k in wanted}
    modules = dict(model.named_modules())
    store: dict[str, torch.Tensor] = {}
    handles = []
    for name in names:
        if name not in modules:
            continue

        def hook(_mod: Any, _args: Any, out: Any, name: str = name) -> None:
            # Clone: later modules modify some outputs in place (vid_out_ada on vid_out_norm).
            if isinstance(out, tuple):
                for i, t in enumerate(out):
                    store[f"{name}.{i}"] = t.detach().clone()
            else:
                store[name] = out.detach().clone()

        handles.append(modules[name].register_forward_hook(hook))
    return store, handles


def _err(a: torch.Tensor, b: torch.Tensor) -> float:
    if a.shape != b.shape:
        return float("inf")
    if not a.is_floating_point():
        return 0.0 if torch.equal(a, b) else float("inf")
    return (a.double() - b.double()).abs().max().item()


def run_file(path: Path, *, exact: bool) -> dict[str, Any]:
    data = torch.load(path, map_location="cpu", weights_only=True)
    results: list[dict[str, Any]] = []
    for family in FAMILIES:
        if family not in data:
            continue
        entry = data[family]
        model = load_dit(entry["state_dict"], DiTConfig.from_official(entry["config"]))
        model.set_exact_attention(exact)
        for case_name, case in entry["cases"].items():
            inp = case["inputs"]
            wanted = list(case.get("intermediates", {}))
            store, handles = _hook_intermediates(model, wanted)
            with torch.no_grad():
                out = model(
                    inp["vid"], inp["txt"], inp["vid_shape"], inp["txt_shape"], inp["timestep"]
                )
            for h in handles:
                h.remove()
            batch = int(inp["vid_shape"].shape[0])
            results.append({"family": family, "case": case_name, "batch": batch,
                            "what": "output", "err": _err(out, case["output"])})
            for key in wanted:
                got = store.get(key)
                err = float("inf") if got is None else _err(got, case["intermediates"][key])
                results.append({"family": family, "case": case_name, "batch": batch,
                                "what": key, "err": err})
    window_bad = []
    for method, grids in data.get("windows", {}).items():
        for grid, expected in grids.items():
            got = make_windows(grid, (4, 3, 3), method)
            if got != [tuple(tuple(a) for a in w) for w in expected]:
                window_bad.append(f"{method} {tuple(grid)}")
    return {
        "capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "results": results,
        "windows_checked": sum(len(g) for g in data.get("windows", {}).values()),
        "windows_bad": window_bad,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("file", type=Path)
    parser.add_argument("--fast", action="store_true", help="fused SDPA instead of exact path")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    report = run_file(args.file, exact=not args.fast)
    sys.stdout.write(json.dumps(report) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
