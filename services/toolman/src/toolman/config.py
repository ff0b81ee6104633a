"""The config file (JSON): servers, exposure, agent policies, tokens, HTTP limits.

``load(path)`` reads and validates the whole file into frozen dataclasses, or
raises ConfigError naming the offending key. Secrets are only ever references
(``{"env": NAME}``, ``{"file": PATH}``) or, for tokens, a SHA-256 digest; they
are resolved here so a reload picks up rotated values, and never logged.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolman import schema
from toolman.errors import ConfigError
from toolman.policy import AgentPolicy, PolicyRules
from toolman.secrets import token_digest
from toolman.servers import HttpServer, ServerConfig, StdioServer, parse_servers

__all__ = ["Config", "HttpOptions", "HttpServer", "ServerConfig", "StdioServer", "load", "parse"]

SEPARATOR = re.compile(r"[A-Za-z0-9_.-]{1,3}")
TOP_KEYS = (
    "$schema",
    "description",
    "servers",
    "exposed_tools",
    "agent_policies",
    "default_policy",
    "auth",
    "http",
    "naming",
    "supervisor",
    "reload",
)
POLICY_KEYS = ("allowed_servers", "allowed_tools", "blocked_tools")
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class HttpOptions:
    allowed_hosts: tuple[str, ...] = LOCAL_HOSTS
    allowed_origins: tuple[str, ...] = ()
    max_body_bytes: int = 4 * 1024 * 1024
    session_idle_seconds: float = 3600.0
    max_sessions: int = 1000
    page_size: int = 100


@dataclass(frozen=True)
class SupervisorOptions:
    backoff_initial_seconds: float = 0.5
    backoff_max_seconds: float = 30.0


@dataclass(frozen=True)
class Config:
    servers: Mapping[str, ServerConfig] = field(default_factory=dict)
    rules: PolicyRules = field(default_factory=PolicyRules)
    tokens: Mapping[str, str] = field(default_factory=dict, repr=False)  # sha256 hex -> agent
    http: HttpOptions = field(default_factory=HttpOptions)
    separator: str = "_"
    supervisor: SupervisorOptions = field(default_factory=SupervisorOptions)
    watch_interval_seconds: float = 2.0  # 0: reload on SIGHUP only
    token_files: tuple[Path, ...] = ()  # auth.tokens files: watched like the config file


def load(path: Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate ``path``; ConfigError names the file and the key."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}") from exc
    try:
        return parse(raw, os.environ if environ is None else environ)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def parse(raw: object, environ: Mapping[str, str]) -> Config:
    top = schema.obj(raw, "", TOP_KEYS)
    servers = parse_servers(top.get("servers", {}), environ)
    rules = PolicyRules(
        exposed_tools=_exposed(top.get("exposed_tools", {}), servers),
        agents=_agent_policies(top.get("agent_policies", {}), servers),
        **_default_policy(top.get("default_policy", {}), servers),
    )
    tokens, token_files = _tokens(top.get("auth", {}), environ)
    return Config(
        servers=servers,
        rules=rules,
        tokens=tokens,
        token_files=token_files,
        http=_http(top.get("http", {})),
        separator=_naming(top.get("naming", {})),
        supervisor=_supervisor(top.get("supervisor", {})),
        watch_interval_seconds=_reload(top.get("reload", {})),
    )


def _exposed(raw: object, servers: Mapping[str, ServerConfig]) -> dict[str, tuple[str, ...]]:
    exposed = {}
    for server, tools in schema.mapping(raw, "exposed_tools").items():
        path = schema.join("exposed_tools", server)
        if server not in servers:
            raise ConfigError(
                f"{path}: unknown server {server!r}{schema.did_you_mean(server, servers)}"
            )
        exposed[server] = schema.strings(tools, path)
    return exposed


def _policy(raw: object, path: str, servers: Mapping[str, ServerConfig]) -> AgentPolicy:
    spec = schema.obj(raw, path, POLICY_KEYS)
    allowed_servers = None
    if "allowed_servers" in spec:
        allowed_servers = frozenset(
            schema.names(
                spec["allowed_servers"], schema.join(path, "allowed_servers"), servers, "server"
            )
        )
    allowed_tools = None
    if "allowed_tools" in spec:
        allowed_tools = schema.strings(spec["allowed_tools"], schema.join(path, "allowed_tools"))
    blocked = schema.strings(spec.get("blocked_tools", []), schema.join(path, "blocked_tools"))
    return AgentPolicy(
        allowed_servers=allowed_servers, allowed_tools=allowed_tools, blocked_tools=blocked
    )


def _agent_policies(raw: object, servers: Mapping[str, ServerConfig]) -> dict[str, AgentPolicy]:
    return {
        agent: _policy(spec, schema.join("agent_policies", agent), servers)
        for agent, spec in schema.mapping(raw, "agent_policies").items()
    }


def _default_policy(raw: object, servers: Mapping[str, ServerConfig]) -> dict[str, Any]:
    spec = schema.obj(raw, "default_policy", ("allow_unknown_tools", *POLICY_KEYS))
    allow_unknown = schema.boolean(
        spec.get("allow_unknown_tools", True), "default_policy.allow_unknown_tools"
    )
    rest = {key: value for key, value in spec.items() if key != "allow_unknown_tools"}
    return {
        "allow_unknown_tools": allow_unknown,
        "default": _policy(rest, "default_policy", servers),
    }


def _tokens(raw: object, environ: Mapping[str, str]) -> tuple[dict[str, str], tuple[Path, ...]]:
    """sha256 hex -> agent, and the token files read (watched for rotation)."""
    spec = schema.obj(raw, "auth", ("tokens",))
    entries = spec.get("tokens", [])
    if not isinstance(entries, list):
        raise ConfigError(f"auth.tokens: expected a list, got {schema.type_name(entries)}")
    tokens: dict[str, str] = {}
    files: dict[Path, None] = {}
    for index, entry in enumerate(entries):
        path = schema.join("auth.tokens", index)
        item = schema.obj(entry, path, ("agent", "sha256", "env", "file"))
        agent = schema.string(item.get("agent"), schema.join(path, "agent"))
        digest = token_digest(item, path, environ)
        if digest in tokens:
            raise ConfigError(
                f"{path}: the same token is already given to agent {tokens[digest]!r}"
            )
        tokens[digest] = agent
        if "file" in item:
            files[Path(str(item["file"]))] = None
    return tokens, tuple(files)


def _http(raw: object) -> HttpOptions:
    keys = (
        "allowed_hosts",
        "allowed_origins",
        "max_body_bytes",
        "session_idle_seconds",
        "max_sessions",
        "page_size",
    )
    spec = schema.obj(raw, "http", keys)
    defaults = HttpOptions()
    return HttpOptions(
        allowed_hosts=schema.strings(spec["allowed_hosts"], "http.allowed_hosts")
        if "allowed_hosts" in spec
        else defaults.allowed_hosts,
        allowed_origins=schema.strings(spec.get("allowed_origins", []), "http.allowed_origins"),
        max_body_bytes=schema.integer(
            spec.get("max_body_bytes", defaults.max_body_bytes),
            "http.max_body_bytes",
            minimum=1024,
            maximum=1 << 30,
        ),
        session_idle_seconds=schema.number(
            spec.get("session_idle_seconds", defaults.session_idle_seconds),
            "http.session_idle_seconds",
            minimum=1,
            maximum=7 * 86400,
        ),
        max_sessions=schema.integer(
            spec.get("max_sessions", defaults.max_sessions),
            "http.max_sessions",
            minimum=1,
            maximum=1_000_000,
        ),
        page_size=schema.integer(
            spec.get("page_size", defaults.page_size), "http.page_size", minimum=1, maximum=10_000
        ),
    )


def _naming(raw: object) -> str:
    spec = schema.obj(raw, "naming", ("separator",))
    hint = "use 1-3 characters of A-Z a-z 0-9 _ . -"
    return schema.string(
        spec.get("separator", "_"), "naming.separator", pattern=SEPARATOR, hint=hint
    )


def _supervisor(raw: object) -> SupervisorOptions:
    keys = ("backoff_initial_seconds", "backoff_max_seconds")
    spec = schema.obj(raw, "supervisor", keys)
    defaults = SupervisorOptions()
    initial = schema.number(
        spec.get("backoff_initial_seconds", defaults.backoff_initial_seconds),
        "supervisor.backoff_initial_seconds",
        minimum=0.01,
        maximum=600,
    )
    maximum = schema.number(
        spec.get("backoff_max_seconds", defaults.backoff_max_seconds),
        "supervisor.backoff_max_seconds",
        minimum=initial,
        maximum=3600,
    )
    return SupervisorOptions(initial, maximum)


def _reload(raw: object) -> float:
    spec = schema.obj(raw, "reload", ("watch_interval_seconds",))
    return schema.number(
        spec.get("watch_interval_seconds", 2.0),
        "reload.watch_interval_seconds",
        minimum=0,
        maximum=3600,
    )
