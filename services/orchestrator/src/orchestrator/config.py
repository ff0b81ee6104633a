"""The orchestrator's config file (JSON, `ORCHESTRATOR_CONFIG`), read and checked once.

Every key is optional. Unknown keys stop start-up with the closest known one suggested;
a bad value names its key. Secrets are never in the file: API tokens are SHA-256
digests or `{"env": ...}` / `{"file": ...}` references (toolman's own rules, its code),
and what a task may reference is an allow-list (`task_secrets`).
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Mapping
from fnmatch import fnmatchcase
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    ValidationError,
    field_validator,
    model_validator,
)

from orchestrator.tasks.model import Resources, SecretPath, memory_bytes, secret_path_problem
from orchestrator.tasks.policy import check_base
from toolman.errors import ConfigError as ToolmanConfigError
from toolman.schema import type_name

DEFAULT_REGISTRY = "ghcr.io/5dlabs/platform"


class ConfigError(ValueError):
    """The config cannot be used; the message names the file and the key."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Token(Section):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    sha256: str | None = None
    env: str | None = None
    file: str | None = None


class Auth(Section):
    tokens: list[Token] = Field(default_factory=list)
    # Serve the API without tokens: only for a loopback-only, single-user setup.
    anonymous: bool = False


DENIED_REPOSITORY_NETWORKS: tuple[IPv4Network | IPv6Network, ...] = (
    IPv4Network("127.0.0.0/8"),  # loopback: the orchestrator's own services
    IPv6Network("::1/128"),
    IPv4Network("0.0.0.0/8"),  # "this host": connecting to 0.0.0.0 reaches loopback
    IPv6Network("::/128"),
    IPv4Network("169.254.0.0/16"),  # link-local: cloud metadata (169.254.169.254)
    IPv6Network("fe80::/10"),
)


def _default_env_denied() -> list[str]:
    # Names a task's `env` and `secrets` may not set (fnmatchcase globs), whoever else
    # sets them. Each can take the operator's model key or the agent's tools away, or run
    # code of the task's in the agent container (where that key is): the model endpoint
    # and its keys and headers (ANTHROPIC_*), Claude Code's and claude-agent's settings
    # (CLAUDE_*: its MCP config, config dir, binary, provider switches), mcp-wrapper's
    # endpoint and token (MCP_*), proxies and the TLS trust they need (*_PROXY, *_proxy,
    # SSL_CERT_*, NODE_*: NODE_OPTIONS, NODE_EXTRA_CA_CERTS...), the loader and the
    # interpreters' code paths (LD_*, PYTHON*, PATH, HOME: ~/.claude holds settings and
    # hooks, BASH_ENV), and the cloud providers' credentials and endpoints Claude Code
    # uses on Bedrock or Vertex (AWS_*, GOOGLE_*). A task's own values (`LOG_LEVEL`,
    # `GITHUB_TOKEN`) are untouched. An operator who wants per-task model keys removes
    # the rule for them (e.g. lists ANTHROPIC_BASE_URL, ANTHROPIC_AUTH_TOKEN... instead of
    # ANTHROPIC_*).
    return [
        "ANTHROPIC_*", "CLAUDE_*", "MCP_*", "*_PROXY", "*_proxy", "SSL_CERT_*", "NODE_*",
        "LD_*", "PYTHON*", "PATH", "HOME", "BASH_ENV", "AWS_*", "GOOGLE_*",
    ]  # fmt: skip


class Tasks(Section):
    max_running: Annotated[int, Field(ge=1, le=10_000)] = 4
    default_timeout_seconds: Annotated[int, Field(ge=1, le=7 * 86400)] = 3600
    ttl_seconds: Annotated[float, Field(ge=0, le=30 * 86400)] = 600
    stop_grace_seconds: Annotated[float, Field(ge=0, le=600)] = 10
    max_workspace_bytes: Annotated[int, Field(ge=1024)] = 1 << 30
    # How long a task's repository clone may take (a server that never answers: killed).
    clone_timeout_seconds: Annotated[float, Field(gt=0, le=86400)] = 600
    # The largest body `POST /api/v1/tasks` reads (the prompt and files, JSON-encoded).
    max_request_bytes: Annotated[int, Field(ge=1024)] = 64 << 20
    env_denied: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(
        default_factory=_default_env_denied
    )
    # Where tasks' repositories may be fetched from (the orchestrator holds the engine's
    # socket and fetches on a task's behalf): host globs of the URL (lower case), and
    # networks none of the host's addresses may be in, checked at launch after resolving
    # it (repository_guard.py). Private networks are allowed by default (internal git
    # servers live there); add them here where the orchestrator must not reach them.
    repository_hosts: list[Annotated[str, Field(min_length=1, max_length=255)]] = Field(
        default_factory=lambda: ["*"]
    )
    repository_networks_denied: list[IPvAnyNetwork] = Field(
        default_factory=lambda: list(DENIED_REPOSITORY_NETWORKS)
    )


class TaskSecrets(Section):
    env: list[str] = Field(default_factory=list)  # names of the orchestrator's variables
    # Absolute paths or globs, matched one path component at a time against the file's
    # real path (symlinks resolved): `*` never crosses a `/`.
    files: list[str] = Field(default_factory=list)

    @field_validator("files")
    @classmethod
    def absolute_patterns(cls, value: list[str]) -> list[str]:
        for index, pattern in enumerate(value):
            problem = secret_path_problem(pattern)
            if problem:
                raise ValueError(f"[{index}] {pattern!r}: {problem}")
        return value


class SecretSource(Section):
    env: str | None = None
    file: SecretPath | None = None

    @model_validator(mode="after")
    def exactly_one(self) -> SecretSource:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of 'env' or 'file'")
        return self


def _default_agent_args() -> list[str]:
    # Every toolman tool is allowed to Claude Code (toolman already decides what the agent
    # sees), and edits of the workspace; its other built-in tools (Bash, web) are not.
    return ["--allowedTools", "mcp__toolman", "--permission-mode", "acceptEdits"]


class AgentSection(Section):
    image: str = f"{DEFAULT_REGISTRY}/claude-code:latest"
    # Appended to `claude-agent direct --task-file F --`.
    args: list[str] = Field(default_factory=_default_agent_args)
    env: dict[str, str] = Field(default_factory=dict)
    # Secrets every agent gets from the orchestrator's environment or files (skipped while
    # unset); a task's own `secrets` of the same name win, unless tasks.env_denied refuses
    # the name (ANTHROPIC_API_KEY, by default).
    secrets: dict[str, SecretSource] = Field(
        default_factory=lambda: {"ANTHROPIC_API_KEY": SecretSource(env="ANTHROPIC_API_KEY")}
    )


class ToolmanSection(Section):
    image: str = f"{DEFAULT_REGISTRY}/toolman:latest"
    # A toolman config without agents or tokens: the servers tasks may choose from.
    config: dict[str, Any] = Field(default_factory=dict)
    env: dict[str, str | dict[str, str]] = Field(default_factory=dict)
    ready_timeout_seconds: Annotated[float, Field(gt=0, le=3600)] = 60
    resources: Resources = Field(default_factory=Resources)

    @field_validator("env")
    @classmethod
    def absolute_files(
        cls, value: dict[str, str | dict[str, str]]
    ) -> dict[str, str | dict[str, str]]:
        for name, source in value.items():
            file = source.get("file") if isinstance(source, dict) else None
            problem = secret_path_problem(file) if isinstance(file, str) else None
            if problem:
                raise ValueError(f"{name}.file: {problem}")
        return value

    @field_validator("config")
    @classmethod
    def toolman_accepts_it(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            check_base(value)
        except ToolmanConfigError as exc:
            raise ValueError(f"toolman refuses it: {exc}") from None
        return value


class DockerSection(Section):
    host: str | None = None  # default: DOCKER_HOST, else the local socket
    network: str = "bridge"
    user: Annotated[str, Field(pattern=r"^[1-9][0-9]*(:[0-9]+)?$")] = "10001:10001"
    pids_limit: Annotated[int, Field(ge=16)] = 1024
    instance: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,30}$")] = "default"

    @field_validator("network")
    @classmethod
    def shared_namespace_needs_a_network(cls, value: str) -> str:
        if value in ("host", "none") or value.startswith("container:"):
            raise ValueError(
                f"{value!r} cannot hold one toolman per task; use 'bridge' or a network name"
            )
        return value


class OrchestratorConfig(Section):
    state_dir: str = "/var/lib/orchestrator"
    backend: Literal["docker"] = "docker"
    auth: Auth = Field(default_factory=Auth)
    tasks: Tasks = Field(default_factory=Tasks)
    task_secrets: TaskSecrets = Field(default_factory=TaskSecrets)
    agent: AgentSection = Field(default_factory=AgentSection)
    toolman: ToolmanSection = Field(default_factory=ToolmanSection)
    docker: DockerSection = Field(default_factory=DockerSection)

    @property
    def toolman_memory(self) -> int | None:
        memory = self.toolman.resources.memory
        return memory_bytes(memory) if memory else None


def load(path: Path | None) -> OrchestratorConfig:
    """The file's config; no path means every default."""
    if path is None:
        return OrchestratorConfig()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}") from exc
    return parse(raw, str(path))


def parse(raw: object, source: str = "the config") -> OrchestratorConfig:
    try:
        return OrchestratorConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {describe(exc, OrchestratorConfig)}") from None


def describe(exc: ValidationError, model: type[BaseModel]) -> str:
    """The first error as `key.path: message`, with a suggestion for an unknown key."""
    error = exc.errors()[0]
    location = [str(part) for part in error["loc"]]
    if error["type"] == "extra_forbidden":
        known = _fields_at(model, location[:-1])
        close = difflib.get_close_matches(location[-1], known, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"{'.'.join(location)}: unknown key{hint}"
    if error["type"] == "model_type":  # pydantic says "... or instance of OrchestratorConfig"
        message = f"expected an object, got {type_name(error['input'])}"
    else:
        message = error["msg"].removeprefix("Value error, ")
    return f"{'.'.join(location)}: {message}" if location else message


def _fields_at(model: type[BaseModel], location: list[str]) -> list[str]:
    current = model
    for part in location:
        field = current.model_fields.get(part)
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        current = annotation
    return list(current.model_fields)


def secret_allowed(config: OrchestratorConfig, env: str | None, file: str | None) -> bool:
    """Whether a task may reference this variable or file of the orchestrator's. A file is
    judged by its real path (`os.path.realpath`: symlinks and `..` resolved), so a link
    inside an allowed directory that points out of it is not allowed."""
    if env is not None:
        return env in config.task_secrets.env
    if file is None or secret_path_problem(file):
        return False
    return real_file_allowed(config, os.path.realpath(file))


def real_file_allowed(config: OrchestratorConfig, real: str) -> bool:
    """Whether `task_secrets.files` allows a file by its real path."""
    return any(path_matches(real, pattern) for pattern in config.task_secrets.files)


def path_matches(path: str, pattern: str) -> bool:
    """`pattern` matches `path` component by component (`fnmatchcase` on each): `*`, `?`
    and `[...]` never match a `/`, and both must have as many components."""
    parts, wanted = path.split("/"), pattern.split("/")
    return len(parts) == len(wanted) and all(map(fnmatchcase, parts, wanted))


def env_reference_names(values: Mapping[str, str | dict[str, str]]) -> list[str]:
    return [v["env"] for v in values.values() if isinstance(v, dict) and "env" in v]
