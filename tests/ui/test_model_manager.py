"""The GUI model manager: a format per model (official or a community variant), the state of
that format's own folder, the recommendation of the memory planner for this machine, and a
download of the chosen format (through a fake local hub: never the network)."""

from __future__ import annotations

from pathlib import Path

import pytest

from seedvr_desktop.engine.seedvr import catalogue, recommend, store
from seedvr_desktop.engine.seedvr.hub import LocalFolderHub
from tests.engine.test_seedvr_store import _fake_repo, _files

GIB = 1 << 30


@pytest.fixture
def eight_gb_card(monkeypatch: pytest.MonkeyPatch) -> recommend.Machine:
    machine = recommend.Machine("cuda", 8 * GIB, 16 * GIB, "Test GPU 8GB")
    monkeypatch.setattr(recommend, "detect", lambda: machine)
    return machine


def _row(manager, name: str) -> int:  # type: ignore[no-untyped-def]
    for r in range(manager.table.rowCount()):
        if manager.table.item(r, 0).text() == name:
            return r
    raise AssertionError(name)


def test_formats_and_states(qtbot, tmp_path: Path, eight_gb_card) -> None:
    from seedvr_desktop.ui.widgets.model_manager import FORMAT_COLUMN, ModelManager

    models = tmp_path / "models"
    hub = tmp_path / "hub"
    _fake_repo(hub, "ByteDance-Seed/SeedVR2-3B", _files("seedvr2_ema_3b.pth"))
    _fake_repo(hub, "AInVFX/SeedVR2_comfyUI", {"seedvr2_ema_3b-Q8_0.gguf": b"q8" * 100})
    store.download("seedvr2-3b", variant="Q8_0", root=models, hub=LocalFolderHub(hub))

    manager = ModelManager(models)
    qtbot.addWidget(manager)
    assert manager.table.rowCount() == len(catalogue.CATALOG)
    r = _row(manager, "seedvr2-3b")
    box = manager.table.cellWidget(r, FORMAT_COLUMN)
    assert [box.itemText(i) for i in range(box.count())] == [
        "official", *(v.name for v in catalogue.variants_of("seedvr2-3b"))]
    assert manager.table.item(r, 2).text() == "not installed"  # the official files
    box.setCurrentIndex(box.findText("Q8_0"))
    assert manager.table.item(r, 2).text() == "installed"
    assert manager.table.item(r, 1).text() == "3.6 GB"
    assert manager.selected(r) == ("seedvr2-3b", "Q8_0")
    v1 = manager.table.cellWidget(_row(manager, "seedvr-3b"), FORMAT_COLUMN)
    assert v1.count() == 1 and not v1.isEnabled()  # SeedVR (v1) has no community formats


def test_shown_manager_recommends_with_the_planner(qtbot, tmp_path: Path,
                                                   eight_gb_card) -> None:
    from seedvr_desktop.ui.widgets.model_manager import ModelManager

    manager = ModelManager(tmp_path / "models")
    qtbot.addWidget(manager)
    with qtbot.waitSignal(manager.recommended, timeout=30_000) as got:
        manager.show()
    rec = got.args[0]
    expected = recommend.recommend(eight_gb_card)
    assert rec.line == expected.line and rec.choice is not None
    assert manager.advice.text() == f"Recommended: {expected.line}"
    assert "8 GB card, 16 GB RAM" in manager.advice.text()
    row = manager.table.currentRow()
    assert manager.selected(row) == (rec.choice.model, rec.choice.variant)
    assert rec.choice.variant != catalogue.OFFICIAL_VARIANT  # bf16 weights do not fit 8 GB
    manager.refresh()  # e.g. after a download: the recommended format stays chosen
    assert manager.selected(manager.table.currentRow()) == (rec.choice.model, rec.choice.variant)


def test_download_of_the_chosen_format(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       eight_gb_card) -> None:
    from seedvr_desktop.ui.widgets.model_manager import FORMAT_COLUMN, ModelManager

    models, hub = tmp_path / "models", tmp_path / "hub"
    _fake_repo(hub, "ByteDance-Seed/SeedVR2-7B", _files("seedvr2_ema_7b.pth"))
    _fake_repo(hub, "AInVFX/SeedVR2_comfyUI", {"seedvr2_ema_7b-Q4_K_M.gguf": b"q4" * 100})
    real = store.download

    def offline_download(name: str, **kw: object) -> Path:
        kw["hub"] = LocalFolderHub(hub)
        return real(name, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "download", offline_download)
    manager = ModelManager(models)
    qtbot.addWidget(manager)
    r = _row(manager, "seedvr2-7b")
    manager.table.selectRow(r)
    box = manager.table.cellWidget(r, FORMAT_COLUMN)
    box.setCurrentIndex(box.findText("Q4_K_M"))
    manager.download_button.click()
    qtbot.waitUntil(lambda: manager.download_button.isEnabled(), timeout=10_000)
    assert store.is_installed("seedvr2-7b", models, "Q4_K_M")
    # The table was refreshed: the row keeps its format and shows it installed.
    r = _row(manager, "seedvr2-7b")
    assert manager.selected(r) == ("seedvr2-7b", "Q4_K_M") and manager.table.currentRow() == r
    assert manager.table.item(r, 2).text() == "installed"
    assert not store.is_installed("seedvr2-7b", models)  # the official files are elsewhere
