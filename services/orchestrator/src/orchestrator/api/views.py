"""Stored records as the API shows them, and errors in FastAPI's own 422 shape."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import HTTPException

from orchestrator.tasks.model import Task, TaskSpec
from orchestrator.tasks.store import TaskRecord

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
        started_at=when(record.started_at),
        finished_at=when(record.finished_at),
        spec=TaskSpec.of(record.spec),
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
