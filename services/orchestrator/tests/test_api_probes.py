"""Health, readiness, metrics and the OpenAPI schema, as probes, scrapers and client
generators read them."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
import pytest
from conftest import submit

from orchestrator import __version__

pytestmark = pytest.mark.anyio


async def test_api_health_has_the_original_shape(api: httpx.AsyncClient) -> None:
    body = (await api.get("/api/v1/health")).json()
    assert body["status"] == "healthy"
    assert body["version"] == __version__
    moment = datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00"))
    assert moment.tzinfo is not None
    assert abs((datetime.now(UTC) - moment).total_seconds()) < 3600  # a real time, in UTC


async def test_ready_is_503_naming_the_engine_while_it_does_not_answer(
    api: httpx.AsyncClient,
) -> None:
    response = await api.get("/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["ready"] is False
    assert body["backend"] == "docker"
    assert body["running"] == 0
    assert body["max_running"] == 4


async def test_metrics_count_the_pending_tasks(api: httpx.AsyncClient) -> None:
    for _ in range(3):
        await submit(api)
    response = await api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    assert re.search(r'^orchestrator_tasks\{phase="pending"\} 3(\.0)?$', text, re.MULTILINE)
    assert re.search(r'^orchestrator_tasks\{phase="running"\} 0(\.0)?$', text, re.MULTILINE)
    assert "# TYPE orchestrator_task_start_seconds histogram" in text
    assert re.search(r"^orchestrator_backend_up 0(\.0)?$", text, re.MULTILINE)


async def test_the_openapi_schema_describes_the_task_api(api: httpx.AsyncClient) -> None:
    schema = (await api.get("/openapi.json")).json()
    assert schema["info"]["version"] == __version__
    paths = schema["paths"]
    assert set(paths["/api/v1/tasks"]) == {"get", "post"}
    post = paths["/api/v1/tasks"]["post"]
    assert {"201", "401", "409", "413", "422"} <= set(post["responses"])
    assert post["security"] == [{"HTTPBearer": []}]
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert "/api/v1/tasks/{task_id}/cancel" in paths
    assert "503" in paths["/ready"]["get"]["responses"]
    assert "security" not in paths["/health"]["get"]
    created = schema["components"]["schemas"]
    assert "TaskCreate" in created or "TaskCreate-Input" in created
