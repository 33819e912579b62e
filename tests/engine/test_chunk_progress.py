"""Engines say how far into a chunk they are (`ChunkContext.report`), so the first chunk of a
job, and a job of one long chunk, gets a moving bar and an ETA before any chunk has finished."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from seedvr_desktop.engine.base import ChunkContext, SourceInfo
from seedvr_desktop.engine.classic.engine import ClassicEngine
from seedvr_desktop.engine.seedvr.engine import SeedVREngine
from tests.engine.seedvr_tiny import write_tiny_model


def _frames(n: int, h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.random((n, h, w, 3), dtype=np.float32)


def _assert_rising_to_the_end(reports: list[float], at_least: int) -> None:
    assert len(reports) >= at_least, reports
    assert reports == sorted(reports)  # never goes back
    assert 0.0 < reports[0] < 1.0 and reports[-1] >= 0.85


def test_the_classic_engine_reports_per_frame() -> None:
    reports: list[float] = []
    engine = ClassicEngine()
    engine.prepare(SourceInfo(width=40, height=30, frame_rate=Fraction(25)), (80, 60))
    engine.restore_chunk(_frames(5, 30, 40), ChunkContext(0, 0, 0, progress=reports.append))
    _assert_rising_to_the_end(reports, at_least=6)  # the analysis, then each of 5 frames
    assert reports[-1] == 1.0


def test_the_seedvr_engine_reports_every_dit_forward(tmp_path: Path) -> None:
    folder = write_tiny_model(tmp_path / "m", family="v1", steps=3, cfg_scale=2.0)
    engine = SeedVREngine("seedvr", model_dir=folder, device="cpu")
    engine.prepare(SourceInfo(48, 32, Fraction(25)), (64, 48))
    reports: list[float] = []
    engine.restore_chunk(_frames(5, 32, 48), ChunkContext(0, 0, 3, progress=reports.append))
    # After the encode, then 3 steps x 2 (guidance) forwards for the one DiT window.
    _assert_rising_to_the_end(reports, at_least=7)
    assert abs(reports[-1] - 0.85) < 1e-9  # the decode follows; the pipeline finishes the bar
