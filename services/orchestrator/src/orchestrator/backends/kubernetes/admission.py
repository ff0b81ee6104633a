"""What the operator's config lets a task use on Kubernetes: the same rules as on Docker
(`orchestrator.admission.task_refusal`: the names of `env` and `secrets`, the
repository's host), asked at submission (tasks_api.py, a 422 naming the field) and again
when the controller launches the task (render.py: a TaskRun made with kubectl, or one
accepted before the config changed, fails with the same words).

A secret is a key of a Secret in the task's namespace, named by the path where Kubernetes
would mount it, `{"file": "/run/secrets/<secret>/<key>"}`; that path must match one of
`task_secrets.files` (the same globs as on Docker), and a task's own inputs (the
`<taskrun>-task` Secrets holding toolman tokens) are never one. Repository credentials
are not supported on Kubernetes.
"""

from __future__ import annotations

from orchestrator.admission import Refusal, task_refusal
from orchestrator.backends.base import LaunchError
from orchestrator.backends.kubernetes.inputs import secret_key_ref
from orchestrator.backends.kubernetes.options import inputs_name
from orchestrator.config import OrchestratorConfig, path_matches
from orchestrator.tasks.model import SecretRef, TaskCreate

CREDENTIALS_UNSUPPORTED = (
    "repository.credentials: not supported on the kubernetes backend; clone a repository "
    "that needs none, or run the task on the docker backend"
)
TASK_INPUTS_SUFFIX = inputs_name("")  # "-task": every TaskRun's own Secret ends so


def secret_problem(config: OrchestratorConfig, field: str, ref: SecretRef) -> str | None:
    """Why a task may not name this Secret key, or None. Never reads the Secret."""
    try:
        key = secret_key_ref(field, ref.file)
    except LaunchError as exc:
        return str(exc)
    assert ref.file is not None  # secret_key_ref accepted it
    if key.secret.endswith(TASK_INPUTS_SUFFIX) or not any(
        path_matches(ref.file, pattern) for pattern in config.task_secrets.files
    ):
        return (
            f"{field}: the Secret key {ref.file} is not one tasks may use; an operator can "
            "add it to task_secrets.files in the orchestrator's config"
        )
    return None


def kubernetes_refusal(config: OrchestratorConfig, spec: TaskCreate) -> Refusal | None:
    """The first thing a Kubernetes task may not have: its location in the request and
    the problem (which starts with the field)."""
    if spec.repository is not None and spec.repository.credentials is not None:
        return ["repository", "credentials"], CREDENTIALS_UNSUPPORTED
    return task_refusal(config, spec, {}, lambda field, ref: secret_problem(config, field, ref))
