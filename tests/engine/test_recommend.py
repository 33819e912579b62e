"""`models recommend`: the real planner (memory.fit + estimate) with each format's bytes per
DiT parameter decides which model and variant fits a machine (no GPU needed: --vram/--ram)."""

from __future__ import annotations

import json

import pytest

from seedvr_desktop import cli
from seedvr_desktop.engine.seedvr import catalogue, recommend
from seedvr_desktop.engine.seedvr.memory import SAFETY, ModelSizes, estimate
from seedvr_desktop.errors import UserError
from seedvr_desktop.models.presets import get_preset

GIB = 1 << 30


def _rec(vram: float, ram: float) -> recommend.Recommendation:
    return recommend.recommend(recommend.machine_for(vram, ram))


@pytest.mark.parametrize(("vram", "ram", "model", "variants", "streamed"), [
    # 8 GB: the 7B in bf16 (16 GB of weights) or the 3B in bf16 would need streaming; an
    # 8-bit 3B fits on the card.
    (8, 16, "seedvr2-3b", {"Q8_0", "fp8_e4m3fn"}, False),
    # 16 GB: the 7B fits in 8 bits, not in bf16 (16.5 GB of weights alone).
    (16, 32, "seedvr2-7b", {"fp8_e4m3fn_mixed"}, False),
    # 24 GB: the 7B in bf16 fits while its DiT waits in RAM during the VAE stages.
    (24, 32, "seedvr2-7b", {catalogue.OFFICIAL_VARIANT, "fp16"}, False),
    # 80 GB: the 7B in bf16, everything on the card.
    (80, 128, "seedvr2-7b", {catalogue.OFFICIAL_VARIANT}, False),
    # 4 GB: only the 4-bit 3B fits without streaming.
    (4, 8, "seedvr2-3b", {"Q4_K_M"}, False),
])
def test_recommendation_table(vram: float, ram: float, model: str, variants: set[str],
                              streamed: bool) -> None:
    rec = _rec(vram, ram)
    assert rec.choice is not None, rec.line
    assert (rec.choice.model, rec.choice.variant in variants) == (model, True), rec.line
    fit = rec.choice.fits["720p"]
    assert fit.streamed is streamed and fit.fits and fit.peak <= vram * GIB * SAFETY
    assert rec.line.startswith(f"{vram} GB card, {ram} GB RAM -> {rec.choice.label}")
    assert f"est. {fit.peak / GIB:.1f} GiB at 720p" in rec.line and "1080p" in rec.line


def test_80_gb_runs_the_7b_in_bf16_unstreamed_and_unoffloaded() -> None:
    rec = _rec(80, 128)
    assert rec.choice is not None
    s = rec.choice.fits["720p"].settings
    assert not s.stream_blocks and not s.offload_dit and s.tile is None
    assert rec.choice.weight_bytes == 2.0


def test_the_estimate_is_the_planners_with_the_variants_bytes_per_parameter() -> None:
    rec = _rec(8, 16)
    assert rec.choice is not None
    preset = get_preset(rec.choice.model)
    sizes = ModelSizes.from_configs(preset.dit, preset.vae, recommend.TXT_LEN)
    v = catalogue.find_variant(rec.choice.model, rec.choice.variant)
    assert v is not None and rec.choice.weight_bytes == pytest.approx(v.bytes_per_param(2))
    fit = rec.choice.fits["720p"]
    want = estimate(sizes, fit.settings, 61, 1280, 720, 2, scores=False,
                    weight_bytes=v.bytes_per_param(2)).peak
    assert fit.peak == want
    # Every candidate was planned, the bf16 7B among them, and it did not fit 8 GB unstreamed.
    big = next(c for c in rec.candidates
               if (c.model, c.variant) == ("seedvr2-7b", catalogue.OFFICIAL_VARIANT))
    assert not big.fits["720p"].ok or big.fits["720p"].streamed


def test_host_ram_limits_streaming() -> None:
    roomy, tight = _rec(2, 32), _rec(2, 6)
    assert roomy.choice is not None and roomy.choice.fits["720p"].streamed
    assert roomy.choice.fits["720p"].host <= 32 * GIB
    # With 6 GB of RAM the 7B's streamed DiT (8+ GB) cannot wait in host memory.
    assert tight.choice is None or tight.choice.model == "seedvr2-3b"


def test_cpu_only_says_so_and_plans_in_ram() -> None:
    rec = _rec(0, 16)
    assert rec.machine.kind == "cpu"
    assert rec.line.startswith("no GPU, 16 GB RAM -> ")
    assert "CPU" in rec.line and "classic engine" in rec.line
    assert rec.choice is not None and rec.choice.model == "seedvr2-3b"
    assert rec.choice.fits["720p"].peak <= 16 * GIB  # fp32 on the CPU: the 8-bit 3B
    assert rec.choice.variant != catalogue.OFFICIAL_VARIANT  # 13.6 GB of fp32 weights
    # With RAM for either, the CPU still gets the 3B (2.4x less work), in full precision.
    roomy = _rec(0, 64)
    assert roomy.choice is not None
    assert (roomy.choice.model, roomy.choice.variant) == ("seedvr2-3b", catalogue.OFFICIAL_VARIANT)
    assert roomy.choice.weight_bytes == 4.0


def test_nothing_fits_is_one_clear_line() -> None:
    rec = _rec(1, 2)
    assert rec.choice is None
    assert "no SeedVR2 model fits" in rec.line and "classic engine" in rec.line
    assert "\n" not in rec.line


def test_bad_sizes_are_user_errors() -> None:
    with pytest.raises(UserError, match="--vram"):
        recommend.machine_for(-1, 16)
    with pytest.raises(UserError, match="--ram"):
        recommend.machine_for(8, 0)


def test_recommend_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["models", "recommend", "--vram", "8", "--ram", "16"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("8 GB card, 16 GB RAM -> seedvr2-3b ")
    assert out[1].startswith("download with: seedvr-desktop models download seedvr2-3b --variant")
    assert cli.main(["models", "recommend", "--vram", "80", "--ram", "128", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["choice"]["model"] == "seedvr2-7b" and data["choice"]["ok"] is True
    assert data["machine"]["vram"] == 80 * GIB and len(data["candidates"]) > 5
    assert cli.main(["models", "recommend", "--vram", "-3"]) == 1
    assert "--vram" in capsys.readouterr().err
