"""Stored records as the API shows them, and errors: FastAPI's own 422 shape (also for an
unknown query parameter), and a 405 that names every method of its path."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.routing import Match

from orchestrator.tasks.model import Task, TaskSpec
from orchestrator.tasks.records import TaskRecord

API = "/api/v1"


def when(moment: float | None) -> datetime | None:
    return None if moment is None else datetime.fromtimestamp(moment, UTC)


def task_view(record: TaskRecord) -> Task:
    base = f"{API}/tasks/{record.id}"
    return Task(
        id=record.id,
        phase=record.phase,
        reason=record.reason,
        exit_code=record.exit_code,
        created_at=datetime.fromtimestamp(record.created_at, UTC),
        launched_at=when(record.launched_at),
        started_at=when(record.started_at),
        finished_at=when(record.finished_at),
        spec=TaskSpec.of(record.spec, record.files),
        tool_calls=record.tool_calls,
        links={
            "self": base,
            "logs": f"{base}/logs?stream=agent",
            "toolman_logs": f"{base}/logs?stream=toolman",
            "cancel": f"{base}/cancel",
        },
    )


def invalid(location: list[str | int], message: str) -> HTTPException:
    """422 with the field named, shaped like FastAPI's own validation errors."""
    detail: list[dict[str, Any]] = [{"loc": location, "msg": message, "type": "value_error"}]
    return HTTPException(422, detail=detail)


def field_location(dotted: str) -> list[str | int]:
    """`tools.servers[1]` -> ["body", "tools", "servers", 1]."""
    location: list[str | int] = ["body"]
    for part in dotted.replace("]", "").split("."):
        name, _, index = part.partition("[")
        location.append(name)
        if index:
            location.append(int(index))
    return location


def known_query(request: Request) -> None:
    """422 for a query parameter the route does not take: a misspelt filter (`?phse=...`,
    `?folow=true`) would otherwise be ignored and answer as if it were not there."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known = set(_query_names(route.dependant))
    for name in request.query_params:
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise invalid(["query", name], f"unknown query parameter{hint}")


def _query_names(dependant: Dependant) -> Iterator[str]:
    for field in dependant.query_params:
        yield field.alias
    for inner in dependant.dependencies:
        yield from _query_names(inner)


METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


async def method_not_allowed(request: Request, exc: Exception) -> Response:
    """405 whose `Allow` names every method of the path: Starlette's own names only the
    methods of the first route that matched it (`POST` for `/api/v1/tasks`, not `GET`)."""
    probe = {"type": "http", "path": request.url.path, "root_path": ""}
    allowed = [
        method
        for method in METHODS
        if any(
            route.matches({**probe, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    ]
    return JSONResponse(
        {"detail": "Method Not Allowed"}, status_code=405, headers={"Allow": ", ".join(allowed)}
    )
