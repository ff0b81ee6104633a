"""The controller's app answers outside `/api/v1/tasks` as the Docker app does: 401 before
a body is read, 413 past `tasks.max_request_bytes`, a 405 naming the path's methods, the
open `/api/v1/health` and `/metrics`; and a task whose inputs would not fit a ConfigMap
is refused at submission naming the field, not by the API server later. Against kmock's
emulator over real HTTP (the seam in k8s_emulator.py)."""

from __future__ import annotations

import pytest
from conftest import TOOLMAN_BASE, free_port
from k8s_emulator import cluster
from test_kubernetes_job import MODEL_KEY
from test_kubernetes_tasks_api import api, api_at

from orchestrator.config import parse
from orchestrator.metrics import CONTENT_TYPE

pytestmark = pytest.mark.anyio
SMALL = parse({
    "toolman": {"config": TOOLMAN_BASE},
    "agent": {"secrets": MODEL_KEY},
    "tasks": {"max_request_bytes": 4096},
})  # fmt: skip


async def test_a_body_past_max_request_bytes_is_413_and_no_token_is_401_first() -> None:
    async with cluster() as k8s, api(k8s, SMALL) as http:
        big = await http.post("/api/v1/tasks", json={"prompt": "x" * 8192})
        assert big.status_code == 413
        assert "tasks.max_request_bytes" in big.json()["detail"]
        anonymous = await http.post(
            "/api/v1/tasks", content=b"not json", headers={"Authorization": ""}
        )
        assert anonymous.status_code == 401  # the body was never parsed


async def test_a_wrong_method_names_every_allowed_one() -> None:
    async with cluster() as k8s, api(k8s) as http:
        answer = await http.delete("/api/v1/tasks")
        assert answer.status_code == 405
        assert sorted(answer.headers["allow"].split(", ")) == ["GET", "POST"]


async def test_the_open_health_and_metrics_answer() -> None:
    async with cluster() as k8s, api(k8s) as http:
        health = await http.get("/api/v1/health", headers={"Authorization": ""})
        assert health.status_code == 200
        assert health.json()["status"] == "healthy"
        created = await http.post("/api/v1/tasks", json={"prompt": "hi"})
        assert created.status_code == 201, created.text
        metrics = await http.get("/metrics", headers={"Authorization": ""})
        assert metrics.status_code == 200
        lines = metrics.text.splitlines()
        counted = [line for line in lines if line.startswith("orchestrator_tasks{")]
        assert sum(float(line.rsplit(" ", 1)[1]) for line in counted) == 1


async def test_metrics_answer_while_the_api_server_is_unreachable() -> None:
    """A scrape still succeeds (Prometheus would otherwise only see the target down):
    `orchestrator_backend_up` is 0 and no task counts are given, none being known."""
    nobody = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    async with api_at(nobody) as http:
        for _ in range(2):  # the first failure leaves the app able to answer again
            metrics = await http.get("/metrics", headers={"Authorization": ""})
            assert metrics.status_code == 200, metrics.text
            assert metrics.headers["content-type"] == CONTENT_TYPE
            lines = metrics.text.splitlines()
            assert "orchestrator_backend_up 0.0" in lines
            assert not [line for line in lines if line.startswith("orchestrator_tasks{")]
        assert (await http.get("/ready")).status_code == 503


async def test_inputs_too_large_for_a_configmap_are_refused_at_submission() -> None:
    async with cluster() as k8s, api(k8s) as http:
        body = {"prompt": "hi", "files": [{"path": "big.txt", "content": "x" * (1 << 20)}]}
        answer = await http.post("/api/v1/tasks", json=body)
        assert answer.status_code == 422
        detail = answer.json()["detail"][0]
        assert detail["loc"] == ["body", "files"]
        assert "ConfigMap" in detail["msg"]
        listed = (await http.get("/api/v1/tasks")).json()
        assert listed["items"] == []
