"""The task API's store on Kubernetes: TaskRuns. A task submitted through `/api/v1/tasks`
becomes a TaskRun (its spec the request as accepted), is read back as the same `Task`
model the Docker backend answers with, and is cancelled by the annotation the controller
acts on. There is no other state: the API server is the store.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

from lightkube import AsyncClient
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Pod
from lightkube.types import PatchType

from orchestrator.backends.kubernetes.api import NOT_FOUND, Failure, TaskRun, status_of
from orchestrator.backends.kubernetes.options import GROUP, LABEL_TASK
from orchestrator.backends.kubernetes.reconcile import CANCEL_ANNOTATION
from orchestrator.tasks.model import (
    FileSummary,
    LogStream,
    Phase,
    Task,
    TaskCreate,
    TaskSpec,
    file_bytes,
)

API = "/api/v1"
FOLLOW_POLL_SECONDS = 0.25
BAD_REQUEST = 400  # what the API server answers for a container that has not started
EPOCH = datetime.fromtimestamp(0, UTC)
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

    async def logs(self, task_id: str, stream: LogStream, *, follow: bool) -> AsyncIterator[bytes]:
        """A container's output, from the kubelet through the API server. With `follow`,
        from when the agent runs until the container stops (as on Docker)."""
        task = await self.get(task_id)
        while follow and task is not None and task.phase in (Phase.PENDING, Phase.STARTING):
            await asyncio.sleep(FOLLOW_POLL_SECONDS)  # no container output before it runs
            task = await self.get(task_id)
        pods = [
            pod
            async for pod in self.client.list(
                Pod, namespace=self.namespace, labels={LABEL_TASK: task_id}
            )
            if pod.metadata is not None and (pod.metadata.labels or {}).get(LABEL_TASK) == task_id
        ]
        if task is None or not pods:
            return  # never launched: no output
        newest = max(
            pods,
            key=lambda pod: (pod.metadata.creationTimestamp if pod.metadata else None) or EPOCH,
        )
        name = newest.metadata.name if newest.metadata else ""
        try:
            async for line in self.client.log(
                name or "", namespace=self.namespace, container=stream.value, follow=follow
            ):
                yield line.encode()
        except Failure as exc:
            if status_of(exc) not in (BAD_REQUEST, NOT_FOUND):  # not started, or gone
                raise

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
        created_at=created or EPOCH,
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
