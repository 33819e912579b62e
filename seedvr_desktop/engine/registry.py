"""Which restoration engines exist, which are usable here, and how to build one by name.

Engines register a factory, their capabilities and an availability check. Built-in engines
("none", "classic") are registered on first use; the SeedVR engines live in modules listed in
`PLUGIN_MODULES`, which call `register_engine` when imported. Nothing heavy is imported until an
engine is actually created, so the GUI can list engines at start-up.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from seedvr_desktop.engine.base import Engine, EngineCaps
from seedvr_desktop.errors import UserError

log = logging.getLogger(__name__)

# Modules that register more engines when imported (absent ones are skipped silently).
PLUGIN_MODULES: tuple[str, ...] = ("seedvr_desktop.engine.seedvr",)

EngineFactory = Callable[..., Engine]


@dataclass(frozen=True)
class _Entry:
    name: str
    factory: EngineFactory
    caps: EngineCaps
    available: Callable[[], bool]
    priority: int  # `auto` picks the available engine with the highest priority


_ENTRIES: dict[str, _Entry] = {}
_LOCK = threading.RLock()
_loaded = False


def register_engine(name: str, factory: EngineFactory, caps: EngineCaps,
                    available: Callable[[], bool] = lambda: True, *, priority: int = 100) -> None:
    """Add (or replace) an engine. Generative engines should use priorities above 100."""
    with _LOCK:
        _ENTRIES[name] = _Entry(name, factory, caps, available, priority)


def _create_none(**options: object) -> Engine:
    from seedvr_desktop.engine.none_engine import NoneEngine

    return NoneEngine()


def _create_classic(**options: object) -> Engine:
    from seedvr_desktop.engine.classic import ClassicEngine

    return ClassicEngine(**options)


def _classic_caps() -> EngineCaps:
    try:
        from seedvr_desktop.engine import classic
    except ImportError as exc:  # the module is optional until it lands
        log.debug("classic engine unavailable: %s", exc)
        return EngineCaps("classic", chunk_length=1, overlap=0,
                          description="unavailable: " + str(exc))
    caps = getattr(classic, "CLASSIC_CAPS", None) or getattr(classic.ClassicEngine, "caps", None)
    return caps if isinstance(caps, EngineCaps) else EngineCaps("classic", 1, 0)


def _classic_available() -> bool:
    return importlib.util.find_spec("seedvr_desktop.engine.classic") is not None


def _ensure_loaded() -> None:
    global _loaded
    with _LOCK:
        if _loaded:
            return
        _loaded = True
        from seedvr_desktop.engine.none_engine import NONE_CAPS

        _ENTRIES.setdefault("none", _Entry("none", _create_none, NONE_CAPS, lambda: True, 0))
        if "classic" not in _ENTRIES and _classic_available():
            _ENTRIES["classic"] = _Entry("classic", _create_classic, _classic_caps(),
                                         _classic_available, 10)
        for module in PLUGIN_MODULES:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:
                if exc.name != module:  # the plug-in exists but one of its imports is missing
                    log.warning("engine module %s cannot load: %s", module, exc)
            except Exception:
                log.exception("engine module %s failed to load", module)


def engine_names() -> list[str]:
    """Every registered engine name, best first (available or not)."""
    _ensure_loaded()
    with _LOCK:
        return [e.name for e in sorted(_ENTRIES.values(), key=lambda e: -e.priority)]


def available_engines() -> list[EngineCaps]:
    """Capabilities of the engines usable on this machine now, best first."""
    _ensure_loaded()
    with _LOCK:
        entries = sorted(_ENTRIES.values(), key=lambda e: -e.priority)
    return [e.caps for e in entries if _is_available(e)]


def engine_caps(name: str) -> EngineCaps:
    """Capabilities of a registered engine (available or not); UserError for unknown names."""
    return _entry(name).caps


def resolve_auto() -> str:
    """Name of the best engine usable here (falls back to "none", which always works)."""
    usable = available_engines()
    return usable[0].name if usable else "none"


def resolve_name(name: str) -> str:
    """`auto` -> the best installed engine; other names are checked and returned."""
    if name == "auto":
        return resolve_auto()
    _entry(name)
    return name


def create_engine(name: str, **options: object) -> Engine:
    """Build an engine; `auto` picks the best installed one. UserError for unknown/unusable."""
    entry = _entry(resolve_name(name))
    if not _is_available(entry):
        raise UserError(f"engine {entry.name!r} is not usable here: {entry.caps.description}")
    return entry.factory(**options)


def _entry(name: str) -> _Entry:
    _ensure_loaded()
    with _LOCK:
        entry = _ENTRIES.get(name)
        known = ", ".join(["auto", *sorted(_ENTRIES)])
    if entry is None:
        raise UserError(f"unknown engine {name!r}; choose one of {known}")
    return entry


def _is_available(entry: _Entry) -> bool:
    try:
        return bool(entry.available())
    except Exception:
        log.exception("availability check of engine %s failed", entry.name)
        return False
