"""`/api/v1/tasks` on Kubernetes: the same paths, bodies and answers as on Docker
(`api/tasks.py`), with TaskRuns as the store (taskruns.py). A request Kubernetes could not
run is refused at once with 422 naming the field: a tool policy toolman would not
accept, and whatever admission.py refuses (a name the config denies, a repository host
it does not allow, a secret that is not an allowed key of a Secret, credentials). Logs come from the
kubelet through the API server (`pods/log`), as `kubectl logs` reads them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response, Security
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPBearer

from orchestrator.api.auth import require_token
from orchestrator.api.listing import ListQuery, idempotency_conflict, list_query
from orchestrator.api.views import field_location, invalid, known_query
from orchestrator.backends.base import LaunchError
from orchestrator.backends.kubernetes.admission import kubernetes_refusal
from orchestrator.backends.kubernetes.inputs import TaskRunRef, render_inputs
from orchestrator.backends.kubernetes.reconcile import CANCELLED_UNSTARTED
from orchestrator.backends.kubernetes.taskruns import API, TaskRuns
from orchestrator.config import OrchestratorConfig
from orchestrator.tasks.model import LogStream, Phase, Task, TaskCreate, TaskPage
from orchestrator.tasks.policy import PolicyError, toolman_config
from orchestrator.tasks.store import IdempotencyConflict

bearer = HTTPBearer(auto_error=False, description="A token the orchestrator's config knows")
router = APIRouter(
    prefix=f"{API}/tasks",
    tags=["tasks"],
    dependencies=[Security(bearer), Depends(require_token), Depends(known_query)],
)
SIZE_CHECK = TaskRunRef("size-check", "size-check", "")  # renders what is never created
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No task has this id"}}


def taskruns(request: Request) -> TaskRuns:
    found: TaskRuns = request.app.state.taskruns
    return found


def config(request: Request) -> OrchestratorConfig:
    found: OrchestratorConfig = request.app.state.config
    return found


Runs = Annotated[TaskRuns, Depends(taskruns)]
Config = Annotated[OrchestratorConfig, Depends(config)]


@router.post(
    "",
    status_code=201,
    responses={409: {"description": "The Idempotency-Key was used with another body"}},
)
async def create_task(
    spec: TaskCreate,
    runs: Runs,
    cfg: Config,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=255, min_length=1)] = None,
) -> Task:
    """Submit a task: a TaskRun in the controller's namespace. With the same
    `Idempotency-Key` and body, the same task comes back."""
    try:
        toolman_config(cfg.toolman.config, spec.agent.name, spec.tools)
    except PolicyError as exc:
        raise invalid(field_location(exc.field), exc.message) from None
    refused = kubernetes_refusal(cfg, spec)
    if refused:
        raise invalid(["body", *refused[0]], refused[1].split(": ", 1)[1])
    try:  # the ConfigMap must fit the API server's limit: refused now, not by it later
        render_inputs(SIZE_CHECK, spec, cfg.toolman.config)
    except LaunchError as exc:
        field, message = str(exc).split(": ", 1)
        raise invalid(["body", *field.split(".")], message) from None
    try:
        task = await runs.create(spec, idempotency_key)
    except IdempotencyConflict as exc:
        assert idempotency_key is not None  # a conflict needs a key
        raise idempotency_conflict(idempotency_key, exc.task_id) from None
    response.headers["Location"] = task.links["self"]
    return task


@router.get("")
async def list_tasks(runs: Runs, query: Annotated[ListQuery, Depends(list_query)]) -> TaskPage:
    """Tasks in submission order (or newest first), `limit` at a time; `next_cursor`
    fetches the next page in the same order."""
    return await runs.page(query)


@router.get("/{task_id}", responses=NOT_FOUND)
async def get_task(task_id: str, runs: Runs) -> Task:
    task = await runs.get(task_id)
    if task is None:
        raise HTTPException(404, detail=f"no task {task_id!r}")
    return task


@router.get(
    "/{task_id}/logs",
    responses={**NOT_FOUND, 200: {"content": {"text/plain": {}}, "description": "The log"}},
    response_class=StreamingResponse,
)
async def task_logs(
    task_id: str, runs: Runs, stream: LogStream = LogStream.AGENT, follow: bool = False
) -> StreamingResponse:
    """The agent's (or toolman's) output; `follow=true` streams until the container stops."""
    await get_task(task_id, runs)
    return StreamingResponse(runs.logs(task_id, stream, follow=follow), media_type="text/plain")


@router.post(
    "/{task_id}/cancel",
    status_code=202,
    responses={**NOT_FOUND, 409: {"description": "The task has already ended"}},
)
async def cancel_task(task_id: str, runs: Runs) -> Task:
    """Cancel a task: the controller deletes its Job and marks it cancelled. A pending one
    (no Job yet) is answered `cancelled` at once, as on Docker; the controller writes it."""
    task = await get_task(task_id, runs)
    if task.phase.finished:
        raise HTTPException(409, detail=f"task {task_id} has already ended: {task.phase.value}")
    await runs.cancel(task_id)
    if task.phase is Phase.PENDING:
        ended = {"phase": Phase.CANCELLED, "reason": CANCELLED_UNSTARTED}
        return task.model_copy(update=ended | {"finished_at": datetime.now(UTC)})
    return task
