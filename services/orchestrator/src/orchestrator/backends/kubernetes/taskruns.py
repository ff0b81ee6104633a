"""The task API's store on Kubernetes: TaskRuns. A task submitted through `/api/v1/tasks`
becomes a TaskRun (its spec the request as accepted), is read back as the same `Task`
model the Docker backend answers with, and is cancelled by the annotation the controller
acts on. There is no other state: the API server is the store.

As on Docker: an `Idempotency-Key` names the TaskRun (`task-` and a digest of the key), so
the API server's own 409 on a taken name makes a repeat atomic, across replicas too; the
earlier TaskRun's spec then decides between the same task and a conflict. A list is
filtered by phase and label and paged by submission time in microseconds (the
`created-at` annotation), oldest or newest first, with the same cursors. Listing reads
every TaskRun of the namespace once per page (a label selector narrows it on a real API
server); two tasks submitted in the same microsecond by two replicas could straddle a
page boundary, one of them then missed by that walk.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from lightkube import AsyncClient
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.types import PatchType

from orchestrator.api.listing import ListQuery
from orchestrator.backends.kubernetes.api import CONFLICT, NOT_FOUND, Failure, TaskRun, status_of
from orchestrator.backends.kubernetes.options import GROUP
from orchestrator.backends.kubernetes.pods import container_log
from orchestrator.backends.kubernetes.reconcile import CANCEL_ANNOTATION
from orchestrator.tasks.model import (
    FileSummary,
    LogStream,
    Phase,
    Task,
    TaskCreate,
    TaskPage,
    TaskSpec,
    ToolCalls,
    file_bytes,
)
from orchestrator.tasks.store import IdempotencyConflict, body_hash

API = "/api/v1"
FOLLOW_POLL_SECONDS = 0.25
EPOCH = datetime.fromtimestamp(0, UTC)
CREATED_ANNOTATION = f"{GROUP}/created-at"  # the API server's creationTimestamp, if it has none


class TaskRuns:
    def __init__(self, client: AsyncClient, namespace: str) -> None:
        self.client = client
        self.namespace = namespace

    async def create(self, spec: TaskCreate, idempotency_key: str | None = None) -> Task:
        """The new task; with an `idempotency_key` used before, the earlier task if its
        body was the same, else IdempotencyConflict."""
        if idempotency_key is None:
            name = f"task-{secrets.token_hex(6)}"
        else:
            name = f"task-{hashlib.sha256(idempotency_key.encode()).hexdigest()[:12]}"
        meta = ObjectMeta(
            name=name,
            namespace=self.namespace,
            labels=dict(spec.labels) or None,
            annotations={CREATED_ANNOTATION: _time(datetime.now(UTC))},
        )
        body = spec.model_dump(mode="json", exclude_none=True)
        try:
            created = await self.client.create(TaskRun(metadata=meta, spec=body))
        except Failure as exc:
            if idempotency_key is None or status_of(exc) != CONFLICT:
                raise
            earlier = await self.client.get(TaskRun, name, namespace=self.namespace)
            if body_hash(TaskCreate.model_validate(earlier.spec or {})) != body_hash(spec):
                raise IdempotencyConflict(name) from None
            return task_of(earlier)
        return task_of(created)

    async def get(self, task_id: str) -> Task | None:
        try:
            return task_of(await self.client.get(TaskRun, task_id, namespace=self.namespace))
        except Failure as exc:
            if status_of(exc) == NOT_FOUND:
                return None
            raise

    async def page(self, query: ListQuery) -> TaskPage:
        """The tasks `query` lists, one page of them, and the cursor of the next."""
        selector: dict[str, Any] = dict(query.labels)
        listed = self.client.list(TaskRun, namespace=self.namespace, labels=selector or None)
        # One source for labels, the TaskRun's metadata (what `kubectl get -l` and the
        # API server's selector see): a TaskRun made with kubectl filters the same way.
        found = [(submitted(run), labels_of(run), task_of(run)) async for run in listed]
        chosen = sorted(
            (
                (seq, task)
                for seq, labels, task in found
                if query.matches(task.phase, labels)
                and (not query.after or (seq < query.after if query.newest else seq > query.after))
            ),
            key=lambda pair: pair[0],
            reverse=query.newest,
        )
        more = len(chosen) > query.limit
        cursor = query.cursor(chosen[query.limit - 1][0]) if more else None
        return TaskPage(items=[task for _, task in chosen[: query.limit]], next_cursor=cursor)

    async def counts(self) -> dict[Phase, int]:
        """How many TaskRuns of the namespace are in each phase (for `/metrics`)."""
        found = dict.fromkeys(Phase, 0)
        async for run in self.client.list(TaskRun, namespace=self.namespace):
            found[task_of(run).phase] += 1
        return found

    async def logs(self, task_id: str, stream: LogStream, *, follow: bool) -> AsyncIterator[bytes]:
        """A container's output, from the kubelet through the API server. With `follow`,
        from when the agent runs until the container stops (as on Docker)."""
        task = await self.get(task_id)
        while follow and task is not None and task.phase in (Phase.PENDING, Phase.STARTING):
            await asyncio.sleep(FOLLOW_POLL_SECONDS)  # no container output before it runs
            task = await self.get(task_id)
        if task is None:
            return
        lines = container_log(self.client, self.namespace, task_id, stream.value, follow=follow)
        async for line in lines:
            yield line.encode()

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
        tool_calls=ToolCalls.model_validate(status.get("toolCalls") or {}),
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


def labels_of(run: Any) -> dict[str, str]:  # noqa: ANN401 - lightkube's generic resource type
    return dict((run.metadata.labels if run.metadata else None) or {})


def submitted(run: Any) -> int:  # noqa: ANN401 - lightkube's generic resource type
    """When the task was submitted, in microseconds since the epoch: the API's annotation
    (a TaskRun made another way: its creationTimestamp, in whole seconds)."""
    meta = run.metadata
    moment = _parse((meta.annotations or {}).get(CREATED_ANNOTATION)) or meta.creationTimestamp
    return ((moment or EPOCH) - EPOCH) // timedelta(microseconds=1)


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return None
