"""Cancelling: a pending task is cancelled at once; a task that ended cannot be."""

from __future__ import annotations

import httpx
import pytest
from conftest import AUTH, submit

pytestmark = pytest.mark.anyio


async def test_a_pending_task_is_cancelled_at_once(api: httpx.AsyncClient) -> None:
    task = await submit(api)
    response = await api.post(f"/api/v1/tasks/{task['id']}/cancel", headers=AUTH)
    assert response.status_code == 202
    cancelled = response.json()
    assert cancelled["phase"] == "cancelled"
    assert cancelled["finished_at"] is not None
    assert cancelled["started_at"] is None
    assert "before it started" in cancelled["reason"]
    read = (await api.get(f"/api/v1/tasks/{task['id']}", headers=AUTH)).json()
    assert read["phase"] == "cancelled"


async def test_cancelling_a_task_that_ended_is_409(api: httpx.AsyncClient) -> None:
    task = await submit(api)
    await api.post(f"/api/v1/tasks/{task['id']}/cancel", headers=AUTH)
    again = await api.post(f"/api/v1/tasks/{task['id']}/cancel", headers=AUTH)
    assert again.status_code == 409
    assert "already ended: cancelled" in again.json()["detail"]


async def test_cancelling_an_unknown_task_is_404(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/v1/tasks/nope/cancel", headers=AUTH)
    assert response.status_code == 404


async def test_cancelling_one_task_leaves_the_others(api: httpx.AsyncClient) -> None:
    keep, drop = await submit(api), await submit(api)
    await api.post(f"/api/v1/tasks/{drop['id']}/cancel", headers=AUTH)
    kept = (await api.get(f"/api/v1/tasks/{keep['id']}", headers=AUTH)).json()
    assert kept["phase"] == "pending"
