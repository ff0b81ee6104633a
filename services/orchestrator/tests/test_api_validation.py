"""Bad input is a 4xx that names the field at fault, never a 5xx, and nothing is stored."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import AUTH, make_config, serve_in_process

pytestmark = pytest.mark.anyio

# (what is wrong, the body, the field the answer must name, words of the message)
BAD_BODIES: list[tuple[str, dict[str, Any], list[str | int], str]] = [
    ("no prompt", {}, ["body", "prompt"], "Field required"),
    ("empty prompt", {"prompt": ""}, ["body", "prompt"], "at least 1"),
    ("a misspelt key", {"prompt": "p", "timout_seconds": 5}, ["body", "timout_seconds"], ""),
    (
        "a path out of the workspace",
        {"prompt": "p", "files": [{"path": "../x", "content": ""}]},
        ["body", "files", 0, "path"],
        "no '..'",
    ),
    (
        "an absolute path",
        {"prompt": "p", "files": [{"path": "/etc/x", "content": ""}]},
        ["body", "files", 0, "path"],
        "no leading '/'",
    ),
    (
        "the workspace itself as a file",
        {"prompt": "p", "files": [{"path": ".", "content": ""}]},
        ["body", "files", 0, "path"],
        "relative file path",
    ),
    (
        "a file that is also a directory",
        {"prompt": "p", "files": [{"path": "a", "content": ""}, {"path": "a/b", "content": ""}]},
        ["body"],
        "files: a is given as a file and as a directory",
    ),
    (
        "bad base64",
        {"prompt": "p", "files": [{"path": "x.bin", "content": "@@@", "encoding": "base64"}]},
        ["body", "files", 0],
        "not valid base64",
    ),
    (
        "a number for a boolean",
        {"prompt": "p", "files": [{"path": "run.sh", "content": "", "executable": 1}]},
        ["body", "files", 0, "executable"],
        "valid boolean",
    ),
    (
        "a string for a number",
        {"prompt": "p", "timeout_seconds": "60"},
        ["body", "timeout_seconds"],
        "valid integer",
    ),
    (
        "a reserved env name",
        {"prompt": "p", "env": {"TASK_ID": "mine"}},
        ["body"],
        "env: TASK_ID is set by the orchestrator",
    ),
    (
        "a name in env and secrets",
        {"prompt": "p", "env": {"GIT_TOKEN": "x"}, "secrets": {"GIT_TOKEN": {"env": "GIT_TOKEN"}}},
        ["body"],
        "GIT_TOKEN is given in both env and secrets",
    ),
    (
        "a secret the operator does not allow",
        {"prompt": "p", "secrets": {"KEY": {"env": "HOME"}}},
        ["body", "secrets", "KEY"],
        "task_secrets.env",
    ),
    (
        "an allowed secret whose variable is unset",
        {"prompt": "p", "secrets": {"KEY": {"env": "UNSET_TOKEN"}}},
        ["body", "secrets", "KEY"],
        "UNSET_TOKEN is not set",
    ),
    (
        "a file secret the operator does not allow",
        {"prompt": "p", "secrets": {"KEY": {"file": "/etc/shadow"}}},
        ["body", "secrets", "KEY"],
        "task_secrets.files",
    ),
    (
        "an unknown MCP server",
        {"prompt": "p", "tools": {"servers": ["tiem"]}},
        ["body", "tools", "servers", 0],
        "unknown server 'tiem' (did you mean 'time'?)",
    ),
    (
        "a memory quantity with a bad unit",
        {"prompt": "p", "resources": {"memory": "1x"}},
        ["body", "resources", "memory"],
        "not a memory quantity",
    ),
    (
        "more memory than a float holds",
        {"prompt": "p", "resources": {"memory": "9" * 400 + "Gi"}},
        ["body", "resources", "memory"],
        "more memory than any engine can limit",
    ),
    (
        "a label key with a space",
        {"prompt": "p", "labels": {"bad key": "v"}},
        ["body", "labels", "bad key", "[key]"],
        "pattern",
    ),
    ("a body that is a list", [], ["body"], "valid dictionary"),  # type: ignore[list-item]
]


@pytest.mark.parametrize(
    ("body", "location", "words"),
    [case[1:] for case in BAD_BODIES],
    ids=[case[0] for case in BAD_BODIES],
)
async def test_a_bad_body_is_422_naming_the_field(
    api: httpx.AsyncClient, body: Any, location: list[str | int], words: str
) -> None:
    response = await api.post("/api/v1/tasks", json=body, headers=AUTH)
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert [e["loc"] for e in errors][:1] == [location]
    assert words in errors[0]["msg"]
    listed = await api.get("/api/v1/tasks", headers=AUTH)
    assert listed.json()["items"] == []  # nothing was stored


async def test_a_body_that_is_not_json_is_422(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/api/v1/tasks",
        content=b'{"prompt": "p",',
        headers={**AUTH, "content-type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"


async def test_a_body_that_is_not_utf8_is_400(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/api/v1/tasks",
        content=b'{"prompt": "\xff\xfe"}',
        headers={**AUTH, "content-type": "application/json"},
    )
    assert response.status_code == 400


async def test_a_body_over_the_limit_is_413_before_it_is_read(tmp_path: Path) -> None:
    """`tasks.max_request_bytes` bounds what the server reads, whether the client says
    the length up front or streams the body without one."""
    config = make_config(tmp_path / "state", tasks={"max_request_bytes": 4096})
    async with serve_in_process(config) as api:
        within = await api.post("/api/v1/tasks", json={"prompt": "x" * 3000}, headers=AUTH)
        assert within.status_code == 201
        response = await api.post("/api/v1/tasks", json={"prompt": "x" * 5000}, headers=AUTH)
        assert response.status_code == 413
        assert "tasks.max_request_bytes" in response.json()["detail"]

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b"x" * 1000

        streamed = await api.post("/api/v1/tasks", content=chunks(), headers=AUTH)
        assert streamed.status_code == 413
        assert len((await api.get("/api/v1/tasks", headers=AUTH)).json()["items"]) == 1


@pytest.mark.parametrize(
    ("path", "query", "name", "words"),
    [
        ("/api/v1/tasks", "phse=running", "phse", "did you mean 'phase'?"),
        ("/api/v1/tasks/some-id/logs", "folow=true", "folow", "did you mean 'follow'?"),
        ("/api/v1/tasks", "phase=runnin", "phase", "Input should be"),
        ("/api/v1/tasks", "limit=0", "limit", "greater than or equal to 1"),
        ("/api/v1/tasks", "label=team", "label", "is not key=value"),
        ("/api/v1/tasks", "cursor=", "cursor", "at least 1"),
    ],
)
async def test_a_bad_or_unknown_query_parameter_is_422_naming_it(
    api: httpx.AsyncClient, path: str, query: str, name: str, words: str
) -> None:
    """A misspelt filter is an error, not silently ignored (which would list everything)."""
    response = await api.get(f"{path}?{query}", headers=AUTH)
    assert response.status_code == 422, response.text
    error = response.json()["detail"][0]
    assert error["loc"][:2] == ["query", name]
    assert words in error["msg"]
