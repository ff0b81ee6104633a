"""Typed reads from parsed JSON that fail with the exact key path.

Every helper takes the value and its dotted path (``servers.git.args[1]``) and
raises ConfigError naming that path, the expected type and, for unknown keys,
the closest known key.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from toolman.errors import ConfigError


def type_name(value: object) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def obj(value: object, path: str, known: Iterable[str]) -> Mapping[str, Any]:
    """An object whose keys must all be in ``known``."""
    if not isinstance(value, dict):
        raise ConfigError(f"{path or 'the config'}: expected an object, got {type_name(value)}")
    known = list(known)
    for key in value:
        if key not in known:
            raise ConfigError(f"{join(path, key)}: unknown key{did_you_mean(key, known)}")
    return value


def mapping(value: object, path: str) -> Mapping[str, Any]:
    """An object with free-form keys (names chosen by the user)."""
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: expected an object, got {type_name(value)}")
    return value


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def string(
    value: object, path: str, *, pattern: re.Pattern[str] | None = None, hint: str = ""
) -> str:
    if not isinstance(value, str) or value == "":
        raise ConfigError(f"{path}: expected a non-empty string, got {type_name(value)}")
    if pattern is not None and not pattern.fullmatch(value):
        raise ConfigError(f"{path}: {value!r} is not allowed{'; ' + hint if hint else ''}")
    return value


def boolean(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{path}: expected true or false, got {type_name(value)}")
    return value


def number(value: object, path: str, *, minimum: float, maximum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{path}: expected a number, got {type_name(value)}")
    if not minimum <= value <= maximum:
        raise ConfigError(f"{path}: {value} is out of range; use {minimum:g} to {maximum:g}")
    return float(value)


def integer(value: object, path: str, *, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{path}: expected a whole number, got {type_name(value)}")
    if not minimum <= value <= maximum:
        raise ConfigError(f"{path}: {value} is out of range; use {minimum} to {maximum}")
    return value


def strings(value: object, path: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ConfigError(f"{path}: expected a list of strings, got {type_name(value)}")
    return tuple(string(item, join(path, index)) for index, item in enumerate(value))


def names(value: object, path: str, known: Iterable[str], what: str) -> tuple[str, ...]:
    """A list of names that must each be one of ``known`` (e.g. configured servers)."""
    known = list(known)
    items = strings(value, path)
    for index, item in enumerate(items):
        if item not in known:
            raise ConfigError(
                f"{join(path, index)}: unknown {what} {item!r}{did_you_mean(item, known)}"
            )
    return items
