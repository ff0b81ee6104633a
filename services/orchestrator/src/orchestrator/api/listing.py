"""`GET /api/v1/tasks`'s query, read once for both stores (SQLite on Docker, TaskRuns on
Kubernetes) so the two answer a filter, a page and a bad cursor alike: phases and labels
to match, `limit` a page, `order` oldest (submission order) or newest first, and the
opaque `cursor` of the next page. A cursor is a position in a sequence that only grows
(the SQLite row's `seq`; a TaskRun's submission time in microseconds): a page starts
after it, so tasks submitted meanwhile never shift or repeat the pages that follow.

A repeated Idempotency-Key with another body is refused alike too (`idempotency_conflict`).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import HTTPException, Query

from orchestrator.api.views import invalid
from orchestrator.tasks.model import LABEL_KEY, LABEL_VALUE, MAX_LABELS, Phase

MAX_CURSOR_DIGITS = 18  # within SQLite's integers


@dataclass(frozen=True)
class ListQuery:
    phases: list[Phase]
    labels: dict[str, str]
    limit: int
    after: int  # 0: from the start
    newest: bool

    def matches(self, phase: Phase, labels: dict[str, str]) -> bool:
        """Whether a task in `phase` with `labels` is one this query lists."""
        wanted = not self.phases or phase in self.phases
        return wanted and all(labels.get(k) == v for k, v in self.labels.items())

    def cursor(self, seq: int) -> str:
        """The cursor of the page after the task at `seq`."""
        prefix = "newest" if self.newest else "seq"
        return base64.urlsafe_b64encode(f"{prefix}:{seq}".encode()).decode().rstrip("=")


def list_query(
    phase: Annotated[list[Phase] | None, Query()] = None,
    label: Annotated[
        list[str] | None, Query(description="`key=value`; several must all match")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    order: Annotated[
        Literal["oldest", "newest"], Query(description="`newest`: the latest tasks first")
    ] = "oldest",
) -> ListQuery:
    """The list's query parameters, checked (422 naming the parameter)."""
    if label and len(label) > MAX_LABELS:
        raise invalid(["query", "label"], f"at most {MAX_LABELS} labels, as a task has at most")
    labels: dict[str, str] = {}
    for index, item in enumerate(label or []):
        key, sep, value = item.partition("=")
        if not sep or not re.fullmatch(LABEL_KEY, key) or not re.fullmatch(LABEL_VALUE, value):
            raise invalid(["query", "label", index], f"{item!r} is not key=value")
        labels[key] = value
    newest = order == "newest"
    after = _decode_cursor(cursor, newest) if cursor else 0
    phases = sorted(set(phase or ()))  # each once: a repeated phase adds nothing
    return ListQuery(phases, labels, limit, after, newest)


def _decode_cursor(cursor: str, newest: bool) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, number = text.partition(":")
        if prefix in ("seq", "newest") and (prefix == "newest") != newest:
            raise invalid(
                ["query", "cursor"],
                f"this cursor lists {'newest' if prefix == 'newest' else 'oldest'} first; "
                "give the same order as the page it came from",
            )
        digits = number.isascii() and number.isdigit() and 0 < len(number) <= MAX_CURSOR_DIGITS
        if prefix in ("seq", "newest") and digits:
            return int(number)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise invalid(["query", "cursor"], "not a cursor this API gave out; start without one")


def idempotency_conflict(key: str, task_id: str) -> HTTPException:
    return HTTPException(
        409,
        detail=f"Idempotency-Key {key!r} was used for task {task_id} "
        "with a different body; use a new key for a new task",
    )
