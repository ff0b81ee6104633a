"""A task's tool-call summary from toolman's audit lines, produced here by the real
toolman (its console script, the config the orchestrator generates for the task, in
sidecar mode with `AGENT_NAME`) in front of the real MCP time server, called over MCP
Streamable HTTP. The MCP reference servers come from ci/install-mcp-peers.sh."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import REPO, require, wait_until
from toolman_sidecar import running_toolman

from orchestrator.tasks.audit import ToolCallCounter, count_tool_calls
from orchestrator.tasks.model import ToolPolicy
from orchestrator.tasks.policy import toolman_config

PEERS = Path(os.environ.get("MCP_PEERS_DIR") or REPO / "build" / "mcp-peers")
PEER_PYTHON = PEERS / "venv" / "bin" / "python"
AGENT = "coder"


def time_server() -> dict[str, Any]:
    require(
        PEER_PYTHON.exists(),
        f"the MCP reference servers are not in {PEERS}; run ci/install-mcp-peers.sh",
    )
    return {
        "command": str(PEER_PYTHON),
        "args": ["-m", "mcp_server_time", "--local-timezone", "UTC"],
    }


@dataclass
class Toolman:
    url: str
    log: Path


@pytest.fixture
def toolman(tmp_path: Path) -> Iterator[Toolman]:
    """The task's sidecar: time allowed, its convert_time tool blocked."""
    base = {"servers": {"time": time_server()}}
    policy = ToolPolicy(servers=["time"], blocked_tools=["time_convert_time"])
    with running_toolman(toolman_config(base, AGENT, policy), AGENT, tmp_path) as (url, log):
        yield Toolman(url, log)


def rpc(client: httpx.Client, url: str, body: dict[str, Any]) -> dict[str, Any]:
    """One JSON-RPC request over Streamable HTTP; the answer as JSON or from its SSE event."""
    response = client.post(f"{url}/mcp", json=body)
    response.raise_for_status()
    if response.headers["content-type"].startswith("text/event-stream"):
        data = [line[5:] for line in response.text.splitlines() if line.startswith("data:")]
        answer: dict[str, Any] = json.loads(data[-1])
    else:
        answer = response.json()
    return answer


def call_tools(url: str) -> list[dict[str, Any]]:
    headers = {"Accept": "application/json, text/event-stream"}
    with httpx.Client(headers=headers, timeout=10) as client:
        init = {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "orchestrator-tests", "version": "1"},
        }
        first = client.post(
            f"{url}/mcp", json={"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": init}
        )
        first.raise_for_status()
        client.headers["Mcp-Session-Id"] = first.headers["mcp-session-id"]
        client.headers["MCP-Protocol-Version"] = "2025-06-18"
        client.post(f"{url}/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"})
        calls = [
            ("time_get_current_time", {"timezone": "UTC"}),  # allowed, ok
            ("time_convert_time", {}),  # blocked by the task's policy
            ("time_get_current_time", {"timezone": "Not/AZone"}),  # allowed, fails
        ]
        return [
            rpc(
                client,
                url,
                {
                    "jsonrpc": "2.0",
                    "id": n,
                    "method": "tools/call",
                    "params": {"name": name, "arguments": arguments},
                },
            )
            for n, (name, arguments) in enumerate(calls, start=1)
        ]


def audit_lines(log: Path) -> list[bytes]:
    return [line for line in log.read_bytes().splitlines() if b'"toolman.audit"' in line]


def test_the_summary_counts_toolmans_audit_lines(toolman: Toolman) -> None:
    answers = call_tools(toolman.url)
    assert "result" in answers[0]
    assert not answers[0]["result"].get("isError")
    assert "error" in answers[1]  # refused: toolman hides the tool from this agent

    def three_lines() -> list[bytes] | None:
        lines = audit_lines(toolman.log)
        return lines if len(lines) >= 3 else None

    lines = wait_until(three_lines, timeout=10, what="toolman's three audit lines")

    summary = count_tool_calls(AGENT, lines)
    assert (summary.allowed, summary.refused, summary.failed) == (2, 1, 1)
    assert summary.by_tool == {
        "time_convert_time": {"allowed": 0, "refused": 1, "failed": 0},
        "time_get_current_time": {"allowed": 2, "refused": 0, "failed": 1},
    }
    assert count_tool_calls("another-agent", lines).allowed == 0

    # The whole log (startup lines and all), fed as a followed log arrives: in pieces
    # that split lines anywhere.
    whole = toolman.log.read_bytes()
    counter = ToolCallCounter(AGENT)
    saw = [counter.feed(whole[at : at + 7]) for at in range(0, len(whole), 7)]
    assert counter.summary() == summary
    assert sum(saw) >= 1
