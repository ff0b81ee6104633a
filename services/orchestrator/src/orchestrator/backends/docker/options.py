"""What the Docker backend is told (DockerOptions) and how it names and labels what it
makes: containers `<prefix>-<task>-<role>` labelled with the task, the role and the
orchestrator instance, so a restarted orchestrator finds exactly its own again."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from orchestrator.backends.base import Launch

LABEL = "io.5dlabs.orchestrator"
LABEL_TASK = f"{LABEL}.task"
LABEL_ROLE = f"{LABEL}.role"
LABEL_INSTANCE = f"{LABEL}.instance"
ROLES = ("agent", "toolman")


@dataclass(frozen=True)
class DockerOptions:
    agent_image: str
    toolman_image: str
    network: str = "bridge"
    user: str = "10001:10001"
    instance: str = "default"
    name_prefix: str = "orchestrator"
    toolman_env: Mapping[str, str] = field(default_factory=dict, repr=False)
    toolman_cpu: float | None = None
    toolman_memory_bytes: int | None = None
    pids_limit: int = 1024
    ready_timeout_seconds: float = 60.0
    max_workspace_bytes: int = 1 << 30
    clone_timeout_seconds: float = 600.0
    environment: Mapping[str, str] | None = field(default=None, repr=False)  # DOCKER_HOST...

    @property
    def uid(self) -> int:
        return int(self.user.split(":")[0])

    def name(self, task_id: str, role: str) -> str:
        return f"{self.name_prefix}-{task_id}-{role}"

    def labels(self, launch: Launch, role: str) -> dict[str, str]:
        labels = {f"{LABEL}.label.{k}": v for k, v in launch.labels.items()}
        return labels | {
            LABEL_TASK: launch.task_id,
            LABEL_ROLE: role,
            LABEL_INSTANCE: self.instance,
        }

    def selector(self, *labels: str) -> dict[str, str | list[str] | bool]:
        """An engine filter for this instance's containers (and `labels`)."""
        return {"label": [f"{LABEL_INSTANCE}={self.instance}", *labels]}
