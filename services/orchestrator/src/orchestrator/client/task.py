"""A task as the client reads it from the API: the few fields it shows, typed, and the
whole JSON object kept for `--json`.

The client parses answers itself instead of with the server's pydantic models: a newer
server may add fields (the request models forbid unknown keys), and `--help` stays fast.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from orchestrator.client.errors import malformed

# The API's phases (orchestrator.tasks.model.Phase; a test keeps the two equal).
PHASES = ("pending", "starting", "running", "succeeded", "failed", "cancelled", "timed_out")
FINISHED = frozenset({"succeeded", "failed", "cancelled", "timed_out"})
# What `task run --follow` exits with once the task has ended.
OUTCOME_EXIT_CODES = {"succeeded": 0, "failed": 1, "timed_out": 124, "cancelled": 130}


@dataclass(frozen=True)
class ToolCalls:
    allowed: int = 0
    refused: int = 0
    failed: int = 0
    by_tool: Mapping[str, Mapping[str, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class Task:
    id: str
    phase: str
    reason: str | None
    exit_code: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    agent: str
    tool_calls: ToolCalls
    raw: Mapping[str, Any]

    @property
    def finished(self) -> bool:
        return self.phase in FINISHED

    @property
    def spec(self) -> Mapping[str, Any]:
        spec = self.raw.get("spec")
        return spec if isinstance(spec, dict) else {}

    @classmethod
    def parse(cls, raw: object) -> Task:
        """A task object of the API; `ApiError` when it is not one."""
        if not isinstance(raw, dict):
            raise malformed("", "a task is not a JSON object")
        try:
            calls = raw.get("tool_calls") or {}
            agent = (raw.get("spec") or {}).get("agent") or {}
            return cls(
                id=str(raw["id"]),
                phase=str(raw["phase"]),
                reason=_optional_str(raw.get("reason")),
                exit_code=_optional_int(raw.get("exit_code")),
                created_at=_time(raw["created_at"]),
                started_at=_optional_time(raw.get("started_at")),
                finished_at=_optional_time(raw.get("finished_at")),
                agent=str(agent.get("name", "")),
                tool_calls=ToolCalls(
                    allowed=int(calls.get("allowed", 0)),
                    refused=int(calls.get("refused", 0)),
                    failed=int(calls.get("failed", 0)),
                    by_tool=dict(calls.get("by_tool") or {}),
                ),
                raw=raw,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise malformed("", f"a task lacks or mangles {exc}") from exc


@dataclass(frozen=True)
class TaskPage:
    items: tuple[Task, ...]
    next_cursor: str | None

    @classmethod
    def parse(cls, raw: object) -> TaskPage:
        if not isinstance(raw, dict) or not isinstance(raw.get("items"), list):
            raise malformed("", "a page of tasks has no `items` list")
        cursor = raw.get("next_cursor")
        return cls(tuple(Task.parse(item) for item in raw["items"]), _optional_str(cursor))


def _time(value: object) -> datetime:
    if not isinstance(value, str):
        raise TypeError(f"a time is {type(value).__name__}, not text")
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _optional_time(value: object) -> datetime | None:
    return None if value is None else _time(value)


def _optional_int(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{value!r} is not a whole number")
    return value


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)
