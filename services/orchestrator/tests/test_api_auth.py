"""The task API wants a bearer token; probes, metrics and the schema do not."""

from __future__ import annotations

import httpx
import pytest
from conftest import AUTH, TOKEN

pytestmark = pytest.mark.anyio

TASK_API = [
    ("POST", "/api/v1/tasks"),
    ("GET", "/api/v1/tasks"),
    ("GET", "/api/v1/tasks/some-id"),
    ("POST", "/api/v1/tasks/some-id/cancel"),
    ("GET", "/api/v1/tasks/some-id/logs"),
]
WRONG = [
    {},
    {"Authorization": "Bearer not-the-token"},
    {"Authorization": f"Basic {TOKEN}"},
    {"Authorization": "Bearer "},
]


@pytest.mark.parametrize(("method", "path"), TASK_API)
@pytest.mark.parametrize("headers", WRONG, ids=["none", "unknown", "basic", "empty"])
async def test_the_task_api_refuses_a_missing_or_wrong_token(
    api: httpx.AsyncClient, method: str, path: str, headers: dict[str, str]
) -> None:
    response = await api.request(method, path, headers=headers, json={"prompt": "p"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "token" in response.json()["detail"]


async def test_the_token_is_checked_before_the_body_is_read(api: httpx.AsyncClient) -> None:
    """Without a token, a body that is not JSON, or too large, is a 401 all the same:
    nothing of the request is looked at before the caller is known."""
    not_json = await api.post(
        "/api/v1/tasks", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 401
    huge = await api.post("/api/v1/tasks", content=b"x" * (65 << 20))
    assert huge.status_code == 401


async def test_the_known_token_is_let_in(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/tasks", headers=AUTH)
    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    "path", ["/health", "/api/v1/health", "/ready", "/metrics", "/openapi.json"]
)
async def test_probes_metrics_and_the_schema_are_open(api: httpx.AsyncClient, path: str) -> None:
    response = await api.get(path)
    assert response.status_code != 401
    assert response.status_code in (200, 503)  # /ready: the engine does not answer here
