"""Longer checks: a tiny model really learns; DDP and kill -9 resumes match a plain run."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from seedvr_desktop.training.checkpoint import CHECKPOINT, load_checkpoint
from seedvr_desktop.training.config import Stage, TrainConfig
from seedvr_desktop.training.model_io import load_for_training
from seedvr_desktop.training.objective import restore_latent
from seedvr_desktop.training.session import build_trainer
from tests.training.conftest import FRAMES, SIZE

CPU = torch.device("cpu")
RUNNER = Path(__file__).with_name("cli_runner.py")
REPO = Path(__file__).resolve().parents[2]


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.clamp(-1, 1) - b.clamp(-1, 1)) / 2).pow(2).mean())
    return 10 * math.log10(1.0 / mse)


def _restore_psnr(dit: torch.nn.Module, vae: torch.nn.Module, cache: object) -> float:
    sample = cache.load(0)  # type: ignore[attr-defined]
    pos, _ = cache.text()  # type: ignore[attr-defined]
    z = restore_latent(dit, sample.lq, pos, steps=8)
    restored = vae.decode(vae.from_dit_latent(z))  # type: ignore[operator]
    reference = vae.decode(vae.from_dit_latent(sample.hq))  # type: ignore[operator]
    return _psnr(restored, reference)


@pytest.mark.slow
def test_tiny_model_overfits_and_restores_closer(tmp_path: Path, tiny_model: Path,
                                                 cache_dir: Path) -> None:
    cfg = TrainConfig(stages=(Stage(FRAMES, SIZE, 300),), batch=3, lr=3e-3, warmup_steps=20,
                      save_every=1000, text_dropout=0.0, cond_noise_scale=0.0,
                      sample_posterior=False, grad_checkpoint=False).validate()
    trainer = build_trainer(tiny_model, cache_dir, tmp_path / "run", cfg, device=CPU)
    vae = load_for_training(tiny_model, device=CPU).loaded.vae
    before = _restore_psnr(trainer.dit, vae, trainer.cache)
    losses = trainer.run()
    start, end = sum(losses[:20]) / 20, sum(losses[-20:]) / 20
    assert start / end >= 5, (start, end)
    trainer.dit.eval()
    after = _restore_psnr(trainer.dit, vae, trainer.cache)
    assert after > before + 3, (before, after)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    return env


@pytest.mark.slow
def test_two_process_ddp_matches_one_process(tmp_path: Path, tiny_model: Path,
                                             cache_dir: Path) -> None:
    args = ["train", "run", "--model-dir", str(tiny_model), "--cache", str(cache_dir),
            "--frames", str(FRAMES), "--size", str(SIZE), "--steps", "4", "--batch", "4",
            "--micro-batch", "2",            "--lr", "2e-3", "--warmup-steps", "1", "--cpu"]
    one = subprocess.run([sys.executable, str(RUNNER), *args, "--out", str(tmp_path / "one")],
                         env=_env(), capture_output=True, text=True, timeout=120)
    assert one.returncode == 0, one.stderr[-2000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                          "--master-port", str(_free_port()), str(RUNNER), *args,
                          "--out", str(tmp_path / "two")],
                         env=_env(), capture_output=True, text=True, timeout=180)
    assert two.returncode == 0, two.stderr[-3000:]

    def losses(run: str) -> list[float]:
        rows = (tmp_path / run / "metrics.jsonl").read_text().splitlines()
        return [json.loads(r)["loss"] for r in rows]

    assert len(losses("two")) == 4
    torch.testing.assert_close(torch.tensor(losses("two")), torch.tensor(losses("one")),
                               rtol=1e-5, atol=1e-6)
    a = load_checkpoint(tmp_path / "one" / CHECKPOINT)
    b = load_checkpoint(tmp_path / "two" / CHECKPOINT)
    moved = 0
    base = load_for_training(tiny_model, device=CPU).loaded.dit.state_dict()
    for key in a.model:
        torch.testing.assert_close(b.model[key], a.model[key], rtol=1e-4, atol=1e-5)
        moved += not torch.equal(a.model[key], base[key])
    assert moved > 10


@pytest.mark.slow
def test_kill_9_then_resume_matches_uninterrupted(tmp_path: Path, tiny_model: Path,
                                                  cache_dir: Path) -> None:
    steps = 60
    args = ["train", "run", "--model-dir", str(tiny_model), "--cache", str(cache_dir),
            "--frames", str(FRAMES), "--size", str(SIZE), "--steps", str(steps), "--batch", "2",
            "--lr", "2e-3", "--save-every", "1", "--cpu", "--out", str(tmp_path / "k")]
    proc = subprocess.Popen([sys.executable, str(RUNNER), *args], env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    metrics = tmp_path / "k" / "metrics.jsonl"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if metrics.is_file() and len(metrics.read_text().splitlines()) >= 8:
            break
        if proc.poll() is not None:
            pytest.fail(f"the run ended early: {proc.stderr.read()[-2000:]!r}")  # type: ignore[union-attr]
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    done = load_checkpoint(tmp_path / "k" / CHECKPOINT).scalars["step"]
    assert 0 < done < steps  # really interrupted mid-run
    resumed = subprocess.run([sys.executable, str(RUNNER), *args, "--resume"], env=_env(),
                             capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert not [p for p in (tmp_path / "k").iterdir() if p.name.startswith(".")]  # no temps
    plain = subprocess.run([sys.executable, str(RUNNER), *args[:-1], str(tmp_path / "p")],
                           env=_env(), capture_output=True, text=True, timeout=120)
    assert plain.returncode == 0, plain.stderr[-2000:]
    rows_k = [json.loads(r) for r in metrics.read_text().splitlines()]
    rows_p = [json.loads(r) for r in (tmp_path / "p" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows_k] == list(range(1, steps + 1))
    assert [r["loss"] for r in rows_k] == [r["loss"] for r in rows_p]
    a = load_checkpoint(tmp_path / "k" / CHECKPOINT)
    b = load_checkpoint(tmp_path / "p" / CHECKPOINT)
    assert all(torch.equal(a.model[k], b.model[k]) for k in a.model)
