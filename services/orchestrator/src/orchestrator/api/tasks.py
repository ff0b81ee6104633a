"""`/api/v1/tasks`: submit, list, read, follow the logs of and cancel tasks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response, Security
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPBearer

from orchestrator.admission import secret_problem, task_refusal
from orchestrator.api.auth import require_token
from orchestrator.api.listing import ListQuery, idempotency_conflict, list_query
from orchestrator.api.views import API, field_location, invalid, known_query, task_view
from orchestrator.backends.base import BackendUnavailable
from orchestrator.runtime import Runtime
from orchestrator.tasks.model import (
    LogStream,
    Phase,
    Task,
    TaskCreate,
    TaskPage,
)
from orchestrator.tasks.policy import PolicyError, toolman_config
from orchestrator.tasks.records import TaskRecord
from orchestrator.tasks.store import IdempotencyConflict

# The scheme, for the OpenAPI schema; `require_token` (and the RequestGuard) decide.
bearer = HTTPBearer(auto_error=False, description="A token the orchestrator's config knows")
router = APIRouter(
    prefix=f"{API}/tasks",
    tags=["tasks"],
    dependencies=[Security(bearer), Depends(require_token), Depends(known_query)],
    responses={
        401: {"description": "No bearer token, or one the orchestrator does not know"},
        503: {"description": "No API token is configured yet (or, for logs: the engine)"},
    },
)
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No task has this id"}}
FOLLOW_POLL_SECONDS = 0.25


def runtime(request: Request) -> Runtime:
    found: Runtime = request.app.state.runtime
    return found


Rt = Annotated[Runtime, Depends(runtime)]


def known(rt: Runtime, task_id: str) -> TaskRecord:
    record = rt.store.get(task_id)
    if record is None:
        raise HTTPException(404, detail=f"no task {task_id!r}")
    return record


@router.post(
    "",
    status_code=201,
    responses={
        400: {"description": "The body cannot be read as text (it is not UTF-8)"},
        409: {"description": "The Idempotency-Key was used with another body"},
        413: {"description": "The body is larger than tasks.max_request_bytes"},
    },
)
async def create_task(
    spec: TaskCreate,
    rt: Rt,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=255, min_length=1)] = None,
) -> Task:
    """Submit a task. With the same `Idempotency-Key` and body, the same task comes back."""
    try:
        toolman_config(rt.config.toolman.config, spec.agent.name, spec.tools)
    except PolicyError as exc:
        raise invalid(field_location(exc.field), exc.message) from None
    refused = task_refusal(
        rt.config,
        spec,
        rt.environ,
        lambda field, ref: secret_problem(rt.config, field, ref, rt.environ),
    )
    if refused:
        raise invalid(["body", *refused[0]], refused[1].split(": ", 1)[1])
    try:
        record, _ = rt.store.create(spec, idempotency_key)
    except IdempotencyConflict as exc:
        assert idempotency_key is not None  # a conflict needs a key
        raise idempotency_conflict(idempotency_key, exc.task_id) from None
    rt.controller.wake()
    response.headers["Location"] = f"{API}/tasks/{record.id}"
    return task_view(record)


@router.get("")
async def list_tasks(rt: Rt, query: Annotated[ListQuery, Depends(list_query)]) -> TaskPage:
    """Tasks in submission order (or newest first), `limit` at a time; `next_cursor`
    fetches the next page in the same order."""
    records = rt.store.page(
        phases=query.phases,
        labels=query.labels,
        after_seq=query.after,
        limit=query.limit + 1,
        newest_first=query.newest,
    )
    more = len(records) > query.limit
    next_cursor = query.cursor(records[query.limit - 1].seq) if more else None
    return TaskPage(items=[task_view(r) for r in records[: query.limit]], next_cursor=next_cursor)


@router.get("/{task_id}", responses=NOT_FOUND)
async def get_task(task_id: str, rt: Rt) -> Task:
    return task_view(known(rt, task_id))


@router.post(
    "/{task_id}/cancel",
    status_code=202,
    responses={**NOT_FOUND, 409: {"description": "The task has already ended"}},
)
async def cancel_task(task_id: str, rt: Rt) -> Task:
    """Cancel a task: a pending one at once, a running one once its containers stopped."""
    record = known(rt, task_id)
    if record.phase.finished:
        raise HTTPException(409, detail=f"task {task_id} has already ended: {record.phase.value}")
    updated = rt.store.request_cancel(task_id) or record
    rt.controller.cancel(task_id)
    return task_view(updated)


@router.get(
    "/{task_id}/logs",
    responses={
        **NOT_FOUND,
        200: {"content": {"text/plain": {}}, "description": "The log"},
        503: {"description": "The engine that holds the log does not answer; try again"},
    },
    response_class=StreamingResponse,
)
async def task_logs(
    task_id: str,
    rt: Rt,
    stream: LogStream = LogStream.AGENT,
    follow: bool = False,
) -> StreamingResponse:
    """The agent's (or toolman's) output; `follow=true` streams until the task ends."""
    known(rt, task_id)
    chunks = _log_chunks(rt, task_id, stream, follow)
    if follow:  # the answer starts at once; the log comes when the task runs
        return StreamingResponse(chunks, media_type="text/plain")
    try:  # the first chunk before the status: an engine that does not answer is a 503
        first = await anext(chunks, b"")
    except BackendUnavailable as exc:
        await chunks.aclose()
        raise HTTPException(503, detail=f"{exc}; try again once it answers") from None
    return StreamingResponse(_after(first, chunks), media_type="text/plain")


async def _after(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    async for chunk in rest:
        yield chunk


async def _log_chunks(
    rt: Runtime, task_id: str, stream: LogStream, follow: bool
) -> AsyncGenerator[bytes, None]:
    record = known(rt, task_id)
    if follow:
        while not (record.phase is Phase.RUNNING or record.phase.finished):
            await asyncio.sleep(FOLLOW_POLL_SECONDS)  # pending or starting: not yet running
            record = known(rt, task_id)
        if record.phase is Phase.RUNNING:
            async for chunk in rt.backend.logs(task_id, stream, follow=True):
                yield chunk
            return  # the container stopped: all of its output was sent
    if record.phase.finished and rt.archive.has(task_id, stream):
        for chunk in rt.archive.read(task_id, stream):
            yield chunk
        return
    if record.launched_at is None:
        return  # never launched (pending, or cancelled before it started): no output
    async for chunk in rt.backend.logs(task_id, stream, follow=False):
        yield chunk
