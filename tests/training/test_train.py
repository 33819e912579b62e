from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from seedvr_desktop.errors import UserError
from seedvr_desktop.models import diffusion
from seedvr_desktop.training.cache import LatentCache
from seedvr_desktop.training.checkpoint import CHECKPOINT, load_checkpoint
from seedvr_desktop.training.config import Stage, TrainConfig
from seedvr_desktop.training.objective import batch_loss, build_batch, sample_generator
from seedvr_desktop.training.session import build_trainer
from tests.training.conftest import FRAMES, SIZE

CPU = torch.device("cpu")


def _cfg(steps: int = 6, **kw: object) -> TrainConfig:
    base = {"stages": (Stage(FRAMES, SIZE, steps),), "batch": 3, "lr": 2e-3, "warmup_steps": 2,
            "save_every": 2, "ema_decay": 0.99}
    base.update(kw)
    return TrainConfig(**base).validate()  # type: ignore[arg-type]


def test_resume_reproduces_losses_and_weights(tmp_path: Path, tiny_model: Path,
                                              cache_dir: Path) -> None:
    cfg = _cfg(6, text_dropout=0.5)
    full = build_trainer(tiny_model, cache_dir, tmp_path / "a", cfg, device=CPU)
    losses = full.run()
    part = build_trainer(tiny_model, cache_dir, tmp_path / "b", cfg, device=CPU)
    first = part.run(until=3)
    rest = build_trainer(tiny_model, cache_dir, tmp_path / "b", cfg, resume=True, device=CPU)
    assert rest.step == 3
    second = rest.run()
    assert first + second == losses
    assert len(set(losses)) == 6  # real, varying losses
    a = load_checkpoint(tmp_path / "a" / CHECKPOINT)
    b = load_checkpoint(tmp_path / "b" / CHECKPOINT)
    assert a.model.keys() == b.model.keys() and len(a.model) > 10
    for key in a.model:
        assert torch.equal(a.model[key], b.model[key]), key
        assert torch.equal(a.ema[key], b.ema[key]), key
    start = load_checkpoint(tmp_path / "a" / CHECKPOINT)
    assert start.scalars["step"] == 6 and start.scalars["positions"] == [18]
    rows = [json.loads(x) for x in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert [r["loss"] for r in rows] == losses and {r["stage"] for r in rows} == {0}


def test_existing_run_needs_resume(tmp_path: Path, tiny_model: Path, cache_dir: Path) -> None:
    build_trainer(tiny_model, cache_dir, tmp_path / "r", _cfg(1), device=CPU).run()
    with pytest.raises(UserError, match="--resume"):
        build_trainer(tiny_model, cache_dir, tmp_path / "r", _cfg(1), device=CPU)


def test_impossible_stage_for_the_cache(tmp_path: Path, tiny_model: Path, cache_dir: Path) -> None:
    cfg = TrainConfig(stages=(Stage(9, 64, 2),)).validate()
    with pytest.raises(UserError, match="no samples in the cache"):
        build_trainer(tiny_model, cache_dir, tmp_path / "r", cfg, device=CPU)
    with pytest.raises(UserError, match="does not split"):
        from seedvr_desktop.training.distributed import DistInfo
        from seedvr_desktop.training.trainer import Trainer

        t = build_trainer(tiny_model, cache_dir, tmp_path / "q", _cfg(1), device=CPU)
        Trainer(_cfg(1), t.dit, t.cache, tmp_path / "q2", device=CPU, info=DistInfo(0, 2, 0))


def test_inputs_follow_the_sampler_convention(cache_dir: Path) -> None:
    cache = LatentCache(cache_dir)
    cfg = _cfg(1, text_dropout=0.0, cond_noise_scale=0.0)
    pos, neg = cache.text()
    sample = cache.load(0)
    batch = build_batch([sample], [0], 0, cfg, pos, neg)
    gen = sample_generator(cfg.seed, 0, 0)
    x0 = sample.hq + sample.hq_std * torch.randn(sample.hq.shape, generator=gen)
    lq = sample.lq + sample.lq_std * torch.randn(sample.lq.shape, generator=gen)
    torch.randn(1, generator=gen)  # the timestep draw
    noise = torch.randn(x0.shape, generator=gen)
    t = batch.timestep
    assert 0 < float(t) < 1000
    x_t = (1 - t / 1000) * x0 + (t / 1000) * noise
    vid = batch.vid.reshape(*x0.shape[:3], 33)
    torch.testing.assert_close(vid[..., :16], x_t)
    torch.testing.assert_close(vid[..., 16:32], lq)
    assert torch.equal(vid[..., 32], torch.ones(x0.shape[:3]))
    torch.testing.assert_close(batch.target.reshape(x0.shape), noise - x0)
    assert torch.equal(batch.txt, pos)
    dropped = build_batch([sample], [0], 0, _cfg(1, text_dropout=1.0), pos, neg)
    assert torch.equal(dropped.txt, neg)
    noisy = build_batch([sample], [0], 0, _cfg(1, cond_noise_scale=0.25), pos, neg)
    assert not torch.allclose(noisy.vid[:, 16:32], batch.vid[:, 16:32])
    assert diffusion.condition_noise_timestep(0.25, lq.shape).item() > 0


def test_mixed_shapes_in_one_call_equal_separate_calls(tiny_model: Path, cache_dir: Path) -> None:
    from seedvr_desktop.training.model_io import load_for_training

    cache = LatentCache(cache_dir)
    pos, neg = cache.text()
    image = next(i for i, e in enumerate(cache.entries) if e.frames == 1)
    clip = next(i for i, e in enumerate(cache.entries) if e.frames == FRAMES)
    dit = load_for_training(tiny_model, device=CPU).loaded.dit
    dit.set_exact_attention(False)
    dit.set_attention_rounding(torch.float32)
    cfg = _cfg(1)
    samples = [cache.load(image), cache.load(clip)]
    packed = build_batch(samples, [0, 1], 4, cfg, pos, neg)
    assert packed.vid_shape.tolist() == [[1, 4, 4], [2, 4, 4]]
    loss, per = batch_loss(dit, packed)
    alone = [batch_loss(dit, build_batch([s], [slot], 4, cfg, pos, neg))[0]
             for s, slot in zip(samples, [0, 1])]
    torch.testing.assert_close(per, torch.stack(alone), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(loss, (alone[0] + alone[1]) / 2, rtol=1e-5, atol=1e-6)


def test_grad_checkpointing_gives_the_same_gradients(tiny_model: Path, cache_dir: Path,
                                                      tmp_path: Path) -> None:
    grads = []
    for ckpt in (False, True):
        t = build_trainer(tiny_model, cache_dir, tmp_path / str(ckpt),
                          _cfg(1, grad_checkpoint=ckpt, grad_clip=0.0), device=CPU)
        t.run()
        grads.append({n: p.grad.clone() for n, p in t.named if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    for key in grads[0]:
        torch.testing.assert_close(grads[0][key], grads[1][key], rtol=1e-4, atol=1e-6)
