"""The task store on a real SQLite file: its schema version, compare-and-set phase
changes, what survives closing and reopening, cancel requests, filters and counts."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.tasks.model import Phase, TaskCreate, ToolCalls
from orchestrator.tasks.schema import SCHEMA_VERSION
from orchestrator.tasks.store import IdempotencyConflict, StoreError, TaskStore


class Clock:
    """The store's clock, moved by the test: timestamps are then exact."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state" / "tasks.db"


@pytest.fixture
def store(db: Path, clock: Clock) -> Iterator[TaskStore]:
    opened = TaskStore(db, clock)
    yield opened
    opened.close()


def spec(prompt: str = "p", **labels: str) -> TaskCreate:
    return TaskCreate(prompt=prompt, labels=labels)


def test_a_new_database_has_the_current_schema_version(store: TaskStore, db: Path) -> None:
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_newer_schema_is_refused_with_what_to_do(db: Path, clock: Clock) -> None:
    TaskStore(db, clock).close()
    with sqlite3.connect(db) as raw:
        raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError) as refused:
        TaskStore(db, clock)
    message = str(refused.value)
    assert str(db) in message
    assert f"schema version {SCHEMA_VERSION + 1}, newer than this orchestrator's" in message
    assert "run the newer orchestrator" in message
    with pytest.raises(StoreError, match="newer than"):  # the lock was let go: same answer
        TaskStore(db, clock)


def test_a_phase_change_is_compare_and_set(store: TaskStore, clock: Clock) -> None:
    task, created = store.create(spec())
    assert created
    clock.now = 1_005.0
    claimed = store.transition(task.id, [Phase.PENDING], Phase.STARTING)
    assert claimed is not None
    assert claimed.phase is Phase.STARTING
    assert claimed.launched_at == 1_005.0
    # A second claim of the same pending task (another controller loop) gets nothing.
    assert store.transition(task.id, [Phase.PENDING], Phase.STARTING) is None
    clock.now = 1_010.0
    running = store.transition(task.id, [Phase.STARTING], Phase.RUNNING)
    assert running is not None
    assert running.started_at == 1_010.0
    done = store.transition(task.id, [Phase.RUNNING], Phase.SUCCEEDED, exit_code=0)
    assert done is not None
    assert (done.finished_at, done.exit_code) == (1_010.0, 0)
    assert store.transition(task.id, [Phase.RUNNING], Phase.FAILED) is None
    assert store.get(task.id) == done
    with pytest.raises(ValueError, match="not a task column: spec"):
        store.update(task.id, spec="{}")


def test_what_was_acknowledged_is_on_disk_and_survives_reopening(db: Path, clock: Clock) -> None:
    first = TaskStore(db, clock)
    made = [first.create(spec(f"task {n}", team="web"), f"key-{n}")[0] for n in range(3)]
    first.update(made[0].id, tool_calls=ToolCalls(allowed=2, by_tool={"t": {"allowed": 2}}))
    # Committed when create returned: another connection sees every row now.
    with sqlite3.connect(db) as raw:
        assert raw.execute("SELECT COUNT(*) FROM tasks").fetchone() == (3,)
    first.close()

    again = TaskStore(db, clock)
    try:
        assert [r.id for r in again.page()] == [t.id for t in made]
        reread = again.get(made[0].id)
        assert reread is not None
        assert reread.spec == made[0].spec
        assert reread.tool_calls.allowed == 2
        # The idempotency keys survive too: a retry after a restart is the same task.
        retried, created = again.create(spec("task 1", team="web"), "key-1")
        assert (retried.id, created) == (made[1].id, False)
        with pytest.raises(IdempotencyConflict):
            again.create(spec("other"), "key-1")
    finally:
        again.close()


def test_request_cancel(store: TaskStore) -> None:
    pending = store.create(spec())[0]
    cancelled = store.request_cancel(pending.id)
    assert cancelled is not None
    assert cancelled.phase is Phase.CANCELLED
    assert cancelled.finished_at is not None
    assert cancelled.reason == "cancelled before it started"

    active = store.create(spec())[0]
    store.transition(active.id, [Phase.PENDING], Phase.STARTING)
    marked = store.request_cancel(active.id)
    assert marked is not None
    assert (marked.phase, marked.cancel_requested) == (Phase.STARTING, True)

    ended = store.create(spec())[0]
    store.transition(ended.id, [Phase.PENDING], Phase.FAILED)
    untouched = store.request_cancel(ended.id)
    assert untouched is not None
    assert (untouched.phase, untouched.cancel_requested) == (Phase.FAILED, False)
    assert store.request_cancel("no-such-task") is None


def test_pages_filter_by_phase_and_labels(store: TaskStore) -> None:
    a = store.create(spec(team="web", tier="1"))[0]
    b = store.create(spec(team="web", tier="2"))[0]
    c = store.create(spec(team="ops", tier="1"))[0]
    store.transition(b.id, [Phase.PENDING], Phase.STARTING)

    def ids(**kwargs: Any) -> list[str]:
        return [r.id for r in store.page(**kwargs)]

    assert ids(labels={"team": "web"}) == [a.id, b.id]
    assert ids(labels={"team": "web", "tier": "1"}) == [a.id]
    assert ids(labels={"team": "nobody"}) == []
    assert ids(phases=[Phase.PENDING]) == [a.id, c.id]
    assert ids(phases=[Phase.STARTING], labels={"tier": "2"}) == [b.id]
    assert ids(after_seq=a.seq) == [b.id, c.id]
    assert ids(limit=2) == [a.id, b.id]
    assert [r.id for r in store.in_phases(Phase.STARTING, Phase.RUNNING)] == [b.id]


def test_counts_name_every_phase(store: TaskStore) -> None:
    assert store.counts() == dict.fromkeys(Phase, 0)
    for _ in range(3):
        store.create(spec())
    first = store.page(limit=1)[0]
    store.request_cancel(first.id)
    counts = store.counts()
    assert counts[Phase.PENDING] == 2
    assert counts[Phase.CANCELLED] == 1
    assert sum(counts.values()) == 3
