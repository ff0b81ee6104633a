"""Settings from the environment, validated once at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


class SettingsError(ValueError):
    """A setting has a value the service cannot run with; the message names it."""


@dataclass(frozen=True)
class Settings:
    host: str = "0.0.0.0"  # noqa: S104 - a container service listens on all interfaces
    port: int = 3000
    log_level: str = "info"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        defaults = cls()
        return cls(
            host=env.get("TOOLMAN_HOST", defaults.host),
            port=parse_port("TOOLMAN_PORT", env.get("TOOLMAN_PORT"), defaults.port),
            log_level=parse_log_level(env.get("TOOLMAN_LOG_LEVEL", defaults.log_level)),
        )


def parse_port(name: str, raw: str | None, default: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        port = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a port number; use 1-65535") from None
    if not 0 < port < 65536:
        raise SettingsError(f"{name}={raw!r} is out of range; use 1-65535")
    return port


def parse_log_level(raw: str) -> str:
    level = raw.lower()
    if level not in LOG_LEVELS:
        raise SettingsError(f"log level {raw!r} is unknown; use one of {', '.join(LOG_LEVELS)}")
    return level
