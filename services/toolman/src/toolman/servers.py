"""The ``servers`` section of the config: stdio and remote Streamable HTTP definitions."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from toolman import schema
from toolman.errors import ConfigError
from toolman.secrets import resolve_secret

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
NAME_HINT = "use 1-32 characters of A-Z a-z 0-9 _ . - starting with a letter or digit"
HEADER = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")

STDIO_KEYS = (
    "command",
    "args",
    "env",
    "cwd",
    "timeout_seconds",
    "startup_timeout_seconds",
    "enabled",
    "prefix",
    "instances",
)
HTTP_KEYS = (
    "url",
    "headers",
    "timeout_seconds",
    "startup_timeout_seconds",
    "enabled",
    "prefix",
    "protocol",
)
PROTOCOLS = ("auto", "2025")  # auto: server/discover first (2026-07-28), else initialize


@dataclass(frozen=True)
class StdioServer:
    name: str
    command: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # values may be secrets
    cwd: str | None = None
    timeout_seconds: float = 60.0
    startup_timeout_seconds: float = 30.0
    prefix: bool = True  # False: its tools and prompts keep their own names (passthrough)
    instances: int = 1  # >1: a pool of identical stateless processes (toolman.pool)


@dataclass(frozen=True)
class HttpServer:
    name: str
    url: str
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    timeout_seconds: float = 60.0
    startup_timeout_seconds: float = 30.0
    prefix: bool = True
    protocol: str = "auto"  # "2025": always a session (initialize), never server/discover


ServerConfig = StdioServer | HttpServer


def parse_servers(raw: object, environ: Mapping[str, str]) -> dict[str, ServerConfig]:
    servers: dict[str, ServerConfig] = {}
    for name, spec in schema.mapping(raw, "servers").items():
        path = schema.join("servers", name)
        schema.string(name, path, pattern=NAME, hint=NAME_HINT)
        if isinstance(spec, dict) and "url" in spec:
            server: ServerConfig | None = _http_server(name, spec, path, environ)
        elif isinstance(spec, dict) and "command" in spec:
            server = _stdio_server(name, spec, path, environ)
        else:
            schema.obj(spec, path, (*STDIO_KEYS, *HTTP_KEYS))
            raise ConfigError(f"{path}: needs either 'command' (stdio) or 'url' (Streamable HTTP)")
        if server is not None:
            servers[name] = server
    return servers


def _timeouts(spec: Mapping[str, Any], path: str) -> dict[str, float]:
    out = {}
    for key in ("timeout_seconds", "startup_timeout_seconds"):
        if key in spec:
            out[key] = schema.number(spec[key], schema.join(path, key), minimum=0.1, maximum=3600)
    return out


def _enabled(spec: Mapping[str, Any], path: str) -> bool:
    return schema.boolean(spec.get("enabled", True), schema.join(path, "enabled"))


def _prefix(spec: Mapping[str, Any], path: str) -> bool:
    return schema.boolean(spec.get("prefix", True), schema.join(path, "prefix"))


def _stdio_server(
    name: str, spec: Mapping[str, Any], path: str, environ: Mapping[str, str]
) -> StdioServer | None:
    schema.obj(spec, path, STDIO_KEYS)
    env = schema.mapping(spec.get("env", {}), schema.join(path, "env"))
    server = StdioServer(
        name=name,
        command=schema.string(spec["command"], schema.join(path, "command")),
        args=schema.strings(spec.get("args", []), schema.join(path, "args")),
        env=tuple(
            (key, resolve_secret(value, schema.join(schema.join(path, "env"), key), environ))
            for key, value in env.items()
        ),
        cwd=schema.string(spec["cwd"], schema.join(path, "cwd")) if "cwd" in spec else None,
        prefix=_prefix(spec, path),
        instances=schema.integer(
            spec.get("instances", 1), schema.join(path, "instances"), minimum=1, maximum=32
        ),
        **_timeouts(spec, path),
    )
    return server if _enabled(spec, path) else None


def _http_server(
    name: str, spec: Mapping[str, Any], path: str, environ: Mapping[str, str]
) -> HttpServer | None:
    schema.obj(spec, path, HTTP_KEYS)
    url = schema.string(spec["url"], schema.join(path, "url"))
    if not url.startswith(("http://", "https://")):
        raise ConfigError(
            f"{schema.join(path, 'url')}: {url!r} must start with http:// or https://"
        )
    headers = schema.mapping(spec.get("headers", {}), schema.join(path, "headers"))
    for key in headers:
        schema.string(key, schema.join(path, "headers"), pattern=HEADER, hint="not a header name")
    server = HttpServer(
        name=name,
        url=url,
        headers=tuple(
            (key, resolve_secret(value, schema.join(schema.join(path, "headers"), key), environ))
            for key, value in headers.items()
        ),
        prefix=_prefix(spec, path),
        protocol=_protocol(spec, path),
        **_timeouts(spec, path),
    )
    return server if _enabled(spec, path) else None


def _protocol(spec: Mapping[str, Any], path: str) -> str:
    value = schema.string(spec.get("protocol", "auto"), schema.join(path, "protocol"))
    if value not in PROTOCOLS:
        raise ConfigError(
            f"{schema.join(path, 'protocol')}: {value!r} is not one of {', '.join(PROTOCOLS)}"
            f"{schema.did_you_mean(value, PROTOCOLS)}"
        )
    return value


def describe_failure(exc: BaseException, config: ServerConfig) -> str:
    """Why a server failed to start, in words for /ready and the log."""
    if isinstance(exc, TimeoutError):
        return f"no answer within {config.startup_timeout_seconds:g} s"
    if isinstance(exc, FileNotFoundError) and isinstance(config, StdioServer):
        return f"command not found: {config.command}"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)
