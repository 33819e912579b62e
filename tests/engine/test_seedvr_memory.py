"""Memory fitting, the out-of-memory ladder, --plan, calibration and device selection."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from types import ModuleType

import pytest
import torch

from seedvr_desktop.engine import device as dev
from seedvr_desktop.engine.seedvr import memory
from seedvr_desktop.engine.seedvr.engine import SeedVREngine
from seedvr_desktop.engine.seedvr.memory import GIB, ModelSizes, RunSettings, degrade, estimate, fit
from seedvr_desktop.engine.seedvr.windows import plan_spans, span_weights
from seedvr_desktop.errors import UserError
from seedvr_desktop.models.dit.config import DiTConfig
from seedvr_desktop.models.vae.config import VAEConfig
from tests.engine.seedvr_tiny import write_tiny_model


@pytest.fixture(scope="module")
def sizes_3b() -> ModelSizes:
    """The full-size SeedVR2-3B DiT and the released VAE (built on the meta device)."""
    return ModelSizes.from_configs(DiTConfig(), VAEConfig(), 58)


def test_3b_parameter_counts_match_the_official_model(sizes_3b: ModelSizes) -> None:
    # Architecture doc §1.1/§1.2: 3,391,475,776 DiT parameters, 250,648,227 VAE parameters.
    assert sizes_3b.dit_params == 3_391_475_776
    assert sizes_3b.vae_params == 250_648_227


def test_estimates_grow_with_size_and_shrink_with_frugal_settings(sizes_3b: ModelSizes) -> None:
    base = RunSettings()
    small = estimate(sizes_3b, base, 21, 1280, 720, 2, scores=False)
    big = estimate(sizes_3b, base, 21, 1920, 1080, 2, scores=False)
    assert big.dit > small.dit and big.decode > small.decode
    tiled = estimate(sizes_3b, replace(base, tile=32), 21, 1920, 1080, 2, scores=False)
    assert tiled.decode < big.decode
    offloaded = estimate(sizes_3b, replace(base, offload_dit=True), 21, 1920, 1080, 2,
                         scores=False)
    assert offloaded.decode < big.decode - 6 * GIB  # bf16 3B weights leave the GPU
    windowed = estimate(sizes_3b, replace(base, dit_window=2), 45, 1920, 1080, 2, scores=False)
    assert windowed.dit < estimate(sizes_3b, base, 45, 1920, 1080, 2, scores=False).dit
    streamed = estimate(sizes_3b, replace(base, stream_blocks=True), 21, 1280, 720, 2,
                        scores=False)
    assert streamed.dit < small.dit - 5 * GIB


@pytest.fixture(scope="module")
def memory_sim() -> ModuleType:
    """bench/memory_sim.py: the real chunk path on the meta device, live bytes counted."""
    from tests.conftest import REPO_ROOT

    spec = importlib.util.spec_from_file_location("memory_sim",
                                                  REPO_ROOT / "bench" / "memory_sim.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["memory_sim"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("budget_gb", [80, 24, 12, 8])
def test_fit_stays_within_the_budget(sizes_3b: ModelSizes, memory_sim: ModuleType,
                                     budget_gb: int) -> None:
    # Checked against the peak the real chunk path reaches on the meta device, not against
    # the estimate fit() optimises (a short chunk keeps the test fast; the bench runs 61).
    budget = budget_gb * GIB
    frames = 13
    s = fit(sizes_3b, frames, 1280, 720, budget, 2, scores=False)
    measured = memory_sim.simulate("seedvr2-3b", 1280, 720, s, frames=frames)["peak"]
    assert measured <= budget * memory.SAFETY
    if budget_gb == 80:  # a big GPU runs whole chunks without approximations
        assert s.dit_window is None and s.tile is None and not s.offload_dit
    if budget_gb == 8:  # 6.3 GiB of bf16 weights: something must give
        assert s.offload_dit or s.stream_blocks


def test_fit_prefers_faster_settings_for_bigger_budgets(sizes_3b: ModelSizes) -> None:
    def cost(s: RunSettings) -> tuple[int, ...]:
        return (s.stream_blocks, s.offload_dit, memory.TILES.index(s.tile), -(s.dit_window or 99))

    fits = [fit(sizes_3b, 45, 1920, 1080, gb * GIB, 2, scores=False) for gb in (80, 40, 16, 10)]
    assert [cost(s) for s in fits] == sorted(cost(s) for s in fits)


def test_degrade_ladder_ends() -> None:
    for stage in ("encode", "dit", "decode"):
        s: RunSettings | None = RunSettings()
        steps = 0
        while s is not None:
            s = degrade(s, stage, t_lat=12)
            steps += 1
            assert steps < 20
        assert steps > 2


def test_spans_cover_and_weights_sum_to_one() -> None:
    for n, size, overlap in [(12, 4, 2), (9, 3, 1), (5, 5, 2), (30, 7, 3)]:
        spans = plan_spans(n, size, overlap)
        assert spans[0][0] == 0 and spans[-1][1] == n
        total = torch.zeros(n)
        for i, (a, b) in enumerate(spans):
            assert b - a == min(size, n)
            total[a:b] += span_weights(spans, i)
        assert torch.allclose(total, torch.ones(n))


def test_plan_reports_memory_time_and_size(tmp_path: Path) -> None:
    folder = write_tiny_model(tmp_path / "m")
    engine = SeedVREngine("seedvr", model_dir=folder, device="cpu", memory_budget_gb=2)
    plan = engine.plan(100, (128, 96), chunks=3)
    assert engine.model is None  # planning reads no weights
    assert plan.output_size == (128, 96) and plan.chunks == 3
    assert 0 < plan.peak_bytes <= plan.budget_bytes and plan.seconds > 0
    text = "\n".join(plan.lines())
    assert "128x96" in text and "GiB" in text and "uncalibrated" in text
    # After a run the measured speed is stored and the next plan says it is calibrated.
    memory.record_rates(dev.device_key(torch.device("cpu")), "fp32", {"dit": 1e9, "vae": 2e9})
    plan2 = engine.plan(100, (128, 96), chunks=3)
    assert plan2.calibrated and plan2.seconds != plan.seconds


def test_engine_run_records_calibration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from seedvr_desktop.engine.base import ChunkContext, SourceInfo

    monkeypatch.setenv("SEEDVR_DESKTOP_DATA_DIR", str(tmp_path / "data"))
    folder = write_tiny_model(tmp_path / "m")
    engine = SeedVREngine("seedvr", model_dir=folder, device="cpu")
    engine.prepare(SourceInfo(32, 32, Fraction(25)), (64, 64))
    engine.restore_chunk(torch.rand(9, 32, 32, 3).numpy(), ChunkContext(0, 0))
    engine.stage_seconds = {k: v + 1.0 for k, v in engine.stage_seconds.items()}  # > 0.5 s
    engine.close()
    rates, calibrated = memory.load_rates(dev.device_key(torch.device("cpu")), "fp32", "cpu")
    assert calibrated and rates["dit"] > 0 and rates["vae"] > 0


def test_device_and_precision_choices() -> None:
    assert dev.select_device("cpu").type == "cpu"
    assert dev.parse_precision("auto", torch.device("cpu")) == torch.float32
    assert dev.parse_precision("bf16", torch.device("cpu")) == torch.bfloat16
    with pytest.raises(UserError, match="fp16 is not supported on the CPU"):
        dev.parse_precision("fp16", torch.device("cpu"))
    with pytest.raises(UserError, match="unknown device"):
        dev.select_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="no CUDA GPU"):
            dev.select_device("cuda")
    assert dev.is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory"))
    assert dev.is_out_of_memory(RuntimeError("MPS backend out of memory"))
    assert not dev.is_out_of_memory(RuntimeError("shape mismatch"))
    assert dev.free_memory(torch.device("cpu")) > 0
