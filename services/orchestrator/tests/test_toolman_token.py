"""Each launch gives the task's agent its own token for its toolman: the real toolman
(its console script, with the config the orchestrator generates for the launch, in the
sidecar's environment) answers `/mcp` only to that token, as the task's agent, while
`/ready` stays open for the orchestrator's polling. The token is in the agent's
environment (and, hashed, toolman's config), never in the task or the launch's repr."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import AUTH, make_config, serve_in_process
from toolman_sidecar import running_toolman

from orchestrator.backends.base import Launch
from orchestrator.config import OrchestratorConfig
from orchestrator.controller.launches import build_launch
from orchestrator.tasks.model import TaskCreate
from toolman.config import parse

AGENT = "coder"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "orchestrator-tests", "version": "1"},
    },
}


def launch_for(config: OrchestratorConfig) -> Launch:
    spec = TaskCreate.model_validate({"prompt": "p", "agent": {"name": AGENT}})
    return build_launch("task-1", spec, config, {})


@pytest.fixture
def sidecar(tmp_path: Path) -> Iterator[tuple[str, Launch]]:
    """toolman as the sidecar runs it, with the launch's config: up once `/ready`
    answers, without a token (as the orchestrator polls it)."""
    launch = launch_for(make_config(tmp_path / "state"))
    with running_toolman(launch.toolman_config, AGENT, tmp_path) as (url, _):
        yield url, launch


def initialize(url: str, token: str | None) -> httpx.Response:
    headers = {"Accept": "application/json, text/event-stream"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.post(f"{url}/mcp", json=INITIALIZE, headers=headers, timeout=10)


def test_toolman_answers_only_the_agents_token(sidecar: tuple[str, Launch]) -> None:
    url, launch = sidecar
    token = launch.env["MCP_TOOLMAN_TOKEN"]
    assert len(token) >= 43  # 32 random bytes
    without = initialize(url, None)
    assert without.status_code == 401, without.text
    assert initialize(url, token[:-1] + ("A" if token[-1] != "A" else "B")).status_code == 401
    answered = initialize(url, token)
    assert answered.status_code == 200, answered.text
    assert "mcp-session-id" in answered.headers


def test_the_token_names_the_tasks_agent_and_only_its_digest_is_in_the_config(
    tmp_path: Path,
) -> None:
    launch = launch_for(make_config(tmp_path / "state"))
    token = launch.env["MCP_TOOLMAN_TOKEN"]
    generated = json.dumps(launch.toolman_config)
    assert token not in generated
    tokens = parse(dict(launch.toolman_config), {}).tokens  # toolman's own reading
    assert list(tokens.values()) == [AGENT]
    assert token not in repr(launch)
    again = launch_for(make_config(tmp_path / "state"))
    assert again.env["MCP_TOOLMAN_TOKEN"] != token  # a new one for every launch


@pytest.mark.anyio
async def test_a_task_cannot_bring_its_own_token(tmp_path: Path) -> None:
    async with serve_in_process(make_config(tmp_path / "state")) as api:
        for field, value in (("env", "mine"), ("secrets", {"env": "GIT_TOKEN"})):
            body: dict[str, Any] = {"prompt": "p", field: {"MCP_TOOLMAN_TOKEN": value}}
            response = await api.post("/api/v1/tasks", json=body, headers=AUTH)
            assert response.status_code == 422, response.text
            message = response.json()["detail"][0]["msg"]
            assert f"{field}: MCP_TOOLMAN_TOKEN is set by the orchestrator" in message
