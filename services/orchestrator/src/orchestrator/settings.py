"""Settings from the environment and the config file, validated once at start-up.

Environment: ORCHESTRATOR_HOST (0.0.0.0), ORCHESTRATOR_PORT (8080),
ORCHESTRATOR_LOG_LEVEL (info), ORCHESTRATOR_CONFIG (the JSON config file; default
/etc/orchestrator/config.json when it exists), ORCHESTRATOR_STATE_DIR (overrides the
config's state_dir). Command-line options override the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.config import ConfigError, OrchestratorConfig, load

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
DEFAULT_CONFIG = Path("/etc/orchestrator/config.json")


class SettingsError(ValueError):
    """A setting has a value the service cannot run with; the message names it."""


@dataclass(frozen=True)
class Settings:
    host: str = "0.0.0.0"  # noqa: S104 - a container service listens on all interfaces
    port: int = 8080
    log_level: str = "info"
    config: OrchestratorConfig = field(default_factory=OrchestratorConfig)
    config_path: Path | None = None
    state_dir_override: Path | None = None

    @property
    def state_dir(self) -> Path:
        return self.state_dir_override or Path(self.config.state_dir)

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        config_path: str | None = None,
        state_dir: str | None = None,
    ) -> Settings:
        env = os.environ if env is None else env
        defaults = cls()
        path = config_path or env.get("ORCHESTRATOR_CONFIG") or None
        if path is None and DEFAULT_CONFIG.is_file():
            path = str(DEFAULT_CONFIG)
        try:
            config = load(Path(path) if path else None)
        except ConfigError as exc:
            raise SettingsError(str(exc)) from None
        state = state_dir or env.get("ORCHESTRATOR_STATE_DIR") or None
        return cls(
            host=env.get("ORCHESTRATOR_HOST", defaults.host),
            port=parse_port("ORCHESTRATOR_PORT", env.get("ORCHESTRATOR_PORT"), defaults.port),
            log_level=parse_log_level(env.get("ORCHESTRATOR_LOG_LEVEL", defaults.log_level)),
            config=config,
            config_path=Path(path) if path else None,
            state_dir_override=Path(state) if state else None,
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
