"""DiT parity with the official code's reference vectors (every `*.pt` in the parity folder).

Two checks per file:

* exact: a subprocess runs every DiT case (batch-of-one and packed batches), every stored
  intermediate and every window slice list with the CPU kernels the vectors were produced with
  (AVX2 ATen kernels, 2 threads; see `_dit_parity_worker`), and everything must agree within
  1e-5 max abs (in practice bit for bit). On a CPU without AVX2 kernels this check is skipped with
  the reason, since it cannot reproduce the reference's float rounding.
* fast path, in this process: the fused-SDPA attention used in production must give the same
  outputs up to the bf16 rounding flips of the official attention casts (2e-3 max abs; a wrong
  window, RoPE or modulation gives 1e-2 or more).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
import torch

from seedvr_desktop.models.dit.config import DiTConfig
from seedvr_desktop.models.loading import load_dit
from tests.conftest import REPO_ROOT
from tests.models.parity_data import load_parity, parity_dir, parity_file_ids, parity_files

EXACT_TOL = 1e-5
FAST_TOL = 2e-3
# On an AVX-512 CPU MKL picks its AVX-512 GEMM kernels whatever ATEN_CPU_CAPABILITY says (and
# MKL_ENABLE_INSTRUCTIONS=AVX2 changes their blocking rather than restoring the reference's), so
# the first linear layers differ from the reference in the last bit and the bf16 attention casts
# amplify that to ~1e-3 by the last block. There the check is: input projections within
# INPUT_TOL (one rounding step), every later tensor within FAST_TOL.
INPUT_TOL = 1e-6
INPUT_STAGES = ("txt_in", "vid_in.0", "vid_in.1", "emb_in")
FAMILIES = ("dit_v2", "dit_v1")



def _file(name: str) -> Path:
    files = {p.name: p for p in parity_files()}
    return files[name]


@lru_cache(maxsize=8)
def _exact_report(path: Path) -> dict[str, Any]:
    # PASSIVE: idle OpenMP threads sleep instead of spinning (numerics unchanged, much faster on
    # a busy machine).
    env = dict(os.environ, ATEN_CPU_CAPABILITY="avx2", OMP_NUM_THREADS="2",
               OMP_WAIT_POLICY="PASSIVE")
    proc = subprocess.run(
        [sys.executable, "-m", "tests.models._dit_parity_worker", str(path), "--threads", "2"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _ids() -> list[str]:
    return parity_file_ids() or ["<no parity files>"]


def test_parity_files_present() -> None:
    """Skips locally (fails on CI) when the vectors are missing, so absence is never silent."""
    assert parity_files(), f"no *.pt files in {parity_dir()}"


@pytest.mark.parametrize("name", _ids())
def test_dit_exact_parity(name: str) -> None:
    path = _file(name)
    report = _exact_report(path)
    assert report["windows_checked"] > 0 and not report["windows_bad"], report["windows_bad"]
    if report["capability"] != "AVX2":
        pytest.skip(f"CPU has no AVX2 ATen kernels ({report['capability']}): "
                    "the reference's rounding cannot be reproduced here")
    results = report["results"]
    data = load_parity(path)
    expected_cases = {(f, c) for f in FAMILIES if f in data for c in data[f]["cases"]}
    assert {(r["family"], r["case"]) for r in results} == expected_cases
    assert all(r["batch"] >= 1 for r in results)
    if torch.backends.cpu.get_cpu_capability() == "AVX512":
        bad = [r for r in results
               if not r["err"] <= (INPUT_TOL if r["what"] in INPUT_STAGES else FAST_TOL)]
        assert any(r["what"] in INPUT_STAGES for r in results), "no intermediates checked"
    else:
        bad = [r for r in results if not r["err"] <= EXACT_TOL]
    summary = ", ".join(
        f"{r['family']}/{r['case']}: {r['err']:.2e}" for r in results if r["what"] == "output"
    )
    assert not bad, f"{len(bad)} mismatches, first: {bad[:5]}; outputs: {summary}"


@pytest.mark.parametrize("name", _ids())
def test_dit_windows_in_process(name: str) -> None:
    """Window slices for all listed grids, checked here too (cheap, no subprocess needed)."""
    from seedvr_desktop.models.dit.window import make_windows

    data = load_parity(_file(name))
    windows = data["windows"]
    assert windows, "file has no windows entry"
    for method, grids in windows.items():
        for grid, expected in grids.items():
            assert make_windows(grid, (4, 3, 3), method) == [
                tuple(tuple(a) for a in w) for w in expected
            ], (method, grid)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("name", _ids())
def test_dit_fast_path_close(name: str, family: str) -> None:
    data = load_parity(_file(name))
    if family not in data:
        pytest.skip(f"{name} has no {family} entry")
    entry = data[family]
    model = load_dit(entry["state_dict"], DiTConfig.from_official(entry["config"]))
    model.set_exact_attention(False)
    checked = 0
    for case_name, case in entry["cases"].items():
        inp = case["inputs"]
        if inp["vid_shape"].shape[0] != 1:
            continue  # packed batches are covered by the exact check
        with torch.no_grad():
            out = model(inp["vid"], inp["txt"], inp["vid_shape"], inp["txt_shape"], inp["timestep"])
        err = (out - case["output"]).abs().max().item()
        assert err <= FAST_TOL, f"{family}/{case_name}: fast path off by {err:.2e}"
        checked += 1
    assert checked > 0
