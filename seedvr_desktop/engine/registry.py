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

# Engines that need no plugin module: what a list shows before the plugins are imported (the GUI
# fills in the rest in the background, since importing them loads torch).
BUILTIN_ENGINES: tuple[str, ...] = ("none", "classic")

# Modules that register more engines when imported (absent ones are skipped silently).
PLUGIN_MODULES: tuple[str, ...] = ("seedvr_desktop.engine.seedvr.engine",)

# Options the pipeline consumes itself (chunk geometry, see plan.effective_caps); engine
# factories never see them.
PIPELINE_OPTIONS = frozenset({"chunk_length", "overlap"})
# Options that only mean something to a generative model. Project settings and the GUI carry
# them for every clip whatever its engine, so a non-generative engine gets them dropped rather
# than refusing the job; anything else it does not know is still a user error (a typo).
GENERATIVE_OPTIONS = frozenset({"model", "model_dir", "color_fix", "precision", "prompt",
                                "device", "memory_budget_gb", "steps", "cfg_scale",
                                "offload", "dit_window", "vae_tile", "compile"})

EngineFactory = Callable[..., Engine]
# A number, or a callable giving it when `auto` ranks engines (for costly hints such as
# "is there a GPU?", evaluated only when a ranking is actually asked for).
Priority = int | Callable[[], int]


@dataclass(frozen=True)
class _Entry:
    name: str
    factory: EngineFactory
    caps: EngineCaps
    available: Callable[[], bool]
    priority: Priority  # `auto` picks the available engine with the highest priority


_ENTRIES: dict[str, _Entry] = {}
_LOCK = threading.RLock()
_loaded = False


def register_engine(name: str, factory: EngineFactory, caps: EngineCaps,
                    available: Callable[[], bool] = lambda: True, *,
                    priority: Priority = 100) -> None:
    """Add (or replace) an engine. Generative engines should use priorities above 100.

    `priority` may be a callable: it is then asked each time engines are ranked.
    """
    with _LOCK:
        _ENTRIES[name] = _Entry(name, factory, caps, available, priority)


def _create_none(**options: object) -> Engine:
    from seedvr_desktop.engine.none_engine import NoneEngine

    # "strength" is a general restoration knob; with nothing restored it has nothing to scale.
    unknown = sorted(set(options) - {"strength"})
    if unknown:
        raise UserError(f"the none engine takes no option(s) {', '.join(unknown)}")
    return NoneEngine()


def _create_classic(**options: object) -> Engine:
    from seedvr_desktop.engine.classic.engine import ClassicEngine

    return ClassicEngine(**options)


def _classic_caps() -> EngineCaps:
    try:
        from seedvr_desktop.engine.classic import engine as classic
    except ImportError as exc:  # the module is optional until it lands
        log.debug("classic engine unavailable: %s", exc)
        return EngineCaps("classic", chunk_length=1, overlap=0,
                          description="unavailable: " + str(exc))
    caps = getattr(classic, "CLASSIC_CAPS", None) or getattr(classic.ClassicEngine, "caps", None)
    return caps if isinstance(caps, EngineCaps) else EngineCaps("classic", 1, 0)


def _classic_available() -> bool:
    return importlib.util.find_spec("seedvr_desktop.engine.classic.engine") is not None


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
        entries = list(_ENTRIES.values())
    return [e.name for e in _ranked(entries)]


def available_engines() -> list[EngineCaps]:
    """Capabilities of the engines usable on this machine now, best first."""
    _ensure_loaded()
    with _LOCK:
        entries = list(_ENTRIES.values())
    return [e.caps for e in _ranked(entries) if _is_available(e)]


def _ranked(entries: list[_Entry]) -> list[_Entry]:
    """Best first; callable priorities are evaluated once per ranking."""
    ranks = {e.name: _priority(e) for e in entries}
    return sorted(entries, key=lambda e: -ranks[e.name])


def _priority(entry: _Entry) -> int:
    if not callable(entry.priority):
        return int(entry.priority)
    try:
        return int(entry.priority())
    except Exception:
        log.exception("priority of engine %s failed; ranking it last", entry.name)
        return -(1 << 30)


def engine_caps(name: str) -> EngineCaps:
    """Capabilities of a registered engine (available or not); UserError for unknown names."""
    return _entry(name).caps


def resolve_auto() -> str:
    """Name of the best engine usable here (falls back to "none", which always works)."""
    _ensure_loaded()
    with _LOCK:
        entries = list(_ENTRIES.values())
    # Entry names, not caps names: an engine may be registered under a name of its own.
    usable = [e.name for e in _ranked(entries) if _is_available(e)]
    return usable[0] if usable else "none"


def resolve_name(name: str) -> str:
    """`auto` -> the best installed engine; other names are checked and returned."""
    if name == "auto":
        return resolve_auto()
    _entry(name)
    return name


def engine_options(name: str, options: dict[str, object]) -> dict[str, object]:
    """The options the factory of engine `name` receives: without the pipeline's own options,
    and without generative-only options when the engine is not generative."""
    caps = _entry(resolve_name(name)).caps
    dropped = set(options) & PIPELINE_OPTIONS
    if not caps.generative:
        dropped |= set(options) & GENERATIVE_OPTIONS
    if dropped - PIPELINE_OPTIONS:
        log.debug("engine %s ignores generative option(s) %s", caps.name,
                  ", ".join(sorted(dropped - PIPELINE_OPTIONS)))
    return {k: v for k, v in options.items() if k not in dropped}


def create_engine(name: str, **options: object) -> Engine:
    """Build an engine; `auto` picks the best installed one. UserError for unknown/unusable.

    Options are filtered by `engine_options`; unknown ones are left for the factory to refuse.
    A model folder given as `model_dir` makes an engine usable whose own files are not
    installed (the engine then checks that folder itself).
    """
    entry = _entry(resolve_name(name))
    own = engine_options(entry.name, options)
    if not own.get("model_dir") and not _is_available(entry):
        raise UserError(f"engine {entry.name!r} is not usable here: {entry.caps.description}")
    return entry.factory(**own)


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
