"""`/api/v1/tasks` on Kubernetes: the same endpoints and answers as on Docker, TaskRuns as
the store, served with the controller in one app (`orchestrator controller`'s), in
process, against kmock's emulator over real HTTP (the seam in k8s_emulator.py); the test
plays the kubelet and the Job controller."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from conftest import AUTH, TOKEN, TOOLMAN_BASE, eventually
from k8s_emulator import NAMESPACE, Cluster, cluster, now
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.batch_v1 import Job
from test_kubernetes_controller import hold_lease
from test_kubernetes_job import MODEL_KEY

from orchestrator.backends.kubernetes.api import TaskRun
from orchestrator.backends.kubernetes.options import KubernetesOptions
from orchestrator.backends.kubernetes.serve import ControllerSettings, create_controller_app
from orchestrator.config import OrchestratorConfig, parse
from orchestrator.settings import Settings

pytestmark = pytest.mark.anyio
CONFIG = parse({"toolman": {"config": TOOLMAN_BASE}, "agent": {"secrets": MODEL_KEY}})
WAIT = 10.0


def api(
    k8s: Cluster, config: OrchestratorConfig = CONFIG
) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    return api_at(k8s.url, config)


@asynccontextmanager
async def api_at(
    server: str, config: OrchestratorConfig = CONFIG
) -> AsyncIterator[httpx.AsyncClient]:
    """`orchestrator controller`'s app, in process, on the API server at `server`."""
    settings = ControllerSettings(
        Settings(config=config), NAMESPACE, "api-test", server, KubernetesOptions()
    )
    app = create_controller_app(settings, {"ORCHESTRATOR_TOKEN": TOKEN})
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://orchestrator", headers=AUTH
        ) as client:
            yield client


async def task_in(http: httpx.AsyncClient, task_id: str, phase: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        body: dict[str, Any] = (await http.get(f"/api/v1/tasks/{task_id}")).json()
        return body if body["phase"] == phase else None

    return await eventually(check, timeout=WAIT, what=f"task {task_id} to be {phase}")


async def test_a_task_submitted_to_the_api_runs_as_a_taskrun_to_its_end() -> None:
    async with cluster() as k8s, api(k8s) as http:
        body = {
            "prompt": "Make the tests pass",
            "files": [{"path": "notes.md", "content": "hello"}],
            "tools": {"servers": ["time"]},
        }
        created = await http.post("/api/v1/tasks", json=body)
        assert created.status_code == 201, created.text
        task = created.json()
        assert created.headers["location"] == f"/api/v1/tasks/{task['id']}"
        assert task["phase"] == "pending"
        assert task["spec"]["files"] == [{"path": "notes.md", "bytes": 5, "executable": False}]
        await task_in(http, task["id"], "starting")
        assert await k8s.exists(Job, task["id"])
        await k8s.run_pod(task["id"], {"running": {"startedAt": now()}})
        running = await task_in(http, task["id"], "running")
        assert running["started_at"] is not None
        await k8s.job_condition(task["id"], "Complete")
        done = await task_in(http, task["id"], "succeeded")
        assert done["exit_code"] == 0
        assert done["finished_at"] is not None
        listed = (await http.get("/api/v1/tasks")).json()
        assert [item["id"] for item in listed["items"]] == [task["id"]]
        ended = await http.post(f"/api/v1/tasks/{task['id']}/cancel")
        assert ended.status_code == 409


async def test_the_logs_come_from_the_pod_and_follow_waits_for_the_agent() -> None:
    async with cluster() as k8s, api(k8s) as http:
        task = (await http.post("/api/v1/tasks", json={"prompt": "hi"})).json()
        logs = f"/api/v1/tasks/{task['id']}/logs"
        assert (await http.get(logs)).text == ""  # no pod yet: no output
        await task_in(http, task["id"], "starting")
        k8s.serve_log(task["id"], "working\ndone\n")
        # httpx's ASGI transport hands the body over whole: the follow runs beside the test
        following = asyncio.create_task(http.get(logs, params={"follow": "true"}))
        await k8s.run_pod(task["id"], {"running": {"startedAt": now()}})
        answer = await asyncio.wait_for(following, WAIT)
        assert answer.status_code == 200
        assert answer.text == "working\ndone\n"
        assert (await http.get(logs, params={"stream": "toolman"})).status_code == 200


async def test_cancelling_a_running_task_through_the_api_deletes_its_job() -> None:
    async with cluster() as k8s, api(k8s) as http:
        task = (await http.post("/api/v1/tasks", json={"prompt": "hi"})).json()
        await task_in(http, task["id"], "starting")
        await k8s.run_pod(task["id"], {"running": {"startedAt": now()}})
        await task_in(http, task["id"], "running")
        cancel = await http.post(f"/api/v1/tasks/{task['id']}/cancel")
        assert cancel.status_code == 202
        cancelled = await task_in(http, task["id"], "cancelled")
        assert cancelled["reason"] == "cancelled by request"  # as on Docker
        assert not await k8s.exists(Job, task["id"])


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ({"prompt": "hi", "secrets": {"T": {"env": "HOST_T"}}}, ["body", "secrets", "T"]),
        ({"prompt": "hi", "tools": {"servers": ["nope"]}}, ["body", "tools", "servers", 0]),
        (
            {"prompt": "hi", "repository": {"url": "https://git.example.test/a",
                                            "credentials": {"env": "T"}}},
            ["body", "repository", "credentials"],
        ),
        ({"prompt": "hi", "timeout_seconds": 0}, ["body", "timeout_seconds"]),
    ],
)  # fmt: skip
async def test_a_task_kubernetes_cannot_run_is_refused_naming_the_field(
    body: dict[str, Any], location: list[str | int]
) -> None:
    async with cluster() as k8s, api(k8s) as http:
        answer = await http.post("/api/v1/tasks", json=body)
        assert answer.status_code == 422
        assert answer.json()["detail"][0]["loc"] == location
        assert (await http.get("/api/v1/tasks")).json()["items"] == []


async def test_the_api_wants_a_token_and_names_a_missing_task() -> None:
    async with cluster() as k8s, api(k8s) as http:
        anonymous = await http.get("/api/v1/tasks", headers={"Authorization": ""})
        assert anonymous.status_code == 401
        missing = await http.get("/api/v1/tasks/task-nope")
        assert missing.status_code == 404
        assert missing.json()["detail"] == "no task 'task-nope'"


async def test_a_taskrun_made_with_kubectl_is_listed_by_its_labels() -> None:
    """Labels filter from the TaskRun's metadata (as `kubectl get -l` does); the
    controller copies a kubectl-made TaskRun's spec labels there."""
    async with cluster() as k8s, api(k8s) as http:
        await k8s.submit("by-hand", {"prompt": "hi", "labels": {"team": "ops"}})
        labelled = ObjectMeta(name="labelled", namespace=NAMESPACE, labels={"team": "ops"})
        await k8s.client.create(TaskRun(metadata=labelled, spec={"prompt": "hi"}))

        async def listed() -> list[str] | None:
            page = (await http.get("/api/v1/tasks", params={"label": "team=ops"})).json()
            ids = sorted(item["id"] for item in page["items"])
            return ids if len(ids) == 2 else None

        found = await eventually(listed, timeout=WAIT, what="both TaskRuns listed")
        assert found == ["by-hand", "labelled"]
        other = (await http.get("/api/v1/tasks", params={"label": "team=web"})).json()
        assert other["items"] == []


async def test_cancelling_a_pending_task_answers_cancelled_as_on_docker() -> None:
    async with cluster() as k8s:
        await hold_lease(k8s, "elsewhere", datetime.now(UTC))  # no controller here acts
        async with api(k8s) as http:
            task = (await http.post("/api/v1/tasks", json={"prompt": "hi"})).json()
            assert task["phase"] == "pending"
            cancel = await http.post(task["links"]["cancel"])
            assert cancel.status_code == 202
            assert cancel.json()["phase"] == "cancelled"
            assert cancel.json()["reason"] == "cancelled before it started"
