"""A task from submission to cleanup, through the orchestrator's image on the real engine.

The agent is the real `claude-code` image running the real Claude Code binary; its tools
come through mcp-wrapper from a toolman sidecar in the same network namespace, which
fronts the reference time server. The one fake is the model (see deployment.py): the
scripted Messages API makes Claude Code call a tool, and holds its last answer until the
test releases it, so the test can act while the agent runs.
"""

from __future__ import annotations

import json
import os
import re
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
from docker.models.containers import Container
from mcp import ClientSession, MCPError, StdioServerParameters
from mcp.client.stdio import stdio_client

from tests.e2e.deployment import (
    Api,
    ModelServer,
    OrchestratorContainer,
    PlatformImages,
    orchestrator_config,
    task_body,
    task_containers,
    task_leftovers,
)
from tests.e2e.images import wait_until
from tests.e2e.model_api import marker
from tests.e2e.support import run

pytestmark = [pytest.mark.docker, pytest.mark.registry, pytest.mark.slow]

ALLOWED = "time_get_current_time"
FORBIDDEN = "time_convert_time"
AGENT = "e2e-coder"
TTL = 3  # seconds a finished task's containers are kept


@pytest.fixture(scope="module")
def deployed(
    docker_engine: docker.DockerClient,
    platform_images: PlatformImages,
    task_network: str,
    model_server: ModelServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OrchestratorContainer]:
    """The orchestrator image serving on loopback, running tasks on the test's network."""
    running = OrchestratorContainer(
        docker_engine,
        platform_images.orchestrator.name,
        task_network,
        tmp_path_factory.mktemp("orchestrator"),
    )
    config = orchestrator_config(
        platform_images, task_network, "/var/lib/orchestrator", ttl_seconds=TTL
    )
    try:
        yield running.start(config)
    finally:
        running.api.close()
        running.remove()


@pytest.fixture(scope="module")
def orchestrator(deployed: OrchestratorContainer) -> Api:
    return deployed.api


def follow_logs(api: Api, task_id: str) -> tuple[threading.Thread, list[str]]:
    """Read `logs?follow=true` to its end in a thread; the text lands in the list."""
    received: list[str] = []

    def read() -> None:
        with api.client.stream(
            "GET",
            f"/api/v1/tasks/{task_id}/logs",
            params={"follow": "true"},
            timeout=httpx.Timeout(30, read=300),
        ) as response:
            assert response.status_code == 200
            received.extend(response.iter_text())

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread, received


def agent_token(engine: docker.DockerClient, task_id: str) -> str:
    """The agent's identity for its toolman: the token in the agent container's
    environment (the orchestrator makes one per launch; toolman knows only its digest)."""
    agent = engine.containers.get(f"orchestrator-{task_id}-agent")
    env: dict[str, str] = dict(item.split("=", 1) for item in agent.attrs["Config"]["Env"])
    return env["MCP_TOOLMAN_TOKEN"]


def wrapper_in(toolman: str, wrapper_image: str, token: str | None) -> StdioServerParameters:
    """mcp-wrapper in the task's network namespace (what the agent container runs), with
    the token (passed through the environment, never on a command line) or without."""
    args = ["run", "-i", "--rm", "--network", f"container:{toolman}"]
    args += ["-e", "MCP_TOOLMAN_TOKEN"] if token is not None else []
    env = {k: v for k, v in os.environ.items() if k != "MCP_TOOLMAN_TOKEN"}
    env |= {"MCP_TOOLMAN_TOKEN": token} if token is not None else {}
    return StdioServerParameters(command="docker", args=[*args, wrapper_image], env=env)


async def call_as_the_agent(
    wrapper_image: str, toolman: str, token: str | None, tmp: Path
) -> tuple[set[str], MCPError]:
    """Through the task's own toolman, driven by the official SDK's client: as its agent
    (with its token), listed tools and a refused call; without a token, toolman's 401
    (any other container on the task network gets no further)."""
    with (tmp / "wrapper.log").open("a") as errlog:
        async with (
            stdio_client(wrapper_in(toolman, wrapper_image, token), errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            if token is None:
                with pytest.raises(MCPError) as unauthorized:
                    await session.initialize()
                return set(), unauthorized.value
            await session.initialize()
            listed = {tool.name for tool in (await session.list_tools()).tools}
            with pytest.raises(MCPError) as refused:
                await session.call_tool(FORBIDDEN, {"time": "12:00", "source_timezone": "UTC"})
            return listed, refused.value


def test_a_task_runs_claude_code_with_its_allowed_tools_and_is_cleaned_up(
    orchestrator: Api,
    model_server: ModelServer,
    platform_images: PlatformImages,
    docker_engine: docker.DockerClient,
    tmp_path: Path,
) -> None:
    key = f"main-{uuid.uuid4().hex[:8]}"
    prompt = marker("hold", tool=f"mcp__toolman__{ALLOWED}", args={"timezone": "UTC"}, key=key)
    body = task_body(
        f"{prompt} What time is it in UTC?",
        agent={"name": AGENT, "model": "claude-e2e-scripted"},
        tools={"servers": ["time"], "blocked_tools": [FORBIDDEN]},
        files=[{"path": "notes/brief.md", "content": "check the clock\n"}],
        labels={"suite": "e2e"},
        resources={"cpu": 1.5, "memory": "1Gi"},
    )
    task = orchestrator.submit(body)
    task_id = task["id"]
    assert task["phase"] == "pending"
    assert "sk-e2e" not in str(task)  # secrets are references: no value is ever shown
    follower, followed = follow_logs(orchestrator, task_id)

    model_server.wait_holding(key)  # Claude Code called the tool and sent back its result
    assert orchestrator.get(task_id)["phase"] == "running"
    assert_hardened(docker_engine, task_id)
    toolman = f"orchestrator-{task_id}-toolman"
    token = agent_token(docker_engine, task_id)
    _, unauthorized = run_listing(platform_images, toolman, None, tmp_path)
    assert "HTTP 401" in unauthorized.error.message  # no token: toolman refuses the caller
    listed, refused = run_listing(platform_images, toolman, token, tmp_path)
    assert ALLOWED in listed
    assert FORBIDDEN not in listed
    assert refused.error.code == -32602
    assert refused.error.message == f"Unknown tool: {FORBIDDEN}"
    model_server.release(key)

    done = orchestrator.wait(task_id, "succeeded", "failed", "timed_out", "cancelled")
    assert done["phase"] == "succeeded", done
    assert done["exit_code"] == 0
    assert done["tool_calls"]["by_tool"][ALLOWED] == {"allowed": 1, "refused": 0, "failed": 0}
    assert done["tool_calls"]["by_tool"][FORBIDDEN] == {"allowed": 0, "refused": 1, "failed": 0}
    assert (done["tool_calls"]["allowed"], done["tool_calls"]["refused"]) == (1, 1)

    # What the model saw: the allowed tool offered, the forbidden one never; the tool's
    # real answer came back in the next turn; the task's model was asked for.
    turns = model_server.main_requests(key)
    assert len(turns) == 2, turns
    assert f"mcp__toolman__{ALLOWED}" in turns[0]["tools"]
    assert not [t for t in turns[0]["tools"] if FORBIDDEN in t]
    assert {turn["model"] for turn in turns} == {"claude-e2e-scripted"}
    result = turns[1]["tool_results"][0]
    assert not result["is_error"], result
    assert re.search(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", result["content"]), result

    # The followed log ran until the agent's end and holds Claude Code's final answer.
    follower.join(timeout=60)
    assert not follower.is_alive()
    assert result["content"][:16] in "".join(followed)

    audit = audit_lines(orchestrator.logs(task_id, "toolman"))
    assert {(a["name"], a["decision"]) for a in audit} == {
        (ALLOWED, "allowed"),
        (FORBIDDEN, "blocked"),
    }
    assert {a["agent"] for a in audit} == {AGENT}

    wait_until(lambda: not task_leftovers(docker_engine, task_id), 60, "the TTL cleanup")
    assert "".join(followed) in orchestrator.logs(task_id)  # logs outlive the containers


def assert_hardened(engine: docker.DockerClient, task_id: str) -> None:
    """Both containers: non-root, every capability dropped, no new privileges, labelled;
    the agent with the task's limits; toolman's config not writable by toolman."""
    containers = {
        c.labels["io.5dlabs.orchestrator.role"]: c for c in task_containers(engine, task_id)
    }
    assert set(containers) == {"agent", "toolman"}
    for container in containers.values():
        config, host = container.attrs["Config"], container.attrs["HostConfig"]
        assert config["User"] == "10001:10001"
        assert host["CapDrop"] == ["ALL"]
        assert "no-new-privileges:true" in host["SecurityOpt"]
        assert container.labels["io.5dlabs.orchestrator.task"] == task_id
    agent = containers["agent"].attrs["HostConfig"]
    assert (agent["Memory"], agent["NanoCpus"]) == (1 << 30, 1_500_000_000)
    assert agent["NetworkMode"] == f"container:{containers['toolman'].id}"
    assert owner_and_mode(containers["toolman"], "/etc/toolman/toolman.json") == ["0", "444"]
    assert owner_and_mode(containers["agent"], "/task/prompt") == ["10001", "400"]


def owner_and_mode(container: Container, path: str) -> list[str]:
    output = container.exec_run(["stat", "-c", "%u %a", path]).output
    assert isinstance(output, bytes)
    return output.decode().split()


def run_listing(
    images: PlatformImages, toolman: str, token: str | None, tmp: Path
) -> tuple[set[str], MCPError]:
    found: dict[str, Any] = {}

    async def scenario() -> None:
        found["listed"], found["refused"] = await call_as_the_agent(
            images.wrapper.name, toolman, token, tmp
        )

    run(scenario)
    return found["listed"], found["refused"]


def audit_lines(log: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.splitlines() if '"toolman.audit"' in line]


def test_an_agent_that_fails_is_failed_with_its_exit_code(
    orchestrator: Api, model_server: ModelServer
) -> None:
    prompt = marker("error", status=400, message="scripted: the model refuses")
    task = orchestrator.submit(task_body(prompt))
    done = orchestrator.wait(task["id"], "succeeded", "failed", "timed_out", "cancelled")
    assert done["phase"] == "failed", done
    assert done["exit_code"] not in (None, 0)
    assert f"exited with code {done['exit_code']}" in done["reason"]


def test_cancel_stops_a_running_task(
    orchestrator: Api, model_server: ModelServer, docker_engine: docker.DockerClient
) -> None:
    key = f"cancel-{uuid.uuid4().hex[:8]}"
    prompt = marker("hold", tool=f"mcp__toolman__{ALLOWED}", args={"timezone": "UTC"}, key=key)
    task = orchestrator.submit(task_body(prompt, tools={"servers": ["time"]}))
    model_server.wait_holding(key)
    response = orchestrator.client.post(f"/api/v1/tasks/{task['id']}/cancel")
    assert response.status_code == 202, response.text
    done = orchestrator.wait(task["id"], "succeeded", "failed", "timed_out", "cancelled")
    assert done["phase"] == "cancelled", done
    assert done["reason"] == "cancelled by request"
    assert done["exit_code"] is not None  # the agent's, as it was stopped
    assert all(c.status == "exited" for c in task_containers(docker_engine, task["id"]))
    again = orchestrator.client.post(f"/api/v1/tasks/{task['id']}/cancel")
    assert again.status_code == 409


def test_a_task_over_its_timeout_is_stopped_and_timed_out(
    orchestrator: Api, model_server: ModelServer
) -> None:
    key = f"timeout-{uuid.uuid4().hex[:8]}"
    prompt = marker("hold", tool=f"mcp__toolman__{ALLOWED}", args={"timezone": "UTC"}, key=key)
    task = orchestrator.submit(task_body(prompt, tools={"servers": ["time"]}, timeout_seconds=4))
    done = orchestrator.wait(task["id"], "succeeded", "failed", "timed_out", "cancelled")
    assert done["phase"] == "timed_out", done
    assert "timeout_seconds" in done["reason"]
    # The agent was stopped mid-run: it hung up on the model while its answer was held.
    wait_until(
        lambda: any(r.get("hold") == "client_gone" for r in model_server.main_requests(key)),
        30,
        "the scripted model seeing the agent hang up",
    )


def test_the_client_in_the_image_runs_a_task_and_exits_with_its_outcome(
    deployed: OrchestratorContainer, model_server: ModelServer
) -> None:
    """The README's second command: `docker exec orchestrator orchestrator task run
    --follow` prints the agent's output and exits 0; a failing task exits 1."""
    prompt = marker("text", text="hello from the client")
    status, out, err = deployed.client("run", "--follow", "--prompt", prompt)
    assert status == 0, err
    assert "hello from the client" in out
    assert "succeeded" in err
    failing = marker("error", status=400, message="scripted refusal")
    status, _, err = deployed.client("run", "--follow", "--prompt", failing)
    assert status == 1, err
    assert "failed" in err
