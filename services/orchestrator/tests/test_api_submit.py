"""Submitting a task and reading it back: 201, `Location`, the body, and a task that
waits as `pending` while the engine does not answer."""

from __future__ import annotations

import httpx
import pytest
from conftest import AUTH, eventually

pytestmark = pytest.mark.anyio

FULL = {
    "prompt": "Fix the failing test",
    "files": [{"path": "notes/plan.md", "content": "step one\n"}],
    "agent": {"name": "coder", "model": "claude-sonnet"},
    "tools": {"servers": ["time"], "blocked_tools": ["time_convert_time"]},
    "env": {"LOG_LEVEL": "debug"},
    "secrets": {"GITHUB_TOKEN": {"env": "GIT_TOKEN"}},
    "timeout_seconds": 600,
    "resources": {"cpu": 1.5, "memory": "2Gi"},
    "labels": {"team": "platform"},
}


async def test_a_task_is_created_with_its_location(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/v1/tasks", json=FULL, headers=AUTH)
    assert response.status_code == 201
    task = response.json()
    assert response.headers["location"] == f"/api/v1/tasks/{task['id']}"
    assert task["phase"] == "pending"
    assert task["started_at"] is None
    assert task["finished_at"] is None
    spec = task["spec"]
    assert spec["prompt"] == FULL["prompt"]
    assert spec["files"] == [{"path": "notes/plan.md", "bytes": 9, "executable": False}]
    assert spec["agent"] == FULL["agent"]
    assert spec["tools"]["servers"] == ["time"]
    assert spec["secrets"] == {"GITHUB_TOKEN": {"env": "GIT_TOKEN", "file": None}}
    assert "s3cret" not in response.text  # the secret's value is never shown
    assert spec["labels"] == {"team": "platform"}
    assert task["links"]["self"] == response.headers["location"]

    again = await api.get(response.headers["location"], headers=AUTH)
    assert again.status_code == 200
    assert again.json() == task


async def test_an_unknown_task_is_404(api: httpx.AsyncClient) -> None:
    for path in ("/api/v1/tasks/no-such-task", "/api/v1/tasks/no-such-task/logs"):
        response = await api.get(path, headers=AUTH)
        assert response.status_code == 404
        assert "no-such-task" in response.json()["detail"]


async def test_tasks_wait_as_pending_while_the_engine_does_not_answer(
    api: httpx.AsyncClient,
) -> None:
    task = (await api.post("/api/v1/tasks", json={"prompt": "p"}, headers=AUTH)).json()
    ready = await api.get("/ready")
    assert ready.status_code == 503
    assert ready.json()["ready"] is False
    # The controller looked at the engine (the submission woke it) and claimed nothing.

    async def engine_checked() -> bool:
        problem = (await api.get("/ready")).json()["problem"] or ""
        return "does not answer" in problem

    await eventually(engine_checked, timeout=10, what="the controller to try the engine")
    current = (await api.get(f"/api/v1/tasks/{task['id']}", headers=AUTH)).json()
    assert current["phase"] == "pending"
