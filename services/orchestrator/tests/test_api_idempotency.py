"""`Idempotency-Key`: a retried submission is the same task; the same key with another
body is a conflict. "The same body" is the same request, in any key order or spacing."""

from __future__ import annotations

import json

import httpx
import pytest
from conftest import AUTH

pytestmark = pytest.mark.anyio

BODY = {"prompt": "p", "labels": {"a": "1", "b": "2"}, "timeout_seconds": 60}


async def post(api: httpx.AsyncClient, key: str, content: str) -> httpx.Response:
    headers = {**AUTH, "Idempotency-Key": key, "content-type": "application/json"}
    return await api.post("/api/v1/tasks", content=content, headers=headers)


async def test_the_same_key_and_body_is_the_same_task(api: httpx.AsyncClient) -> None:
    first = await post(api, "k-1", json.dumps(BODY))
    assert first.status_code == 201
    retried = await post(api, "k-1", json.dumps(BODY))
    assert retried.status_code == 201
    assert retried.json()["id"] == first.json()["id"]
    assert retried.headers["location"] == first.headers["location"]
    # Reordered keys, other spacing, a default written out: still the same request.
    reordered = json.dumps(
        {"timeout_seconds": 60, "labels": {"b": "2", "a": "1"}, "prompt": "p", "env": {}},
        indent=3,
    )
    assert (await post(api, "k-1", reordered)).json()["id"] == first.json()["id"]
    listed = (await api.get("/api/v1/tasks", headers=AUTH)).json()["items"]
    assert [task["id"] for task in listed] == [first.json()["id"]]  # one row


async def test_the_same_key_with_another_body_is_409(api: httpx.AsyncClient) -> None:
    first = await post(api, "k-2", json.dumps(BODY))
    conflict = await post(api, "k-2", json.dumps({**BODY, "prompt": "something else"}))
    assert conflict.status_code == 409
    detail = conflict.json()["detail"]
    assert "k-2" in detail
    assert first.json()["id"] in detail
    listed = (await api.get("/api/v1/tasks", headers=AUTH)).json()["items"]
    assert len(listed) == 1


async def test_other_keys_and_no_key_are_new_tasks(api: httpx.AsyncClient) -> None:
    a = (await post(api, "k-3", json.dumps(BODY))).json()["id"]
    b = (await post(api, "k-4", json.dumps(BODY))).json()["id"]
    plain = await api.post("/api/v1/tasks", json=BODY, headers=AUTH)
    again = await api.post("/api/v1/tasks", json=BODY, headers=AUTH)
    assert len({a, b, plain.json()["id"], again.json()["id"]}) == 4
    assert (await api.get("/api/v1/tasks/" + a, headers=AUTH)).status_code == 200
