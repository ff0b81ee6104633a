"""What the Kubernetes renderers are told, and the names and labels of what they make.

Every object of a task is named after its TaskRun (`<taskrun>-task` for the ConfigMap and
the Secret, `<taskrun>` for the Job) and labelled with it, so a controller finds them
again from the API's state alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

GROUP = "orchestrator.5dlabs.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "TaskRun"
PLURAL = "taskruns"
SINGULAR = "taskrun"
FINALIZER = f"{GROUP}/cleanup"
LABEL_TASK = f"{GROUP}/taskrun"
LABEL_ROLE = f"{GROUP}/role"
MANAGED_BY = {"app.kubernetes.io/managed-by": "orchestrator"}

DEFAULT_REGISTRY = "ghcr.io/5dlabs/platform"


@dataclass(frozen=True)
class SecretKeyRef:
    """A key of a Secret in the task's namespace (a container's `secretKeyRef`)."""

    secret: str
    key: str


@dataclass(frozen=True)
class KubernetesOptions:
    """The images and the pod settings of every task's Job.

    `clone_image` runs the repository clone and the file placement (the orchestrator's
    image: it carries `orchestrator.backends.clone`); `uid` is the user every container
    runs as (the project's images use 10001), `fs_group` owns the workspace volume.
    `toolman_env` (values, or Secret keys), `toolman_cpu` and `toolman_memory_bytes` are
    the sidecar's (the config's `toolman.env` and `toolman.resources`); the clone step
    is killed after `clone_timeout_seconds` (`tasks.clone_timeout_seconds`).
    """

    agent_image: str = f"{DEFAULT_REGISTRY}/claude-code:latest"
    toolman_image: str = f"{DEFAULT_REGISTRY}/toolman:latest"
    clone_image: str = f"{DEFAULT_REGISTRY}/orchestrator:latest"
    uid: int = 10001
    fs_group: int = 10001
    ttl_seconds_after_finished: int = 3600
    toolman_startup_seconds: int = 60
    workspace_size_limit: str = "10Gi"
    service_account: str | None = None  # the pods' own; none: the namespace's default
    toolman_env: Mapping[str, str | SecretKeyRef] = field(default_factory=dict)
    toolman_cpu: float | None = None
    toolman_memory_bytes: int | None = None
    clone_timeout_seconds: int = 600

    def __post_init__(self) -> None:
        for field_name in ("agent_image", "toolman_image", "clone_image"):
            if not getattr(self, field_name).strip():
                raise ValueError(f"kubernetes.{field_name}: must name an image")
        if self.uid <= 0:
            raise ValueError("kubernetes.uid: must be a non-root user id (> 0)")
        if self.ttl_seconds_after_finished < 0:
            raise ValueError("kubernetes.ttl_seconds_after_finished: must be 0 or more")
        if self.clone_timeout_seconds < 1:
            raise ValueError("kubernetes.clone_timeout_seconds: must be 1 or more")
        if self.toolman_startup_seconds < 1:
            raise ValueError("kubernetes.toolman_startup_seconds: must be 1 or more")


def inputs_name(taskrun: str) -> str:
    """The ConfigMap and the Secret of a task."""
    return f"{taskrun}-task"


def labels(taskrun: str, role: str) -> dict[str, str]:
    return {**MANAGED_BY, LABEL_TASK: taskrun, LABEL_ROLE: role}
