"""From a stored task to a backend `Launch`: the sidecar's toolman config, the agent's
environment with its secrets resolved (only now, never stored), its files as bytes."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from pathlib import Path

from orchestrator.admission import Refused, env_refusal, repository_access, secret_value
from orchestrator.backends.base import Launch, LaunchError, WorkspaceEntry
from orchestrator.config import OrchestratorConfig
from orchestrator.tasks.model import TaskCreate, file_bytes, memory_bytes
from orchestrator.tasks.policy import PolicyError, toolman_config
from toolman.secrets import sha256_hex

# The agent's bearer token for its toolman (mcp-wrapper sends it): made anew for each
# launch, it lives only in the agent container's environment and, as its SHA-256, in
# toolman's config; never in the store, a log or the API.
TOOLMAN_TOKEN_ENV = "MCP_TOOLMAN_TOKEN"  # noqa: S105 - a variable name


def agent_secrets(config: OrchestratorConfig, environ: Mapping[str, str]) -> dict[str, str]:
    """The operator's secrets for every agent, those that are set."""
    found: dict[str, str] = {}
    for name, source in config.agent.secrets.items():
        if source.env is not None and environ.get(source.env):
            found[name] = environ[source.env]
        elif source.file is not None and Path(source.file).is_file():
            found[name] = Path(source.file).read_text(encoding="utf-8").strip()
    return found


def build_launch(
    task_id: str, spec: TaskCreate, config: OrchestratorConfig, environ: Mapping[str, str]
) -> Launch:
    """LaunchError when the task can no longer start as stored (a secret went away, the
    config changed). Resolves the repository's host: call it off the event loop."""
    token = secrets.token_urlsafe(32)
    try:
        sidecar = toolman_config(
            config.toolman.config, spec.agent.name, spec.tools, token_sha256=sha256_hex(token)
        )
    except PolicyError as exc:
        raise LaunchError(f"the tool policy is no longer valid: {exc}") from exc
    refused = env_refusal(config, spec.env, spec.secrets)
    if refused:  # the config changed since the task was accepted
        raise LaunchError(refused[1])
    env = {**config.agent.env, **agent_secrets(config, environ), **spec.env}
    for name, ref in spec.secrets.items():
        try:
            env[name] = secret_value(config, f"secrets.{name}", ref, environ)
        except Refused as exc:
            raise LaunchError(str(exc)) from None
    credentials = None
    if spec.repository is not None:
        try:
            credentials = repository_access(config, spec.repository, environ)
        except Refused as exc:
            raise LaunchError(str(exc)) from None
    env[TOOLMAN_TOKEN_ENV] = token
    args = list(config.agent.args)
    if spec.agent.model:
        args += ["--model", spec.agent.model]
    return Launch(
        task_id=task_id,
        agent_name=spec.agent.name,
        prompt=spec.prompt,
        files=tuple(WorkspaceEntry(f.path, file_bytes(f), f.executable) for f in spec.files),
        repository=spec.repository,
        repository_credentials=credentials,
        toolman_config=sidecar,
        env=env,
        agent_args=tuple(args),
        cpu=spec.resources.cpu,
        memory_bytes=memory_bytes(spec.resources.memory) if spec.resources.memory else None,
        labels=dict(spec.labels),
    )
