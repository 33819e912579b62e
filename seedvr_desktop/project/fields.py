"""Typed access to decoded JSON that names the offending field when a value is wrong.

A project file is edited by hand now and then and travels between versions; when something is off
the user must learn *which* value, e.g. `clips[3].captions[0].end must be a number, not text`,
rather than a Python traceback. Migrations and the decoder share these helpers.
"""

from __future__ import annotations

import math
from typing import Any

from seedvr_desktop.project.model import ProjectError

_REQUIRED: Any = object()

_TYPE_NAMES = {
    bool: "true or false",
    int: "a whole number",
    float: "a number",
    str: "text",
    list: "a list",
    dict: "an object",
}


class FieldError(ProjectError):
    """A value in the project JSON has the wrong type or an impossible value."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where} {message}" if where else message)
        self.where = where


def describe(value: object) -> str:
    """How a JSON value reads to a person: 'text', 'a list', 'null'..."""
    if value is None:
        return "null"
    for kind, name in _TYPE_NAMES.items():
        if type(value) is kind:
            return name
    return type(value).__name__


def join(where: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{where}[{key}]"
    return f"{where}.{key}" if where else key


def check(value: object, kind: type, where: str, *, nullable: bool = False) -> Any:
    """Return `value` when it is of JSON type `kind` (ints count as floats, bools never as ints)."""
    if value is None and nullable:
        return None
    if kind is float:
        if type(value) in (int, float):
            if not math.isfinite(value):  # type: ignore[arg-type]
                raise FieldError(where, "must be a finite number")
            return float(value)  # type: ignore[arg-type]
    elif type(value) is kind:
        return value
    expected = _TYPE_NAMES.get(kind, kind.__name__)
    if nullable:
        expected += " or null"
    raise FieldError(where, f"must be {expected}, not {describe(value)}")


def obj(value: object, where: str) -> dict[str, Any]:
    return check(value, dict, where)


def get(
    mapping: dict[str, Any],
    key: str,
    kind: type,
    where: str,
    *,
    default: Any = _REQUIRED,
    nullable: bool = False,
) -> Any:
    """mapping[key] checked against `kind`; a missing key is an error unless a default is given."""
    path = join(where, key)
    if key not in mapping:
        if default is _REQUIRED:
            raise FieldError(path, "is missing")
        return default
    return check(mapping[key], kind, path, nullable=nullable)


def get_list(mapping: dict[str, Any], key: str, where: str, *, default: Any = _REQUIRED) -> list:
    return get(mapping, key, list, where, default=default)


def choice(value: str, allowed: tuple[str, ...], where: str) -> str:
    if value not in allowed:
        raise FieldError(where, f"must be one of {', '.join(allowed)}, not {value!r}")
    return value
