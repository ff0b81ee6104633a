"""What the store keeps of a task's files and of specs an earlier version accepted.

File contents live apart from the spec (read only to launch, dropped when the task
ends), so reading a task never decodes them; and a stored spec the current model would
refuse is still read, so one old row neither fails a listing nor stalls the queue.
Real SQLite files throughout; the version-1 database is written with version 1's own
schema, as an orchestrator of that version left it.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from pathlib import Path

import pytest
from conftest import AUTH, make_config, serve_in_process

from orchestrator.tasks.model import Phase, TaskCreate, WorkspaceFile, file_bytes
from orchestrator.tasks.schema import V1
from orchestrator.tasks.store import TaskStore

BINARY = bytes(range(256)) * 10
pytestmark = pytest.mark.anyio


def files_spec() -> TaskCreate:
    return TaskCreate(
        prompt="p",
        files=[
            WorkspaceFile(path="a.txt", content="hello\n"),
            WorkspaceFile(
                path="bin/tool",
                content=base64.b64encode(BINARY).decode(),
                encoding="base64",
                executable=True,
            ),
        ],
    )


def contents(spec: TaskCreate) -> dict[str, tuple[bytes, bool]]:
    return {f.path: (file_bytes(f), f.executable) for f in spec.files}


def test_files_are_summarised_on_read_and_whole_for_the_launch(tmp_path: Path) -> None:
    store = TaskStore(tmp_path / "tasks.db", lambda: 1.0)
    try:
        record, _ = store.create(files_spec())
        again = store.get(record.id)
        assert again is not None
        assert again.spec.files == []  # a read carries no contents
        assert [(f.path, f.bytes, f.executable) for f in again.files] == [
            ("a.txt", 6, False),
            ("bin/tool", len(BINARY), True),
        ]
        assert contents(store.launch_spec(again)) == {
            "a.txt": (b"hello\n", False),
            "bin/tool": (BINARY, True),
        }
        store.transition(record.id, (Phase.PENDING,), Phase.CANCELLED)
        ended = store.get(record.id)
        assert ended is not None
        assert store.launch_spec(ended).files == []  # contents dropped once it ended
        assert len(ended.files) == 2  # the summary stays
    finally:
        store.close()


def test_the_same_idempotency_key_and_files_give_the_same_task(tmp_path: Path) -> None:
    store = TaskStore(tmp_path / "tasks.db", lambda: 1.0)
    try:
        first, created = store.create(files_spec(), "key-1")
        second, created_again = store.create(files_spec(), "key-1")
        assert (created, created_again) == (True, False)
        assert second.id == first.id
    finally:
        store.close()


def test_a_version_1_database_is_migrated_files_and_all(tmp_path: Path) -> None:
    path = tmp_path / "tasks.db"
    spec = files_spec()
    with sqlite3.connect(path) as raw:
        raw.executescript(V1 + "PRAGMA user_version=1;")
        raw.execute(
            "INSERT INTO tasks (id, spec, phase, created_at) VALUES (?, ?, 'pending', 1.0)",
            ("old-task", spec.model_dump_json()),
        )
    store = TaskStore(path, lambda: 2.0)
    try:
        record = store.get("old-task")
        assert record is not None
        assert [f.path for f in record.files] == ["a.txt", "bin/tool"]
        assert contents(store.launch_spec(record)) == contents(spec)
    finally:
        store.close()


def test_a_spec_an_earlier_version_accepted_is_still_read(tmp_path: Path) -> None:
    """`servers: ["time", "time"]` was accepted before the model refused repeats."""
    path = tmp_path / "tasks.db"
    store = TaskStore(path, lambda: 1.0)
    store.close()
    old = {"prompt": "p", "tools": {"servers": ["time", "time"]}, "agent": {"name": "x"}}
    with sqlite3.connect(path) as raw:
        raw.execute(
            "INSERT INTO tasks (id, spec, phase, created_at) VALUES (?, ?, 'pending', 1.0)",
            ("loose", json.dumps(old)),
        )
        raw.execute(
            "INSERT INTO tasks (id, spec, phase, created_at) VALUES (?, ?, 'pending', 1.0)",
            ("strict", TaskCreate(prompt="q").model_dump_json()),
        )
    store = TaskStore(path, lambda: 1.0)
    try:
        loose = store.get("loose")
        assert loose is not None
        assert loose.spec.tools.servers == ["time", "time"]
        assert loose.spec.agent.name == "x"
        pending = store.page(phases=[Phase.PENDING])
        assert [r.id for r in pending] == ["loose", "strict"]  # the queue goes on
    finally:
        store.close()


async def test_the_api_shows_and_lists_a_task_an_earlier_version_accepted(tmp_path: Path) -> None:
    """Through the app: the loose row answers 200 in GET and in the listing."""
    state = tmp_path / "state"
    TaskStore(state / "tasks.db", lambda: 1.0).close()
    loose = {"prompt": "p", "tools": {"servers": ["time", "time"]}}
    with sqlite3.connect(state / "tasks.db") as raw:
        raw.execute(
            "INSERT INTO tasks (id, spec, phase, created_at) VALUES (?, ?, 'cancelled', 1.0)",
            ("loose", json.dumps(loose)),
        )
    async with serve_in_process(make_config(state)) as api:
        shown = await api.get("/api/v1/tasks/loose", headers=AUTH)
        assert shown.status_code == 200, shown.text
        assert shown.json()["spec"]["tools"]["servers"] == ["time", "time"]
        listed = await api.get("/api/v1/tasks", headers=AUTH)
        assert listed.status_code == 200, listed.text
        assert [task["id"] for task in listed.json()["items"]] == ["loose"]
