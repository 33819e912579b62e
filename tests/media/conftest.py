"""Fixtures for the media tests: clips are made once per session and shared between tests."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

from tests.clips import Clip, make_video


@pytest.fixture(scope="session")
def clip_factory(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Clip]:
    """make_video with a per-session cache: same (name, options) -> same file, made once."""
    folder = tmp_path_factory.mktemp("clips")
    made: dict[tuple[str, str], Clip] = {}

    def make(name: str, **kwargs: Any) -> Clip:
        key = (name, repr(sorted(kwargs.items())))
        if key not in made:
            stem, ext = os.path.splitext(name)
            made[key] = make_video(folder / f"{stem}_{len(made)}{ext}", **kwargs)
        return made[key]

    return make
