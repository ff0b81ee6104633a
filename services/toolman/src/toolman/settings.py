"""Settings from the environment (and command line), validated once at start-up.

TOOLMAN_HOST         address to listen on (default 0.0.0.0)
TOOLMAN_PORT         port (default 3000)
TOOLMAN_LOG_LEVEL    critical|error|warning|info|debug (default info)
TOOLMAN_LOG_FORMAT   auto|json|text (default auto: JSON unless stderr is a terminal)
TOOLMAN_CONFIG_PATH  the JSON config file (default /etc/toolman/toolman.json)
AGENT_NAME           the agent when the config has no tokens (default "default")
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from toolman.errors import ConfigError

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
LOG_FORMATS = ("auto", "json", "text")
DEFAULT_CONFIG_PATH = Path("/etc/toolman/toolman.json")


class SettingsError(ConfigError):
    """A setting has a value the service cannot run with; the message names it."""


@dataclass(frozen=True)
class Settings:
    host: str = "0.0.0.0"  # noqa: S104 - a container service listens on all interfaces
    port: int = 3000
    log_level: str = "info"
    log_format: str = "auto"
    config_path: Path = DEFAULT_CONFIG_PATH
    config_explicit: bool = False  # a missing explicit file is an error; the default may be absent
    agent_name: str = "default"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        defaults = cls()
        config_path = env.get("TOOLMAN_CONFIG_PATH", "")
        log_format = env.get("TOOLMAN_LOG_FORMAT", defaults.log_format).lower()
        if log_format not in LOG_FORMATS:
            raise SettingsError(
                f"TOOLMAN_LOG_FORMAT={log_format!r} is unknown; use one of {', '.join(LOG_FORMATS)}"
            )
        return cls(
            host=env.get("TOOLMAN_HOST", defaults.host),
            port=parse_port("TOOLMAN_PORT", env.get("TOOLMAN_PORT"), defaults.port),
            log_level=parse_log_level(env.get("TOOLMAN_LOG_LEVEL", defaults.log_level)),
            log_format=log_format,
            config_path=Path(config_path) if config_path else defaults.config_path,
            config_explicit=bool(config_path),
            agent_name=env.get("AGENT_NAME", "") or defaults.agent_name,
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
