"""Error types that decide how a failure reaches the user.

A `UserError` is something the user can fix (bad path, unsupported file, bad option): the CLI prints
its message on one line and exits 1; the GUI shows it in a dialog. Anything else is a bug or an
environment failure: exit 2 with the log file's path.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input, reported as one line without a traceback."""


class MediaError(UserError):
    """A file that cannot be read or written as media."""


class ModelError(UserError):
    """A model file that is missing, corrupt or of the wrong family."""


class Cancelled(Exception):
    """Raised inside long work when the user asked to stop; never an error for the user."""


class Terminated(KeyboardInterrupt):
    """SIGTERM: stop like Ctrl-C (the same clean-up), then exit 143 (128 + SIGTERM)."""
