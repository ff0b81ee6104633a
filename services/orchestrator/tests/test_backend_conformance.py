"""One suite, both engines: the task API answers the same way whether tasks run on Docker
or on Kubernetes, so the two backends cannot drift apart in what a client sees.

    docker      the app with its real SQLite store and real Docker backend, pointed at an
                engine address nothing answers (conftest's `NO_ENGINE`: tasks wait pending)
    kubernetes  the controller's app, its controller running, against kmock's Kubernetes
                emulator over real HTTP (the seam described in k8s_emulator.py)

The scenarios are the API's contract: the shape of a submitted task, reading and listing
it, 401, 404, a refused field named the same way, cancelling a task whose agent never
ran, and its (empty) log. What an agent's run turns into (succeeded, failed with its exit
code, timed out, a running task cancelled) is proven per engine where it can run: on the
real engine by tests/e2e/test_orchestrator_tasks.py, on the emulator by
test_kubernetes_controller.py, with the same reasons asserted ("cancelled by request",
"exited with code N", "timeout_seconds").
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import AUTH, eventually, make_config, serve_in_process
from k8s_emulator import cluster
from test_kubernetes_tasks_api import api as kubernetes_api

pytestmark = pytest.mark.anyio
WAIT = 10.0
BODY = {
    "prompt": "Make the tests pass",
    "files": [{"path": "notes.md", "content": "hello"}],
    "tools": {"servers": ["time"]},
    "labels": {"team": "web"},
}


@pytest.fixture(params=["docker", "kubernetes"])
async def tasks(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    if request.param == "docker":
        async with serve_in_process(make_config(tmp_path / "state")) as client:
            client.headers.update(AUTH)
            yield client
    else:
        async with cluster() as k8s, kubernetes_api(k8s) as client:
            yield client


async def ended(http: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        body: dict[str, Any] = (await http.get(f"/api/v1/tasks/{task_id}")).json()
        return body if body["phase"] in ("succeeded", "failed", "cancelled", "timed_out") else None

    return await eventually(check, timeout=WAIT, what=f"task {task_id} to end")


async def test_a_submitted_task_is_answered_read_and_listed_alike(
    tasks: httpx.AsyncClient,
) -> None:
    created = await tasks.post("/api/v1/tasks", json=BODY)
    assert created.status_code == 201, created.text
    task = created.json()
    assert created.headers["location"] == f"/api/v1/tasks/{task['id']}"
    assert task["phase"] in ("pending", "starting")
    assert task["spec"]["prompt"] == BODY["prompt"]
    assert task["spec"]["files"] == [{"path": "notes.md", "bytes": 5, "executable": False}]
    assert task["spec"]["labels"] == {"team": "web"}
    assert sorted(task["links"]) == ["cancel", "logs", "self", "toolman_logs"]
    read = (await tasks.get(task["links"]["self"])).json()
    assert read["id"] == task["id"]
    assert read["spec"] == task["spec"]
    listed = (await tasks.get("/api/v1/tasks")).json()
    assert task["id"] in [item["id"] for item in listed["items"]]


async def test_no_token_and_an_unknown_task_are_refused_alike(tasks: httpx.AsyncClient) -> None:
    anonymous = await tasks.get("/api/v1/tasks", headers={"Authorization": ""})
    assert anonymous.status_code == 401
    missing = await tasks.get("/api/v1/tasks/task-nope")
    assert missing.status_code == 404
    assert missing.json()["detail"] == "no task 'task-nope'"


@pytest.mark.parametrize(
    ("change", "location"),
    [
        ({"tools": {"servers": ["nope"]}}, ["body", "tools", "servers", 0]),
        ({"timeout_seconds": 0}, ["body", "timeout_seconds"]),
        ({"env": {"ANTHROPIC_API_KEY": "x"}}, ["body", "env", "ANTHROPIC_API_KEY"]),
    ],
)
async def test_a_bad_field_is_named_alike(
    tasks: httpx.AsyncClient, change: dict[str, Any], location: list[str | int]
) -> None:
    answer = await tasks.post("/api/v1/tasks", json={"prompt": "hi", **change})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == location


async def test_a_task_cancelled_before_its_agent_ran_ends_alike(tasks: httpx.AsyncClient) -> None:
    task = (await tasks.post("/api/v1/tasks", json={"prompt": "hi"})).json()
    cancel = await tasks.post(task["links"]["cancel"])
    assert cancel.status_code == 202
    done = await ended(tasks, task["id"])
    assert done["phase"] == "cancelled"
    # before its launch began, or during it: the engines differ only in how fast they launch
    assert done["reason"] in ("cancelled before it started", "cancelled by request")
    again = await tasks.post(task["links"]["cancel"])
    assert again.status_code == 409
    assert again.json()["detail"] == f"task {task['id']} has already ended: cancelled"
    log = await tasks.get(task["links"]["logs"])
    assert log.status_code == 200
    assert log.text == ""
