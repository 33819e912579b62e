"""Fixtures for the training tests: a tiny random model, tiny clips, a prepared cache."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.clips import make_image, make_video
from tests.engine.seedvr_tiny import write_tiny_model

SIZE = 32  # pixels: latent 4x4, DiT tokens 2x2
FRAMES = 5  # latent 2 frames



@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("data")
    make_video(d / "walk.mp4", frames=14, size=(48, 32))
    (d / "sub").mkdir()
    make_video(d / "sub" / "pan.mkv", frames=10, size=(40, 40), codec="ffv1")
    make_image(d / "sub" / "still.png", size=(40, 48), index=3)
    return d


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path, data_dir: Path) -> Path:
    from seedvr_desktop.training.session import run_prepare

    cache = tmp_path_factory.mktemp("cache") / "c"
    run_prepare([data_dir], tiny_model, cache, shapes=[(FRAMES, SIZE)], per_clip=2,
                device=torch.device("cpu"))
    return cache
