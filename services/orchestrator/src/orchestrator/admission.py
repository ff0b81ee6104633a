"""What the operator's config lets a task use, asked twice: when it is submitted (a 422
naming the field) and again when it launches (the config may have changed meanwhile:
the task fails with the same words).

A secret is a reference to a variable or a file of the orchestrator's that
`task_secrets` allows. A file is judged and read by its real path, resolved once
(`os.path.realpath`): a symlink or `..` cannot lead out of an allowed directory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from orchestrator.config import OrchestratorConfig, real_file_allowed
from orchestrator.tasks.model import SecretRef, secret_path_problem
from toolman.errors import ConfigError as ToolmanConfigError
from toolman.secrets import resolve_secret


class SecretUnavailable(ValueError):
    """The reference cannot be used now; the message starts with the field (`secrets.X`)."""


def secret_problem(
    config: OrchestratorConfig, field: str, ref: SecretRef, environ: Mapping[str, str]
) -> str | None:
    """Why this reference (at `field`, e.g. `secrets.KEY`) cannot be used now, or None."""
    real = os.path.realpath(ref.file) if ref.file is not None else None
    return _problem(config, field, ref, real, environ)


def secret_value(
    config: OrchestratorConfig, field: str, ref: SecretRef, environ: Mapping[str, str]
) -> str:
    """The secret's value, read from exactly the path that was checked; SecretUnavailable."""
    real = os.path.realpath(ref.file) if ref.file is not None else None
    problem = _problem(config, field, ref, real, environ)
    if problem:
        raise SecretUnavailable(problem)
    source = {"env": ref.env} if real is None else {"file": real}
    try:
        return resolve_secret(source, field, environ)
    except ToolmanConfigError as exc:
        raise SecretUnavailable(str(exc)) from None


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
