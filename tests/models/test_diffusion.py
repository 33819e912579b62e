"""Diffusion schedule, timesteps, transform, Euler sampler and CFG.

The official-code vectors (`diffusion` section of every `../shared/parity/*.pt`) are matched bit
for bit; the remaining tests check properties derived from the maths itself, independent of our
own output.
"""

from __future__ import annotations

import pytest
import torch

from seedvr_desktop.models import diffusion as D
from tests.models.parity_data import load_parity, parity_dir, parity_file_ids


def _section(name: str) -> dict:
    return load_parity(parity_dir() / name)["diffusion"]


# ----------------------------------------------------------------------------- official vectors
@pytest.mark.parametrize("name", parity_file_ids())
def test_timesteps_match_official(name: str) -> None:
    cases = _section(name)["timesteps"]
    assert cases
    for steps, expected in cases.items():
        got = D.sampling_timesteps(int(steps))
        assert got.dtype == torch.float32
        assert torch.equal(got, expected), f"{steps} steps"


@pytest.mark.parametrize("name", parity_file_ids())
def test_timestep_transform_matches_official(name: str) -> None:
    cases = _section(name)["timestep_transform"]
    assert cases
    for (shape, t), expected in cases.items():
        got = D.timestep_transform(torch.tensor([t], dtype=torch.float32), shape)
        assert torch.equal(got, expected), f"shape {shape}, t {t}: {got} vs {expected}"


@pytest.mark.parametrize("name", parity_file_ids())
def test_euler_matches_official(name: str) -> None:
    cases = _section(name)["euler"]
    assert cases
    for steps, case in cases.items():
        preds = list(case["preds"])
        calls: list[tuple[float, int]] = []

        shape = case["x"].shape

        def predict(x, t, preds=preds, calls=calls, shape=shape) -> torch.Tensor:
            assert x.shape == shape
            calls.append((float(t), len(calls)))
            return preds[len(calls) - 1]

        result = D.euler_sample(case["x"], D.sampling_timesteps(int(steps)), predict)
        assert calls == [(float(t), int(i)) for t, i in case["calls"]]
        assert torch.equal(result, case["result"]), f"{steps} steps"


@pytest.mark.parametrize("name", parity_file_ids())
def test_add_noise_matches_official(name: str) -> None:
    cases = _section(name)["add_noise"]
    assert cases
    for t, case in cases.items():
        got = D.add_noise(case["x0"], case["noise"], torch.tensor([float(t)]))
        assert torch.equal(got, case["result"]), f"t={t}"


# ----------------------------------------------------------------------------- properties
def test_trailing_timesteps_documented_values() -> None:
    assert D.sampling_timesteps(1).tolist() == [1000.0]
    ts = D.sampling_timesteps(50)
    assert len(ts) == 50 and ts[0] == 1000.0 and abs(ts[-1].item() - 20.0) < 1e-4
    assert torch.all(ts[:-1] > ts[1:])
    with pytest.raises(ValueError):
        D.sampling_timesteps(0)


def test_v_conversion_inverts_the_schedule() -> None:
    g = torch.Generator().manual_seed(0)
    x0, xT = torch.randn(2, 3, 4, 16, generator=g), torch.randn(2, 3, 4, 16, generator=g)
    for t in (1.0, 250.0, 999.0):
        x_t = D.add_noise(x0, xT, torch.tensor(t))
        r0, rT = D.v_to_x0_xT(xT - x0, x_t, torch.tensor(t))
        assert torch.allclose(r0, x0, atol=1e-4) and torch.allclose(rT, xT, atol=1e-4)


@pytest.mark.parametrize("steps", [1, 2, 7, 50])
def test_euler_with_true_velocity_reaches_clean_sample(steps: int) -> None:
    """On a straight lerp path a perfect v-predictor lands on x0 whatever the step count, and the
    model is called exactly `steps` times, always at the timesteps in order."""
    g = torch.Generator().manual_seed(1)
    x0, noise = torch.randn(3, 4, 5, 16, generator=g), torch.randn(3, 4, 5, 16, generator=g)
    ts = D.sampling_timesteps(steps)
    seen: list[float] = []

    def oracle(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        seen.append(float(t))
        assert torch.allclose(x, D.add_noise(x0, noise, t), atol=1e-4)  # we are on the path
        return noise - x0

    out = D.euler_sample(noise.clone(), ts, oracle)
    assert seen == ts.tolist()
    assert torch.allclose(out, x0, atol=1e-4)


def test_seedvr2_one_step_is_noise_minus_v() -> None:
    eps, v = torch.randn(2, 2, 2, 16), torch.randn(2, 2, 2, 16)
    out = D.euler_sample(eps, D.sampling_timesteps(1), lambda x, t: v)
    assert torch.allclose(out, eps - v)


def test_cfg_scale_one_runs_only_the_positive_branch() -> None:
    pos = torch.randn(4, 16)

    def neg_must_not_run(x, t):
        raise AssertionError("negative branch called at scale 1.0")

    f = D.guided(lambda x, t: pos, neg_must_not_run, 1.0)
    assert torch.equal(f(torch.zeros(1), torch.tensor(1000.0)), pos)


def test_cfg_combines_both_branches() -> None:
    pos, neg = torch.randn(4, 16), torch.randn(4, 16)
    order: list[str] = []

    def p(x, t):
        order.append("pos")
        return pos

    def n(x, t):
        order.append("neg")
        return neg

    out = D.guided(p, n, 6.5)(torch.zeros(1), torch.tensor(500.0))
    assert order == ["pos", "neg"]
    assert torch.allclose(out, 6.5 * pos - 5.5 * neg, atol=1e-5)
    with pytest.raises(ValueError):
        D.guided(p, None, 6.5)


def test_cfg_rescale_restores_positive_std() -> None:
    pos, neg = torch.randn(2, 64), torch.randn(2, 64)
    full = D.classifier_free_guidance(pos, neg, 5.0, rescale=1.0)
    assert torch.allclose(full.std(dim=1), pos.std(dim=1), rtol=1e-5)


def test_transform_documented_cases() -> None:
    """Architecture doc §5: 720p condition noise at scale 0.1 is t'≈231.4 with the official
    (H, W, C) shape bug and ≈324.6 with the true shape; scale 0 leaves the condition alone."""
    bug = D.condition_noise_timestep(0.1, (31, 90, 160, 16))
    true = D.condition_noise_timestep(0.1, (31, 90, 160, 16), official_shape_bug=False)
    assert abs(bug.item() - 231.4) < 0.1 and abs(true.item() - 324.6) < 0.1
    latent, aug = torch.randn(3, 4, 6, 16), torch.randn(3, 4, 6, 16)
    assert torch.equal(D.noise_condition(latent, aug, 0.0), latent)
    # Transform is monotone in t and keeps the end points.
    ts = torch.tensor([0.0, 100.0, 500.0, 1000.0])
    out = D.timestep_transform(ts, (21, 90, 160))
    assert out[0] == 0.0 and out[-1] == 1000.0 and torch.all(out[1:] > out[:-1])
    assert torch.all(out[1:-1] > ts[1:-1])  # large inputs shift toward noise


def test_dit_input_layout() -> None:
    x, c = torch.randn(2, 3, 4, 16), torch.randn(2, 3, 4, 16)
    v = D.dit_input(x, c)
    assert v.shape == (2, 3, 4, 33)
    assert torch.equal(v[..., :16], x) and torch.equal(v[..., 16:32], c)
    assert torch.all(v[..., 32] == 1.0)
