"""`GET /api/v1/tasks`: filters by phase and label, and pages that cover every task
exactly once, in submission order or newest first."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from conftest import AUTH, submit

pytestmark = pytest.mark.anyio


async def ids(api: httpx.AsyncClient, query: str) -> list[str]:
    response = await api.get(f"/api/v1/tasks?{query}", headers=AUTH)
    assert response.status_code == 200, response.text
    return [task["id"] for task in response.json()["items"]]


async def test_filters_by_phase_and_by_labels_anded(api: httpx.AsyncClient) -> None:
    web = (await submit(api, labels={"team": "web", "tier": "1"}))["id"]
    web2 = (await submit(api, labels={"team": "web", "tier": "2"}))["id"]
    ops = (await submit(api, labels={"team": "ops", "tier": "1"}))["id"]
    cancelled = await api.post(f"/api/v1/tasks/{web2}/cancel", headers=AUTH)
    assert cancelled.status_code == 202

    assert await ids(api, "label=team=web") == [web, web2]
    assert await ids(api, "label=team=web&label=tier=1") == [web]
    assert await ids(api, "label=tier=1") == [web, ops]
    assert await ids(api, "label=team=nobody") == []
    assert await ids(api, "phase=pending") == [web, ops]
    assert await ids(api, "phase=cancelled") == [web2]
    assert await ids(api, "phase=cancelled&phase=pending") == [web, web2, ops]
    assert await ids(api, "phase=pending&label=team=web") == [web]
    assert await ids(api, "phase=running") == []


async def test_pages_cover_every_task_once_in_order(api: httpx.AsyncClient) -> None:
    submitted = [(await submit(api, prompt=f"task {n}"))["id"] for n in range(7)]
    seen: list[str] = []
    query = "limit=3"
    pages = 0
    while True:
        page: dict[str, Any] = (await api.get(f"/api/v1/tasks?{query}", headers=AUTH)).json()
        pages += 1
        assert len(page["items"]) <= 3
        seen += [task["id"] for task in page["items"]]
        if page["next_cursor"] is None:
            break
        query = f"limit=3&cursor={page['next_cursor']}"
    assert seen == submitted
    assert pages == 3
    # A page that ends exactly at the last task says so: no empty page after it.
    whole = (await api.get("/api/v1/tasks?limit=7", headers=AUTH)).json()
    assert len(whole["items"]) == 7
    assert whole["next_cursor"] is None


async def test_newest_first_pages_cover_every_task_once_newest_first(
    api: httpx.AsyncClient,
) -> None:
    submitted = [(await submit(api, prompt=f"task {n}"))["id"] for n in range(5)]
    seen: list[str] = []
    query = "limit=2&order=newest"
    while True:
        page: dict[str, Any] = (await api.get(f"/api/v1/tasks?{query}", headers=AUTH)).json()
        seen += [task["id"] for task in page["items"]]
        if page["next_cursor"] is None:
            break
        query = f"limit=2&order=newest&cursor={page['next_cursor']}"
    assert seen == submitted[::-1]
    # A cursor of one order given with the other is refused, not misread.
    first = (await api.get("/api/v1/tasks?limit=2&order=newest", headers=AUTH)).json()
    mixed = await api.get(f"/api/v1/tasks?cursor={first['next_cursor']}", headers=AUTH)
    assert mixed.status_code == 422
    assert "same order" in mixed.json()["detail"][0]["msg"]


def cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "forged",
    ["not-a-cursor", cursor("seq:-1"), cursor("id:5"), cursor("seq:" + "9" * 40), "%%%", "a"],
)
async def test_a_cursor_the_api_did_not_give_out_is_422(
    api: httpx.AsyncClient, forged: str
) -> None:
    response = await api.get("/api/v1/tasks", params={"cursor": forged}, headers=AUTH)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "cursor"]


async def test_more_labels_than_a_task_can_have_is_422(api: httpx.AsyncClient) -> None:
    """A filter of 65 labels cannot match (a task has at most 64); it was a 500 once
    (SQLite's expression depth)."""
    params = httpx.QueryParams([("label", f"k{n}=v") for n in range(65)])
    response = await api.get("/api/v1/tasks", params=params, headers=AUTH)
    assert response.status_code == 422
    assert "at most 64 labels" in response.json()["detail"][0]["msg"]
    pairs: list[tuple[str, str | int | float | bool | None]] = [
        ("label", f"k{n}=v") for n in range(64)
    ]
    params = httpx.QueryParams(pairs + [("phase", "pending")] * 300)
    assert (await api.get("/api/v1/tasks", params=params, headers=AUTH)).status_code == 200
