"""What the operator's config lets a task use, asked twice: when it is submitted (a 422
naming the field) and again when it launches (the config may have changed meanwhile:
the task fails with the same words).

A task's `env` and `secrets` may not set a name the operator sets for every agent
(`agent.env`; in `env`, also `agent.secrets`: only a task's own secret may replace the
operator's, as before) nor any name `tasks.env_denied` refuses (the operator's model
endpoint and key, the agent's MCP config, proxies...: config.py says why each).

A repository's host must be one `tasks.repository_hosts` allows and, at launch, resolve
outside `tasks.repository_networks_denied` (tasks/repository_guard.py); its credentials
are a reference like a secret's.

A secret is a reference to a variable or a file of the orchestrator's that
`task_secrets` allows. A file is judged and read by its real path, resolved once
(`os.path.realpath`): a symlink or `..` cannot lead out of an allowed directory.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from fnmatch import fnmatchcase
from pathlib import Path

from orchestrator.config import OrchestratorConfig, real_file_allowed
from orchestrator.tasks.model import Repository, SecretRef, TaskCreate, secret_path_problem
from orchestrator.tasks.repository_guard import (
    address_problem,
    host_problem,
    literal_address_problem,
)
from toolman.errors import ConfigError as ToolmanConfigError
from toolman.secrets import resolve_secret


class Refused(ValueError):
    """The task cannot have this now; the message starts with the field (`secrets.X`)."""


Refusal = tuple[list[str | int], str]  # where in the request, and why (`field: problem`)
# Why a task's secret reference (at `field`) cannot be used, or None: each backend says
# what a reference may name (a file of the orchestrator's, a key of a Secret).
SecretCheck = Callable[[str, SecretRef], str | None]


def task_refusal(
    config: OrchestratorConfig,
    spec: TaskCreate,
    environ: Mapping[str, str],
    secret_check: SecretCheck,
) -> Refusal | None:
    """The first thing the operator's config refuses a task, on every backend and both at
    submission and at launch: a name of `env` or `secrets` (env_refusal), the
    repository's host (repository_refusal), a secret reference (`secret_check`)."""
    refused = env_refusal(config, spec.env, spec.secrets)
    if spec.repository is not None:
        refused = refused or repository_refusal(config, spec.repository, environ)
    if refused:
        return refused
    for name, ref in spec.secrets.items():
        problem = secret_check(f"secrets.{name}", ref)
        if problem:
            return ["secrets", name], problem
    return None


def env_problem(config: OrchestratorConfig, field: str, name: str) -> str | None:
    """Why a task may not set variable `name` in its `field` ("env" or "secrets"), or None."""
    where = f"{field}.{name}"
    if name in config.agent.env:
        return (
            f"{where}: the operator sets {name} for every agent (agent.env in the "
            "orchestrator's config); a task may not change it"
        )
    if field == "env" and name in config.agent.secrets:
        return (
            f"{where}: the operator gives every agent {name} (agent.secrets in the "
            "orchestrator's config); a task may not change it"
        )
    rule = next((p for p in config.tasks.env_denied if fnmatchcase(name, p)), None)
    if rule is not None:
        return (
            f"{where}: tasks may not set {name} (rule {rule!r} of tasks.env_denied in the "
            "orchestrator's config)"
        )
    return None


def env_refusal(
    config: OrchestratorConfig, env: Mapping[str, object], secrets: Mapping[str, object]
) -> tuple[list[str | int], str] | None:
    """The first name of a task's `env` or `secrets` it may not set: its location in the
    request and the problem (which starts with `env.NAME: ` or `secrets.NAME: `)."""
    for field, names in (("env", env), ("secrets", secrets)):
        for name in names:
            problem = env_problem(config, field, name)
            if problem:
                return [field, name], problem
    return None


def repository_refusal(
    config: OrchestratorConfig, repository: Repository, environ: Mapping[str, str]
) -> tuple[list[str | int], str] | None:
    """At submission, without a DNS lookup: the host allow-list, a host written as an
    address, the credentials' reference. The location in the request and the problem."""
    networks = config.tasks.repository_networks_denied
    problem = host_problem(repository.url, config.tasks.repository_hosts)
    problem = problem or literal_address_problem(repository.url, networks)
    if problem:
        return ["repository", "url"], problem
    if repository.credentials is not None:
        field = "repository.credentials"
        problem = secret_problem(config, field, repository.credentials, environ)
        if problem:
            return ["repository", "credentials"], problem
    return None


def repository_access(
    config: OrchestratorConfig, repository: Repository, environ: Mapping[str, str]
) -> tuple[str, str] | None:
    """At launch: the host allowed and resolved outside the denied networks (a DNS
    lookup: call it off the event loop), then the credentials as (username, password).
    Refused says why not."""
    tasks = config.tasks
    problem = host_problem(repository.url, tasks.repository_hosts) or address_problem(
        repository.url, tasks.repository_networks_denied
    )
    if problem:
        raise Refused(problem)
    credentials = repository.credentials
    if credentials is None:
        return None
    password = secret_value(config, "repository.credentials", credentials, environ)
    return credentials.username, password


def secret_problem(
    config: OrchestratorConfig, field: str, ref: SecretRef, environ: Mapping[str, str]
) -> str | None:
    """Why this reference (at `field`, e.g. `secrets.KEY`) cannot be used now, or None."""
    real = os.path.realpath(ref.file) if ref.file is not None else None
    return _problem(config, field, ref, real, environ)


def secret_value(
    config: OrchestratorConfig, field: str, ref: SecretRef, environ: Mapping[str, str]
) -> str:
    """The secret's value, read from exactly the path that was checked; Refused."""
    real = os.path.realpath(ref.file) if ref.file is not None else None
    problem = _problem(config, field, ref, real, environ)
    if problem:
        raise Refused(problem)
    source = {"env": ref.env} if real is None else {"file": real}
    try:
        return resolve_secret(source, field, environ)
    except ToolmanConfigError as exc:
        raise Refused(str(exc)) from None


def _problem(
    config: OrchestratorConfig,
    field: str,
    ref: SecretRef,
    real: str | None,
    environ: Mapping[str, str],
) -> str | None:
    # The messages name the path as the task gave it, never where a link leads.
    if ref.env is not None:
        if ref.env not in config.task_secrets.env:
            return (
                f"{field}: the orchestrator's environment variable {ref.env} is not one tasks "
                "may use; an operator can add it to task_secrets.env in the orchestrator's config"
            )
        if not environ.get(ref.env):
            return f"{field}: the orchestrator's environment variable {ref.env} is not set"
        return None
    assert ref.file is not None
    assert real is not None
    if secret_path_problem(ref.file) or not real_file_allowed(config, real):
        return (
            f"{field}: the orchestrator's file {ref.file} is not one tasks may use; an "
            "operator can add it to task_secrets.files in the orchestrator's config"
        )
    if not Path(real).is_file():
        return f"{field}: the orchestrator has no file {ref.file}"
    return None
