"""Settings from the environment, validated once at start-up.

MCP_TOOLMAN_SERVER_URL  toolman's Streamable HTTP endpoint (default http://localhost:3000/mcp)
MCP_WRAPPER_TIMEOUT     seconds one request may take, end to end (default 30)
MCP_WRAPPER_DEBUG       1/true/yes/on: log every message's method, id, status, latency
MCP_TOOLMAN_TOKEN       optional bearer token; sent as Authorization, never logged
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from mcp_wrapper.endpoint import Endpoint
from mcp_wrapper.errors import ConfigError

DEFAULT_URL = "http://localhost:3000/mcp"
DEFAULT_TIMEOUT = 30.0
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


@dataclass(frozen=True)
class Settings:
    url: str = DEFAULT_URL
    timeout: float = DEFAULT_TIMEOUT
    debug: bool = False
    # repr=False keeps the token out of any log line or traceback that prints settings.
    token: str | None = field(default=None, repr=False)

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint.parse(self.url)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        url = env.get("MCP_TOOLMAN_SERVER_URL", "").strip() or DEFAULT_URL
        try:
            Endpoint.parse(url)
        except ValueError as exc:
            raise ConfigError(
                f"MCP_TOOLMAN_SERVER_URL={url!r} is not usable: {exc}; "
                f"set it to toolman's endpoint, e.g. {DEFAULT_URL}"
            ) from exc
        return cls(
            url=url,
            timeout=_timeout(env.get("MCP_WRAPPER_TIMEOUT", "")),
            debug=_flag("MCP_WRAPPER_DEBUG", env.get("MCP_WRAPPER_DEBUG", "")),
            token=_token(env.get("MCP_TOOLMAN_TOKEN", "")),
        )


def _timeout(raw: str) -> float:
    if not raw.strip():
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(
            f"MCP_WRAPPER_TIMEOUT={raw!r} is not a positive number of seconds; "
            f"unset it for the default {DEFAULT_TIMEOUT:g} or set e.g. MCP_WRAPPER_TIMEOUT=60"
        )
    return value


def _flag(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean; use 1/true or 0/false")


def _token(raw: str) -> str | None:
    token = raw.strip()
    if not token:
        return None
    # A CR/LF would let the value inject headers; the message must not echo the token.
    if any(ord(char) < 0x21 or ord(char) > 0x7E for char in token):
        raise ConfigError(
            "MCP_TOOLMAN_TOKEN contains whitespace, control or non-ASCII characters; "
            "set it to the bare token (without 'Bearer ')"
        )
    return token
