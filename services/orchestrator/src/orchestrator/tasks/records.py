"""A stored task as the rest of the orchestrator sees it, read from one row.

A row is read leniently: a spec that the current model would refuse (it was accepted
by an earlier, looser version of the API) is still read, field by field without the
model's checks, so one old row can neither fail a listing nor stall the queue; if it
cannot run any more, its launch says why and the task fails alone.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from orchestrator.tasks.model import FileSummary, Phase, TaskCreate, ToolCalls

M = TypeVar("M", bound=BaseModel)
COLUMNS = (
    "seq, id, spec, phase, reason, exit_code, created_at, launched_at, started_at, "
    "finished_at, cleaned_at, cancel_requested, tool_calls, files"
)


@dataclass(frozen=True)
class TaskRecord:
    seq: int
    id: str
    spec: TaskCreate  # without file contents: those are read only to launch
    phase: Phase
    reason: str | None
    exit_code: int | None
    created_at: float
    launched_at: float | None
    started_at: float | None
    finished_at: float | None
    cleaned_at: float | None
    cancel_requested: bool
    tool_calls: ToolCalls
    files: tuple[FileSummary, ...] = ()


def record_of(row: Sequence[Any]) -> TaskRecord:
    return TaskRecord(
        seq=row[0],
        id=row[1],
        spec=stored_spec(row[2]),
        phase=Phase(row[3]),
        reason=row[4],
        exit_code=row[5],
        created_at=row[6],
        launched_at=row[7],
        started_at=row[8],
        finished_at=row[9],
        cleaned_at=row[10],
        cancel_requested=bool(row[11]),
        tool_calls=ToolCalls.model_validate_json(row[12]) if row[12] else ToolCalls(),
        files=tuple(FileSummary.model_construct(**f) for f in json.loads(row[13] or "[]")),
    )


def stored_spec(raw: str) -> TaskCreate:
    try:
        return TaskCreate.model_validate_json(raw)
    except ValidationError:
        return lenient(TaskCreate, json.loads(raw))


def lenient(model: type[M], data: Any) -> M:  # noqa: ANN401 - stored JSON of any shape
    """`model` built from `data` without its checks, nested models too."""
    values = {
        name: _value(field.annotation, data[name])
        for name, field in model.model_fields.items()
        if isinstance(data, dict) and name in data
    }
    return model.model_construct(**values)


def _value(annotation: Any, value: Any) -> Any:  # noqa: ANN401 - follows the annotation
    origin = typing.get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return lenient(annotation, value) if isinstance(value, dict) else value
    if origin in (typing.Union, types.UnionType):
        models = [a for a in typing.get_args(annotation) if isinstance(a, type)]
        models = [a for a in models if issubclass(a, BaseModel)]
        return _value(models[0], value) if models and isinstance(value, dict) else value
    if origin is list and isinstance(value, list):
        (item,) = typing.get_args(annotation) or (Any,)
        return [_value(item, v) for v in value]
    if origin is dict and isinstance(value, dict):
        _, item = typing.get_args(annotation) or (Any, Any)
        return {k: _value(item, v) for k, v in value.items()}
    return value
