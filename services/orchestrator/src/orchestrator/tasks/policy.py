"""What toolman is told about a task: its config file, generated from the operator's base
config (`toolman.config` in the orchestrator's config) and the task's tool policy.

The result is checked by toolman's own parser (`toolman.config.parse`), the code the
sidecar itself runs, so a policy the orchestrator accepts is one toolman starts with.
At launch the config gets one bearer token (`auth.tokens`, its SHA-256 only), the
task's agent's: toolman then answers only a caller that sends it (the agent, through
mcp-wrapper's `MCP_TOOLMAN_TOKEN`), not any container that reaches its port on the task
network; the token, not `AGENT_NAME`, names the agent. Every server outside the task's
list is hidden from it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

from orchestrator.tasks.model import ToolPolicy
from toolman import schema
from toolman.config import parse
from toolman.errors import ConfigError

BASE_KEYS = ("servers", "exposed_tools", "default_policy", "http", "naming", "supervisor")


class PolicyError(ValueError):
    """The task's tool policy is not one toolman would accept; `field` names where."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class AnyEnvironment(Mapping[str, str]):
    """Every variable is set: a base config's `{"env": ...}` references are resolved in
    the toolman container, so here only their shape is checked."""

    def __getitem__(self, key: str) -> str:
        return "set-in-the-toolman-container"

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def check_base(base: Mapping[str, Any]) -> None:
    """The operator's base config must be a toolman config without agents or tokens."""
    schema.obj(dict(base), "toolman.config", BASE_KEYS)
    parse(dict(base), AnyEnvironment())


def toolman_config(
    base: Mapping[str, Any], agent: str, policy: ToolPolicy, *, token_sha256: str | None = None
) -> dict[str, Any]:
    """The sidecar's config for one task; PolicyError names the task field at fault. With
    `token_sha256`, toolman answers only the caller with that token, as `agent`."""
    catalog: Mapping[str, Any] = base.get("servers", {})
    try:
        schema.names(policy.servers, "tools.servers", catalog, "server")
    except ConfigError as exc:
        raise _policy_error(str(exc)) from None
    config = copy.deepcopy(dict(base))
    config["servers"] = {name: config["servers"][name] for name in policy.servers}
    exposed: Mapping[str, Any] = config.get("exposed_tools", {})
    config["exposed_tools"] = {s: exposed[s] for s in policy.servers if s in exposed}
    rules: dict[str, Any] = {"allowed_servers": list(policy.servers)}
    if policy.allowed_tools is not None:
        rules["allowed_tools"] = list(policy.allowed_tools)
    if policy.blocked_tools:
        rules["blocked_tools"] = list(policy.blocked_tools)
    config["agent_policies"] = {agent: rules}
    default: Mapping[str, Any] = config.get("default_policy", {})
    config["default_policy"] = {
        "allow_unknown_tools": default.get("allow_unknown_tools", True),
        "allowed_servers": [],  # an agent of another name sees nothing
    }
    if token_sha256 is not None:
        config["auth"] = {"tokens": [{"agent": agent, "sha256": token_sha256}]}
    try:
        parse(config, AnyEnvironment())
    except ConfigError as exc:
        prefix = f"agent_policies.{agent}."
        text = str(exc)
        if text.startswith(prefix):
            text = "tools." + text[len(prefix) :]
        raise _policy_error(text) from None
    return config


def _policy_error(text: str) -> PolicyError:
    """toolman's `path: message`, the path kept (`tools.servers[0]`)."""
    field, sep, message = text.partition(": ")
    return PolicyError(field, message) if sep else PolicyError("tools", text)
