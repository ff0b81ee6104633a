"""`GET /api/v1/tasks/{id}/logs` while the engine does not answer: a task that never
started has no output (and needs no engine to say so); a task whose containers the
engine holds is a 503, not a response cut off after its status line."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from conftest import AUTH, make_config, serve_in_process, submit

from orchestrator.tasks.model import Phase, TaskCreate
from orchestrator.tasks.store import TaskStore

pytestmark = pytest.mark.anyio


async def test_a_task_that_never_started_has_an_empty_log(api: httpx.AsyncClient) -> None:
    task = await submit(api)
    for stream in ("agent", "toolman"):
        response = await api.get(f"/api/v1/tasks/{task['id']}/logs?stream={stream}", headers=AUTH)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        assert response.content == b""
    await api.post(f"/api/v1/tasks/{task['id']}/cancel", headers=AUTH)
    followed = await api.get(f"/api/v1/tasks/{task['id']}/logs?follow=true", headers=AUTH)
    assert followed.status_code == 200  # it ended: following ends at once
    assert followed.content == b""


async def test_the_log_of_a_launched_task_is_503_while_the_engine_is_away(
    tmp_path: Path,
) -> None:
    """A task the controller claimed before the engine went away (its phase set in the
    store, as a previous run of the orchestrator would have left it)."""
    state = tmp_path / "state"
    store = TaskStore(state / "tasks.db", lambda: 1000.0)
    record, _ = store.create(TaskCreate(prompt="p"))
    assert store.transition(record.id, [Phase.PENDING], Phase.STARTING) is not None
    store.close()
    async with serve_in_process(make_config(state)) as api:
        response = await api.get(f"/api/v1/tasks/{record.id}/logs", headers=AUTH)
        assert response.status_code == 503
        assert "does not answer" in response.json()["detail"]
        task = (await api.get(f"/api/v1/tasks/{record.id}", headers=AUTH)).json()
        assert task["phase"] == "starting"  # it waits for the engine; nothing is lost
