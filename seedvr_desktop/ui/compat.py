"""Work-arounds for defects in the Qt bindings, each with the reason it exists.

PySide6 6.12 on CPython 3.11 and older updates the reference counts of the objects its wrappers
return (None, True/False, small ints) while the GIL is released. With any other Python thread
running (our decoder, importer and restore worker threads) the counts drift and one of those
singletons is eventually "deallocated": the process aborts with `Fatal Python error:
none_dealloc` / `bool_dealloc`, within minutes of scrubbing or at interpreter exit. CPython 3.12
made these objects immortal, which hides the race entirely; `pin_shared_singletons` gives them the
same property on older interpreters by adding a huge constant to their reference counts, so the
drift can never reach zero. It changes nothing else: these objects are never freed in a healthy
process anyway. Running on CPython >= 3.12 makes the whole module a no-op.
"""

from __future__ import annotations

import ctypes
import logging
import sys

log = logging.getLogger(__name__)

_PIN = 1 << 40  # far beyond any drift a process can accumulate
_pinned = False


def _shared_objects() -> list[object]:
    """The interpreter-wide singletons and caches that wrappers hand out without allocating."""
    return [None, True, False, Ellipsis, NotImplemented, (), "", b"", *range(-5, 257)]


def pin_shared_singletons() -> bool:
    """Make the shared singletons effectively immortal on CPython < 3.12; True when applied."""
    global _pinned
    if _pinned:
        return True
    if sys.implementation.name != "cpython" or sys.version_info >= (3, 12):
        return False
    if hasattr(sys, "gettotalrefcount"):  # debug build: ob_refcnt is not the first field
        return False
    for obj in _shared_objects():
        # ob_refcnt (Py_ssize_t) is the first field of every object in release builds.
        ctypes.c_ssize_t.from_address(id(obj)).value += _PIN
    _pinned = True
    log.debug("pinned shared singletons against the PySide6 reference-count race")
    return True
