"""Out-of-memory retries (injected failures), and the memory plan journaled for --resume."""

from __future__ import annotations

import json
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from seedvr_desktop.engine.base import ChunkContext, SourceInfo, record_run_state, resume_run_state
from seedvr_desktop.engine.seedvr import chunk as seedvr_chunk
from seedvr_desktop.engine.seedvr.engine import SeedVREngine
from seedvr_desktop.engine.seedvr.memory import RunSettings
from seedvr_desktop.engine.seedvr.oom import is_out_of_memory
from seedvr_desktop.errors import UserError
from tests.engine.seedvr_tiny import write_tiny_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("tiny") / "v2")


def _engine(folder: Path, **options: Any) -> SeedVREngine:
    engine = SeedVREngine("seedvr", model_dir=folder, device="cpu", **options)
    engine.prepare(SourceInfo(48, 32, Fraction(25)), (64, 48))
    return engine


def _frames(n: int = 9) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.random((n, 32, 48, 3), dtype=np.float32)


class _FailOnce:
    """Replace ChunkRun.<stage> with one that raises `error` on its first call."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, stage: str, error: BaseException) -> None:
        self.real = getattr(seedvr_chunk.ChunkRun, stage)
        self.error, self.calls = error, 0
        monkeypatch.setattr(seedvr_chunk.ChunkRun, stage, self._call(stage))

    def _call(self, stage: str) -> Any:
        def run(run_self: Any, *args: Any) -> Any:
            self.calls += 1
            if self.calls == 1:
                raise self.error
            return self.real(run_self, *args)

        return run


@pytest.mark.parametrize(("stage", "error"), [
    ("decode", torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")),
    ("denoise", RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling "
                             "`cublasCreate(handle)`")),
    ("encode", RuntimeError("cuDNN error: CUDNN_STATUS_NOT_SUPPORTED: unable to find an "
                            "engine to execute this computation")),
])
def test_oom_in_a_stage_retries_the_chunk_with_frugal_settings(
        tiny: Path, monkeypatch: pytest.MonkeyPatch, stage: str, error: BaseException) -> None:
    reference = _engine(tiny, dit_window=4).restore_chunk(_frames(), ChunkContext(0, 0, 5))
    engine = _engine(tiny, dit_window=4)
    before = engine.settings
    seen: list[Any] = []
    real_release = engine._release

    def release() -> None:  # the retry's clean-up must run outside the except block
        seen.append(sys.exc_info()[1])
        real_release()

    monkeypatch.setattr(engine, "_release", release)
    fail = _FailOnce(monkeypatch, stage, error)
    out = engine.restore_chunk(_frames(), ChunkContext(0, 0, 5))
    assert fail.calls == 2 and seen == [None]
    name = {"denoise": "dit"}.get(stage, stage)
    assert [s for s, _ in engine.oom_retries] == [name]
    assert engine.settings != before
    assert out.shape == reference.shape and np.isfinite(out).all()
    if stage != "denoise":  # VAE retries offload the DiT: exact, the same pictures
        np.testing.assert_array_equal(out, reference)


def test_other_errors_are_not_retried(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = _engine(tiny)
    _FailOnce(monkeypatch, "decode", RuntimeError("shape mismatch in conv"))
    with pytest.raises(RuntimeError, match="shape mismatch"):
        engine.restore_chunk(_frames(), ChunkContext(0, 0))
    assert engine.oom_retries == []


def test_oom_at_the_most_frugal_settings_says_so(tiny: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    engine = _engine(tiny)
    engine.settings = RunSettings(tile=16, offload_dit=True)  # the end of the VAE ladder
    _FailOnce(monkeypatch, "decode", torch.OutOfMemoryError("CUDA out of memory"))
    with pytest.raises(UserError, match=r"out of memory in the decode stage.*most frugal"):
        engine.restore_chunk(_frames(), ChunkContext(0, 0))


def test_library_allocation_failures_count_as_oom() -> None:
    assert is_out_of_memory(RuntimeError("CUBLAS_STATUS_ALLOC_FAILED"))
    assert is_out_of_memory(RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"))
    assert is_out_of_memory(RuntimeError("unable to find an engine to execute this computation"))
    assert is_out_of_memory(torch.OutOfMemoryError("x"))
    assert not is_out_of_memory(RuntimeError("CUDNN_STATUS_BAD_PARAM"))
    assert not is_out_of_memory(ValueError("unable to find an engine"))


class _Journal:
    """The part of engine.journal.Journal the run-state helpers use (extra + set_extra)."""

    def __init__(self, extra: dict[str, Any] | None = None) -> None:
        self.extra: dict[str, Any] = extra or {}
        self.saves = 0

    def set_extra(self, **values: Any) -> None:
        self.extra.update(values)
        self.saves += 1


def test_plan_and_retries_in_the_journal_give_an_identical_resume(
        tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frames = [_frames(), _frames(9)[::-1].copy()]
    # First run: the second chunk hits an OOM in the DiT and continues with a shorter window.
    first = _engine(tiny)
    journal = _Journal()
    resume_run_state(first, journal)
    assert journal.extra["engine_state"]["plan"]["dit_window"] is None
    a0 = first.restore_chunk(frames[0], ChunkContext(0, 0, 7))
    record_run_state(first, journal)  # segment 1 committed
    fail = _FailOnce(monkeypatch, "denoise", torch.OutOfMemoryError("CUDA out of memory"))
    a1 = first.restore_chunk(frames[1], ChunkContext(1, 9, 7))
    assert fail.calls == 2
    record_run_state(first, journal)  # segment 2 committed, with the retried plan
    monkeypatch.undo()
    stored = json.loads(json.dumps(journal.extra))  # what the journal file holds
    assert stored["engine_state"]["retries"] and stored["engine_state"]["plan"]["dit_window"]

    # Resume from segment 2 on a machine with more memory: the recorded plan wins.
    second = _engine(tiny, memory_budget_gb=64)
    resume_run_state(second, _Journal(stored))
    assert second.settings == first.settings and second.oom_retries == first.oom_retries
    b1 = second.restore_chunk(frames[1], ChunkContext(1, 9, 7))
    np.testing.assert_array_equal(a1, b1)
    # A fresh plan would have used the whole chunk: different pictures.
    fresh = _engine(tiny, memory_budget_gb=64).restore_chunk(frames[1], ChunkContext(1, 9, 7))
    assert fresh.shape == a1.shape == a0.shape and not np.array_equal(fresh, a1)


def test_an_unusable_recorded_plan_is_refused_with_a_reason(
        tiny: Path, caplog: pytest.LogCaptureFixture) -> None:
    engine = _engine(tiny)
    before = engine.settings
    engine.use_run_state({"plan": {"no_such_knob": 1}, "model": "seedvr"})
    assert engine.settings == before and "cannot be used" in caplog.text
    engine.use_run_state({"plan": {"tile": 16}, "model": "seedvr2-7b",
                          "output_size": [64, 48]})
    assert engine.settings == before and "planning afresh" in caplog.text
