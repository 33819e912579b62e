"""Logging set-up shared by the CLI and the GUI: a rotating log file plus terse stderr output.

The log file is where internal errors leave their traceback (the CLI prints only its path), so
it lives in the platform's log folder; SEEDVR_DESKTOP_LOG_DIR moves it (tests, portable use).
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from pathlib import Path

APP_NAME = "seedvr-desktop"
LOG_NAME = "seedvr-desktop.log"
_FILE_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

_configured: Path | None = None


def log_dir() -> Path:
    """Folder of the log file (environment override first)."""
    override = os.environ.get("SEEDVR_DESKTOP_LOG_DIR")
    if override:
        return Path(override)
    from platformdirs import user_log_dir

    return Path(user_log_dir(APP_NAME, appauthor=False))


def log_file() -> Path:
    return log_dir() / LOG_NAME


def setup_logging(verbose: bool = False, *, console: bool = True) -> Path | None:
    """Log DEBUG and up to the file, WARNING (INFO with verbose) and up to stderr.

    Returns the log file path, or None when the folder cannot be written (logging then goes to
    stderr only; a read-only home must not stop a restore). Safe to call more than once.
    """
    global _configured
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_seedvr", False):
            root.removeHandler(handler)
            handler.close()
    root.setLevel(logging.DEBUG)
    path: Path | None = None
    target = log_file()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.handlers.RotatingFileHandler(
            target, maxBytes=5 << 20, backupCount=3, encoding="utf-8")
        file_handler.setFormatter(logging.Formatter(_FILE_FORMAT))
        file_handler.setLevel(logging.DEBUG)
        file_handler._seedvr = True  # type: ignore[attr-defined]
        root.addHandler(file_handler)
        path = target
    except OSError:
        path = None
    if console:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(_OneLineFormatter("%(levelname)s: %(message)s"))
        stream.setLevel(logging.INFO if verbose else logging.WARNING)
        stream.addFilter(_not_file_only)
        stream._seedvr = True  # type: ignore[attr-defined]
        root.addHandler(stream)
    # Third-party chatter (PyAV's FFmpeg log bridge, PIL, urllib3) stays out of the console.
    for noisy in ("libav", "PIL", "urllib3", "filelock", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    _configured = path
    return path


class _OneLineFormatter(logging.Formatter):
    """The console gets the message only: a traceback (exc_info, stack_info) goes to the log
    file, never to the user's terminal."""

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info = record.exc_text = record.stack_info = None
        try:
            return super().format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved


def _not_file_only(record: logging.LogRecord) -> bool:
    """Records logged with extra={"file_only": True} (tracebacks) stay out of the console."""
    return not getattr(record, "file_only", False)


def current_log_file() -> Path:
    """The file the last setup_logging call writes to (or where it would)."""
    return _configured or log_file()
