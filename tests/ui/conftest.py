"""Fixtures for the GUI tests: a main window with its own settings folder, tiny clips, and a
deterministic 'invert' engine so before/after pixels can be told apart without judgement."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")

from seedvr_desktop.engine import registry
from seedvr_desktop.engine.base import ChunkContext, Engine, EngineCaps
from seedvr_desktop.errors import Cancelled
from tests.clips import make_video

INVERT = "test-invert"
SLOW = "test-slow"


class InvertEngine(Engine):
    """Output = 1 - input, resized to the output size: trivially different from the original."""

    caps = EngineCaps(INVERT, chunk_length=5, overlap=0, description="test engine")
    instances = 0

    def __init__(self, **options: object) -> None:
        type(self).instances += 1

    def restore_chunk(self, frames: np.ndarray, context: ChunkContext,
                      cancel: threading.Event | None = None) -> np.ndarray:
        import cv2

        out_w, out_h = self.output_size
        resized = [cv2.resize(f, (out_w, out_h), interpolation=cv2.INTER_LINEAR) for f in frames]
        return 1.0 - np.stack(resized)


class SlowEngine(Engine):
    """Takes ~0.25 s per frame but checks `cancel` every 20 ms, like a well-behaved model."""

    caps = EngineCaps(SLOW, chunk_length=4, overlap=0, description="test engine")

    def __init__(self, **options: object) -> None:
        pass

    def restore_chunk(self, frames: np.ndarray, context: ChunkContext,
                      cancel: threading.Event | None = None) -> np.ndarray:
        deadline = time.monotonic() + 0.25 * len(frames)
        while time.monotonic() < deadline:
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            time.sleep(0.02)
        return frames


@pytest.fixture
def test_engines(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register the test engines in a private copy of the registry (restored afterwards)."""
    registry.engine_names()  # load the built-in entries before copying
    monkeypatch.setattr(registry, "_ENTRIES", dict(registry._ENTRIES))
    InvertEngine.instances = 0
    registry.register_engine(INVERT, InvertEngine, InvertEngine.caps, priority=-100)
    registry.register_engine(SLOW, SlowEngine, SlowEngine.caps, priority=-100)


@pytest.fixture
def answers(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """Canned answers for the blocking questions; tests change them and read `asked`."""
    from seedvr_desktop.ui import dialogs

    state: dict[str, object] = {"yes_no": True, "unsaved": dialogs.Answer.DISCARD, "asked": []}

    def yes_no(parent, title, text) -> bool:
        state["asked"].append(title)  # type: ignore[union-attr]
        return bool(state["yes_no"])

    def unsaved(parent, what):
        state["asked"].append(f"unsaved: {what}")  # type: ignore[union-attr]
        return state["unsaved"]

    monkeypatch.setattr(dialogs, "ask_yes_no", yes_no)
    monkeypatch.setattr(dialogs, "ask_unsaved_changes", unsaved)
    return state


@pytest.fixture(scope="session")
def qapp():
    """pytest-qt's application, created the way the app does it (dark theme, HiDPI policy)."""
    from seedvr_desktop.ui.app import create_application

    return create_application([])


@pytest.fixture
def window(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answers, test_engines
           ) -> Iterator:
    """A shown MainWindow using a settings folder of its own; closed (threads joined) after."""
    monkeypatch.setenv("SEEDVR_DESKTOP_CONFIG_DIR", str(tmp_path / "config"))
    from seedvr_desktop.ui.main_window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    qtbot.waitExposed(win)
    yield win
    if win.isVisible():
        win.close()
    assert win.host.worker_thread.isFinished(), "the worker thread must be joined on close"


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ui-media")


@pytest.fixture(scope="session")
def small_clip(media_dir: Path) -> Path:
    """48 frames of 160x120 at 25 fps, keyframe every 12 frames, AAC audio."""
    return make_video(media_dir / "small.mp4", frames=48, size=(160, 120), gop=12,
                      audio="aac").path


@pytest.fixture(scope="session")
def long_clip(media_dir: Path) -> Path:
    """A clip long enough that an export is still running when a test acts on it."""
    return make_video(media_dir / "long.mp4", frames=120, size=(160, 120), gop=30).path


def wait_until(qtbot, condition: Callable[[], object], timeout: float = 10.0) -> None:
    qtbot.waitUntil(lambda: bool(condition()), timeout=int(timeout * 1000))


def import_clip(qtbot, window, path: Path) -> None:
    """Import like a drop would and wait for the clip to reach the timeline."""
    before = len(window.session.project.clips)
    window.open_media([path])
    wait_until(qtbot, lambda: len(window.session.project.clips) > before)


def set_engine(window, engine: str, **changes: object) -> None:
    import dataclasses

    from seedvr_desktop.project.commands import SetRestoreDefaults

    settings = dataclasses.replace(window.session.project.restore, engine=engine, **changes)
    assert window.session.push(SetRestoreDefaults(settings))


def message_boxes() -> list:
    from PySide6.QtWidgets import QApplication, QMessageBox

    return [w for w in QApplication.topLevelWidgets()
            if isinstance(w, QMessageBox) and w.isVisible()]
