"""The task API's store on Kubernetes: TaskRuns. A task submitted through `/api/v1/tasks`
becomes a TaskRun (its spec the request as accepted), is read back as the same `Task`
model the Docker backend answers with, and is cancelled by the annotation the controller
acts on. There is no other state: the API server is the store.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from lightkube import AsyncClient
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.types import PatchType

from orchestrator.backends.kubernetes.api import NOT_FOUND, Failure, TaskRun, status_of
from orchestrator.backends.kubernetes.options import GROUP
from orchestrator.backends.kubernetes.reconcile import CANCEL_ANNOTATION
from orchestrator.tasks.model import FileSummary, Phase, Task, TaskCreate, TaskSpec, file_bytes

API = "/api/v1"
CREATED_ANNOTATION = f"{GROUP}/created-at"  # the API server's creationTimestamp, if it has none


class TaskRuns:
    def __init__(self, client: AsyncClient, namespace: str) -> None:
        self.client = client
        self.namespace = namespace

    async def create(self, spec: TaskCreate) -> Task:
        name = f"task-{secrets.token_hex(6)}"
        meta = ObjectMeta(
            name=name,
            namespace=self.namespace,
            labels=dict(spec.labels) or None,
            annotations={CREATED_ANNOTATION: _time(datetime.now(UTC))},
        )
        body = spec.model_dump(mode="json", exclude_none=True)
        created = await self.client.create(TaskRun(metadata=meta, spec=body))
        return task_of(created)

    async def get(self, task_id: str) -> Task | None:
        try:
            return task_of(await self.client.get(TaskRun, task_id, namespace=self.namespace))
        except Failure as exc:
            if status_of(exc) == NOT_FOUND:
                return None
            raise

    async def all(self) -> list[Task]:
        """Newest first."""
        found = [task_of(run) async for run in self.client.list(TaskRun, namespace=self.namespace)]
        return sorted(found, key=lambda task: task.created_at, reverse=True)

    async def cancel(self, task_id: str) -> None:
        patch = {"metadata": {"annotations": {CANCEL_ANNOTATION: "true"}}}
        await self.client.patch(
            TaskRun, task_id, patch, namespace=self.namespace, patch_type=PatchType.MERGE
        )


def task_of(run: Any) -> Task:  # noqa: ANN401 - lightkube's generic resource type
    """A TaskRun as the API shows a task."""
    meta = run.metadata
    status: Mapping[str, Any] = run.status if isinstance(run.status, dict) else {}
    spec = TaskCreate.model_validate(run.spec or {})
    created = meta.creationTimestamp or _parse((meta.annotations or {}).get(CREATED_ANNOTATION))
    phase = Phase(status["phase"]) if status.get("phase") in set(Phase) else Phase.PENDING
    files = [
        FileSummary(path=f.path, bytes=len(file_bytes(f)), executable=f.executable)
        for f in spec.files
    ]
    base = f"{API}/tasks/{meta.name}"
    return Task(
        id=meta.name,
        phase=phase,
        reason=status.get("reason"),
        exit_code=status.get("exitCode"),
        created_at=created or datetime.fromtimestamp(0, UTC),
        launched_at=created if status.get("jobName") else None,
        started_at=_parse(status.get("startedAt")),
        finished_at=_parse(status.get("finishedAt")),
        spec=TaskSpec.of(spec, files),
        links={
            "self": base,
            "logs": f"{base}/logs?stream=agent",
            "toolman_logs": f"{base}/logs?stream=toolman",
            "cancel": f"{base}/cancel",
        },
    )


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return None
