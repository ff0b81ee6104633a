"""One suite, both engines, at the level of the task API: it answers the same way whether
tasks run on Docker or on Kubernetes, so the two backends cannot drift apart in what a
client sees.

    docker      the app with its real SQLite store and real Docker backend, pointed at an
                engine address nothing answers (conftest's `NO_ENGINE`: tasks wait
                pending). The engine is left out on purpose: what is checked here is the
                API and its store, and without an engine no agent can end a task under
                the test (the run scenarios on the real engine are below)
    kubernetes  the controller's app, its controller running, against kmock's Kubernetes
                emulator over real HTTP (the seam described in k8s_emulator.py)

The scenarios are the API's contract: the shape of a submitted task, reading and listing
it, 401, 404, a refused field named the same way, cancelling a task whose agent never
ran, and its (empty) log; the list's filters (phase, label), its pages and cursors, and
`Idempotency-Key` (the same key and body: the same task; another body: 409). What an
agent's run turns into (succeeded, failed with its exit code, timed out, a running task
cancelled, its log) is the same suite's other half, test_backend_conformance_runs.py,
with the Docker side on the real engine.
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
        ({"env": {"NODE_OPTIONS": "--require /x.js"}}, ["body", "env", "NODE_OPTIONS"]),
        # a secret task_secrets does not allow: on Kubernetes, any Secret of the namespace
        (
            {"secrets": {"X": {"file": "/run/secrets/orchestrator-api/token"}}},
            ["body", "secrets", "X"],
        ),
        # a repository's host written as a denied address (tasks.repository_networks_denied)
        ({"repository": {"url": "https://127.0.0.1/team/app"}}, ["body", "repository", "url"]),
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


# -- listing and Idempotency-Key: the SQLite store and the TaskRuns answer alike ------------


async def created(tasks: httpx.AsyncClient, **fields: Any) -> str:
    answer = await tasks.post("/api/v1/tasks", json={"prompt": "hi", **fields})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def listed(tasks: httpx.AsyncClient, **query: Any) -> dict[str, Any]:
    answer = await tasks.get("/api/v1/tasks", params=query)
    assert answer.status_code == 200, answer.text
    page: dict[str, Any] = answer.json()
    return page


def ids(page: dict[str, Any]) -> list[str]:
    return [item["id"] for item in page["items"]]


async def test_the_list_filters_by_phase_and_label_alike(tasks: httpx.AsyncClient) -> None:
    web = await created(tasks, labels={"team": "web", "tier": "1"})
    api = await created(tasks, labels={"team": "api"})
    web2 = await created(tasks, labels={"team": "web"})
    assert (await tasks.post(f"/api/v1/tasks/{api}/cancel")).status_code == 202
    await ended(tasks, api)
    assert ids(await listed(tasks, label="team=web")) == [web, web2]
    assert ids(await listed(tasks, label=["team=web", "tier=1"])) == [web]
    assert ids(await listed(tasks, phase="cancelled")) == [api]
    assert ids(await listed(tasks, phase="cancelled", label="team=web")) == []
    assert ids(await listed(tasks, phase=["succeeded", "cancelled"])) == [api]
    bad = await tasks.get("/api/v1/tasks", params={"label": "team"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["query", "label", 0]
    misspelt = await tasks.get("/api/v1/tasks", params={"phse": "cancelled"})
    assert misspelt.status_code == 422
    assert misspelt.json()["detail"][0]["loc"] == ["query", "phse"]


async def test_pages_follow_submission_order_with_cursors_alike(
    tasks: httpx.AsyncClient,
) -> None:
    submitted = [await created(tasks, labels={"n": str(n)}) for n in range(5)]
    first = await listed(tasks, limit=2)
    second = await listed(tasks, limit=2, cursor=first["next_cursor"])
    third = await listed(tasks, limit=2, cursor=second["next_cursor"])
    assert [ids(first), ids(second), ids(third)] == [submitted[:2], submitted[2:4], submitted[4:]]
    assert third["next_cursor"] is None
    newest = await listed(tasks, limit=3, order="newest")
    rest = await listed(tasks, limit=3, order="newest", cursor=newest["next_cursor"])
    assert ids(newest) + ids(rest) == submitted[::-1]
    other_order = await tasks.get(
        "/api/v1/tasks", params={"order": "newest", "cursor": first["next_cursor"]}
    )
    assert other_order.status_code == 422
    assert other_order.json()["detail"][0]["loc"] == ["query", "cursor"]
    made_up = await tasks.get("/api/v1/tasks", params={"cursor": "bm90LWEtY3Vyc29y"})
    assert made_up.status_code == 422
    assert "not a cursor this API gave out" in made_up.json()["detail"][0]["msg"]


async def test_an_idempotency_key_is_one_task_and_another_body_409_alike(
    tasks: httpx.AsyncClient,
) -> None:
    body = {"prompt": "p", "labels": {"a": "1", "b": "2"}, "timeout_seconds": 60}
    key = {"Idempotency-Key": "retry-7"}
    first = await tasks.post("/api/v1/tasks", json=body, headers=key)
    assert first.status_code == 201, first.text
    reordered = {"timeout_seconds": 60, "labels": {"b": "2", "a": "1"}, "prompt": "p"}
    retried = await tasks.post("/api/v1/tasks", json=reordered, headers=key)
    assert retried.status_code == 201
    assert retried.json()["id"] == first.json()["id"]
    assert retried.headers["location"] == first.headers["location"]
    other = await tasks.post("/api/v1/tasks", json={**body, "prompt": "else"}, headers=key)
    assert other.status_code == 409
    assert other.json()["detail"] == (
        f"Idempotency-Key 'retry-7' was used for task {first.json()['id']} "
        "with a different body; use a new key for a new task"
    )
    fresh = await tasks.post("/api/v1/tasks", json=body, headers={"Idempotency-Key": "k-8"})
    assert fresh.json()["id"] != first.json()["id"]
    assert sorted(ids(await listed(tasks))) == sorted([first.json()["id"], fresh.json()["id"]])
