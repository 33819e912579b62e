"""User settings: one typed object stored as JSON in the platformdirs config folder.

Environment variables override the folders so tests and portable installs never touch the user's
real configuration: SEEDVR_DESKTOP_CONFIG_DIR, SEEDVR_DESKTOP_DATA_DIR and
SEEDVR_DESKTOP_MODELS_DIR.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from seedvr_desktop.fsutil import atomic_write_text
from seedvr_desktop.vocab import OFFLOAD_MODES

APP_NAME = "seedvr-desktop"
SETTINGS_FILE = "settings.json"

log = logging.getLogger(__name__)


def config_dir() -> Path:
    """Folder for settings.json, window layout and recent projects."""
    override = os.environ.get("SEEDVR_DESKTOP_CONFIG_DIR")
    if override:
        return Path(override)
    from platformdirs import user_config_dir

    return Path(user_config_dir(APP_NAME, appauthor=False))


def data_dir() -> Path:
    """Folder for large per-user data (models, caches)."""
    override = os.environ.get("SEEDVR_DESKTOP_DATA_DIR")
    if override:
        return Path(override)
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME, appauthor=False))


# Where the GUI renders its exports (Settings.render_on): the values, in the order the settings
# dialog lists them. "gpus" is `--cluster local` (every GPU of this computer, started with Ray),
# "cluster" is `--cluster ADDRESS` with Settings.cluster_address.
RENDER_ON = ("local", "gpus", "cluster")


@dataclass
class Settings:
    """Everything the user can set once and expect remembered."""

    models_dir: str = ""  # empty: <data dir>/models, or SEEDVR_DESKTOP_MODELS_DIR
    device: str = "auto"  # auto | cuda | cpu | mps
    precision: str = "auto"  # auto | fp32 | bf16 | fp16
    memory_budget_gb: float = 0.0  # 0: use what the device reports as free
    offload: str = "auto"  # one of vocab.OFFLOAD_MODES: where SeedVR's DiT waits during the VAE
    compile_dit: bool = False  # torch.compile SeedVR's DiT blocks (slow first chunk)
    default_engine: str = "auto"
    recent_projects: list[str] = field(default_factory=list)
    window_state: str = ""  # base64 of QMainWindow.saveState(), owned by the GUI
    window_geometry: str = ""
    render_on: str = "local"  # one of RENDER_ON
    cluster_address: str = ""  # with render_on "cluster": ray://HOST:PORT, HOST:PORT or auto

    def __post_init__(self) -> None:
        if self.render_on not in RENDER_ON:  # a file from a newer version, or edited by hand
            log.warning("unknown render_on %r in the settings: rendering on this computer",
                        self.render_on)
            self.render_on = "local"
        if self.offload not in OFFLOAD_MODES:
            log.warning("unknown offload %r in the settings: letting the memory plan decide",
                        self.offload)
            self.offload = "auto"

    def resolved_models_dir(self) -> Path:
        """The models folder after applying the environment override and the default."""
        override = os.environ.get("SEEDVR_DESKTOP_MODELS_DIR")
        if override:
            return Path(override)
        if self.models_dir:
            return Path(self.models_dir)
        return data_dir() / "models"

    def add_recent(self, path: str, limit: int = 10) -> None:
        self.recent_projects = [path] + [p for p in self.recent_projects if p != path]
        del self.recent_projects[limit:]


# Damaged settings files already warned about, as (path, size, mtime): settings are read by
# several parts of one command, and one damaged file is worth one warning, not five. A file
# changed since (repaired, or damaged again) warns again.
_WARNED: set[tuple[str, int, int]] = set()


def _warn_once(path: Path, text: str, exc: Exception) -> None:
    try:
        st = path.stat()
        key = (str(path.absolute()), st.st_size, st.st_mtime_ns)
    except OSError:
        key = (str(path.absolute()), -1, -1)
    if key in _WARNED:
        log.debug("%s %s: %s", text, path, exc)
        return
    _WARNED.add(key)
    log.warning("%s %s: %s", text, path, exc)


def load_settings(folder: Path | None = None) -> Settings:
    """Read settings; a missing or damaged file gives defaults (never worth a crash)."""
    path = (folder or config_dir()) / SETTINGS_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Settings()
    except (OSError, ValueError) as exc:
        _warn_once(path, "ignoring unreadable settings file", exc)
        return Settings()
    known = {f.name for f in fields(Settings)}
    values = {k: v for k, v in raw.items() if k in known} if isinstance(raw, dict) else {}
    try:
        return Settings(**values)
    except TypeError as exc:
        _warn_once(path, "ignoring malformed settings in", exc)
        return Settings()


def save_settings(settings: Settings, folder: Path | None = None) -> Path:
    """Write settings atomically so a crash mid-write never leaves a truncated file."""
    target_dir = folder or config_dir()
    target_dir.mkdir(parents=True, exist_ok=True)
    path = target_dir / SETTINGS_FILE
    atomic_write_text(path, json.dumps(asdict(settings), indent=2, sort_keys=True))
    return path
