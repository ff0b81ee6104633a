"""A method a path does not take is 405 with `Allow` naming every method it does take
(RFC 9110 15.5.6): a client learns `GET` is there too, not only `POST`."""

from __future__ import annotations

import httpx
import pytest
from conftest import AUTH

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/api/v1/tasks", "GET, POST"),
        ("OPTIONS", "/api/v1/tasks", "GET, POST"),
        ("DELETE", "/api/v1/tasks/some-id", "GET"),
        ("GET", "/api/v1/tasks/some-id/cancel", "POST"),
        ("POST", "/health", "GET"),
    ],
)
async def test_405_names_every_method_of_the_path(
    api: httpx.AsyncClient, method: str, path: str, allowed: str
) -> None:
    response = await api.request(method, path, headers=AUTH)
    assert response.status_code == 405
    assert response.headers["allow"] == allowed
