"""From a stored task to a backend `Launch`: the sidecar's toolman config, the agent's
environment with its secrets resolved (only now, never stored), its files as bytes."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from orchestrator.backends.base import Launch, LaunchError, WorkspaceEntry
from orchestrator.config import OrchestratorConfig, secret_allowed
from orchestrator.tasks.model import SecretRef, TaskCreate, file_bytes, memory_bytes
from orchestrator.tasks.policy import PolicyError, toolman_config
from toolman.errors import ConfigError as ToolmanConfigError
from toolman.secrets import resolve_secret


def secret_problem(
    config: OrchestratorConfig, name: str, ref: SecretRef, environ: Mapping[str, str]
) -> str | None:
    """Why this reference cannot be used now, or None."""
    if not secret_allowed(config, ref.env, ref.file):
        which = f"environment variable {ref.env}" if ref.env else f"file {ref.file}"
        key = "task_secrets.env" if ref.env else "task_secrets.files"
        return (
            f"secrets.{name}: the orchestrator's {which} is not one tasks may use; "
            f"an operator can add it to {key} in the orchestrator's config"
        )
    if ref.env is not None and not environ.get(ref.env):
        return f"secrets.{name}: the orchestrator's environment variable {ref.env} is not set"
    if ref.file is not None and not Path(ref.file).is_file():
        return f"secrets.{name}: the orchestrator has no file {ref.file}"
    return None


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
    """LaunchError when the task can no longer start as stored (a secret went away)."""
    try:
        sidecar = toolman_config(config.toolman.config, spec.agent.name, spec.tools)
    except PolicyError as exc:
        raise LaunchError(f"the tool policy is no longer valid: {exc}") from exc
    env = {**config.agent.env, **agent_secrets(config, environ), **spec.env}
    for name, ref in spec.secrets.items():
        problem = secret_problem(config, name, ref, environ)
        if problem:
            raise LaunchError(problem)
        try:
            env[name] = resolve_secret(
                ref.model_dump(exclude_none=True), f"secrets.{name}", environ
            )
        except ToolmanConfigError as exc:
            raise LaunchError(str(exc)) from None
    args = list(config.agent.args)
    if spec.agent.model:
        args += ["--model", spec.agent.model]
    return Launch(
        task_id=task_id,
        agent_name=spec.agent.name,
        prompt=spec.prompt,
        files=tuple(WorkspaceEntry(f.path, file_bytes(f), f.executable) for f in spec.files),
        repository=spec.repository,
        toolman_config=sidecar,
        env=env,
        agent_args=tuple(args),
        cpu=spec.resources.cpu,
        memory_bytes=memory_bytes(spec.resources.memory) if spec.resources.memory else None,
        labels=dict(spec.labels),
    )
