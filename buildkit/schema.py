"""The schema of `[tool.buildkit]`: every key with its type, and the checks that are not
about one key's type (platforms, backends, the graph of `requires`). Unknown keys are
errors with a "did you mean", so a typo never silently does nothing."""

from __future__ import annotations

import difflib
import graphlib
import re
from collections.abc import Mapping
from typing import Any

from buildkit.errors import ConfigError

IMAGE_BACKENDS = ("auto", "buildx", "engine")

# key -> (type, required); the table below is the whole schema of [tool.buildkit].
PROJECT_KEYS: dict[str, tuple[type, bool]] = {
    "registry": (str, False),
    "tag": (str, False),
    "source_url": (str, False),
    "licenses": (str, False),
    "url": (str, False),
    "base_image": (str, False),
    "image_tags": (dict, False),
    "smoke_timeout": (int, False),
    "push_platforms": (list, False),
    "image_backend": (str, False),
    "builder": (str, False),
    "buildx_cache": (bool, False),
    "claude_image": (dict, False),
    "services": (dict, True),
}
CLAUDE_KEYS: dict[str, tuple[type, bool]] = {
    "image": (str, True),
    "dockerfile": (str, True),
    "service": (str, True),
    "npm_package": (str, True),
    "version": (str, True),
    "port": (int, False),
    "description": (str, False),
    "user_dirs": (list, False),
}
IMAGE_TAG_KEYS: dict[str, tuple[type, bool]] = {
    "semver": (bool, False),
    "sha": (bool, False),
}
MAX_TEST_WORKERS = 64
SERVICE_KEYS: dict[str, tuple[type, bool]] = {
    "path": (str, True),
    "package": (str, True),
    "distribution": (str, True),
    "script": (str, True),
    "image": (str, True),
    "dockerfile": (str, True),
    "description": (str, False),
    "port": (int, False),
    "health_path": (str, False),
    "test_workers": (int, False),
    "requires": (list, False),
    "user_dirs": (list, False),
}


def suggest(word: str, choices: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_table(
    table: Mapping[str, Any], schema: Mapping[str, tuple[type, bool]], where: str
) -> None:
    for key, value in table.items():
        if key not in schema:
            raise ConfigError(
                f"unknown key {where}.{key}{suggest(key, list(schema))}",
                hint=f"valid keys in {where}: {', '.join(schema)}",
            )
        expected, _ = schema[key]
        # bool is an int subclass; a port of `true` is still a mistake.
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ConfigError(
                f"{where}.{key} must be a {expected.__name__}, got {type(value).__name__} {value!r}"
            )
    for key, (_, required) in schema.items():
        if required and key not in table:
            raise ConfigError(f"{where}.{key} is required")


def check_requires(graph: Mapping[str, tuple[str, ...]]) -> None:
    """Every `requires` (service -> the services it requires) names another declared
    service, and no chain of them is a cycle."""
    names = tuple(graph)
    for name, required_ones in graph.items():
        where = f"tool.buildkit.services.{name}.requires"
        for required in required_ones:
            if required == name:
                raise ConfigError(f"{where}: {name!r} cannot require itself")
            if required not in names:
                raise ConfigError(
                    f"{where}: {required!r} is not a service of this project"
                    f"{suggest(required, names)}",
                    hint=f"requires lists other services by name: {', '.join(names)}",
                )
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        cycle = " -> ".join(reversed(exc.args[1]))
        raise ConfigError(
            f"tool.buildkit.services: requires form a cycle: {cycle}",
            hint="a service cannot depend on itself through others; drop one of the entries",
        ) from None


PLATFORM = re.compile(r"^linux/(amd64|arm64)$")
PLATFORM_HINT = "use os/arch from linux/amd64, linux/arm64, e.g. linux/amd64,linux/arm64"


def parse_platform_list(values: object) -> tuple[str, ...]:
    if not isinstance(values, list | tuple) or not values:
        raise ConfigError(
            "tool.buildkit.push_platforms must be a non-empty list", hint=PLATFORM_HINT
        )
    for value in values:
        if not isinstance(value, str) or not PLATFORM.match(value):
            raise ConfigError(
                f"tool.buildkit.push_platforms: {value!r} is not a supported platform",
                hint=PLATFORM_HINT,
            )
    return tuple(dict.fromkeys(values))


def parse_backend(value: str, where: str) -> str:
    if value not in IMAGE_BACKENDS:
        raise ConfigError(
            f"{where} = {value!r} is unknown{suggest(value, IMAGE_BACKENDS)}",
            hint=f"use one of {', '.join(IMAGE_BACKENDS)}",
        )
    return value
