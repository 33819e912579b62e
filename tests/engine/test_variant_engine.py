"""`--engine seedvr2-3b` with only a community variant installed: `models download seedvr2-3b
--variant Q8_0` alone must be enough. The official files win when present, then the most
precise variant."""

from __future__ import annotations

from pathlib import Path

import pytest

from seedvr_desktop.engine.seedvr import catalogue, store
from seedvr_desktop.engine.seedvr.engine import SeedVREngine
from seedvr_desktop.errors import ModelError


@pytest.fixture
def models_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "models"
    monkeypatch.setenv("SEEDVR_DESKTOP_MODELS_DIR", str(folder))
    return folder


def _install(name: str, variant: str | None) -> Path:
    folder = store.model_dir(name, variant=variant)
    folder.mkdir(parents=True)
    for file in store.model_files(name, variant):
        (folder / file).write_bytes(b"weights")  # the folder code reads names, not weights
    return folder


def test_the_engine_uses_the_official_files_then_the_most_precise_variant(
        models_dir: Path) -> None:
    from seedvr_desktop.engine import registry

    assert store.installed_folder("seedvr2-3b") is None
    with pytest.raises(ModelError, match="models recommend"):
        SeedVREngine("seedvr2-3b").spec()
    assert "seedvr2-3b" not in {c.name for c in registry.available_engines()}

    names = [v.name for v in catalogue.variants_of("seedvr2-3b")]
    assert names.index("Q8_0") < names.index("Q4_K_M")  # catalogue order: most precise first
    _install("seedvr2-3b", "Q4_K_M")
    q8 = _install("seedvr2-3b", "Q8_0")
    assert store.installed_folder("seedvr2-3b") == q8
    spec = SeedVREngine("seedvr2-3b").spec()
    assert spec.folder == q8 and spec.dit_path.name == "seedvr2_ema_3b-Q8_0.gguf"
    assert "seedvr2-3b" in {c.name for c in registry.available_engines()}

    official = _install("seedvr2-3b", None)
    assert SeedVREngine("seedvr2-3b").spec().folder == official
    assert store.installed_folder("seedvr2-7b") is None  # another model is not confused
