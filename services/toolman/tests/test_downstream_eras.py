"""Remote downstreams of either era: toolman asks ``server/discover`` first, else ``initialize``.

The official SDK's server (2.x) answers ``server/discover`` and is spoken to in
2026-07-28; the reference server-everything (TypeScript SDK 1.x) knows only
sessions and gets ``initialize``. Clients of either era (the SDK client in auto
and legacy mode) call tools of both, and a 2026-07-28 downstream's
``input_required`` reaches a 2025 client as a request on its session and a
2026-07-28 client as toolman's own ``input_required``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import mcp_types as types
import pytest
from conftest import Toolman, free_port, missing, stop_process, wait_until
from downstreams import listening
from mcp.client.session import ClientRequestContext
from mcp.shared.exceptions import MCPError
from test_everything import ENTRY
from test_related import answering_client, text_of
from test_remote import Remote, remote

__all__ = ["remote"]  # the fixture, imported for pytest

Factory = Callable[..., Toolman]


@pytest.fixture
def everything_url() -> Iterator[str]:
    """server-everything serving Streamable HTTP (2025 sessions only) on 127.0.0.1."""
    node = shutil.which("node")
    if node is None or not ENTRY.exists():
        missing(f"node and @modelcontextprotocol/server-everything at {ENTRY}")
    port = free_port()
    process = subprocess.Popen(
        [node, str(ENTRY), "streamableHttp"],
        env={**os.environ, "PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: listening(port), timeout=30, what="server-everything to listen")
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        stop_process(process)


def ready(toolman_factory: Factory, servers: dict[str, Any]) -> Toolman:
    toolman = toolman_factory({"servers": servers})

    def all_ready() -> bool:
        return all(toolman.server_state(name)["state"] == "ready" for name in servers)

    wait_until(all_ready, timeout=30, what=f"{', '.join(servers)} ready behind toolman")
    return toolman


async def elicit(
    _context: ClientRequestContext, params: types.ElicitRequestParams
) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={"name": "ada"})


def calls(url: str, mode: str, tools: list[tuple[str, dict[str, Any]]]) -> tuple[str, list[str]]:
    """The client's negotiated revision and the text of each call's answer."""

    async def run() -> tuple[str, list[str]]:
        async with answering_client(url, [], mode=mode, elicitation_callback=elicit) as client:
            answers = [await client.call_tool(name, args) for name, args in tools]
            return client.protocol_version, [text_of(answer) for answer in answers]

    return asyncio.run(run())


def test_a_modern_and_a_legacy_downstream_serve_clients_of_either_era(
    toolman_factory: Factory, remote: Remote, everything_url: str
) -> None:
    servers = {"sdk": {"url": remote.url}, "legacy": {"url": everything_url}}
    toolman = ready(toolman_factory, servers)
    assert toolman.server_state("sdk")["protocol"] == "2026-07-28"
    assert toolman.server_state("legacy")["protocol"] == "2025-11-25"
    tools = [
        ("sdk_protocol", {}),
        ("sdk_echo", {"text": "hi"}),
        ("legacy_echo", {"message": "hello"}),
    ]
    for mode, version in (("auto", "2026-07-28"), ("legacy", "2025-11-25")):
        negotiated, answers = calls(toolman.mcp_url, mode, tools)
        assert negotiated == version
        assert answers[0] == "2026-07-28"  # what the downstream saw, whatever the client
        assert answers[1] == "hi"
        assert answers[2] == "Echo: hello"


def test_protocol_2025_keeps_a_session_to_a_server_that_speaks_both(
    toolman_factory: Factory, remote: Remote
) -> None:
    toolman = ready(toolman_factory, {"sdk": {"url": remote.url, "protocol": "2025"}})
    assert toolman.server_state("sdk")["protocol"] == "2025-11-25"
    _negotiated, answers = calls(toolman.mcp_url, "auto", [("sdk_protocol", {})])
    assert answers == ["2025-11-25"]


def test_a_modern_downstreams_input_required_is_answered_by_clients_of_either_era(
    toolman_factory: Factory, remote: Remote
) -> None:
    toolman = ready(toolman_factory, {"sdk": {"url": remote.url}})
    for mode in ("legacy", "auto"):
        _negotiated, answers = calls(toolman.mcp_url, mode, [("sdk_confirm", {"question": "who?"})])
        assert answers[0].startswith("confirmed by ada (state ")


def test_a_modern_downstream_that_went_away_is_reconnected(
    toolman_factory: Factory, remote: Remote
) -> None:
    """No session and no GET stream: toolman's subscriptions/listen or the next call notices."""
    toolman = ready(toolman_factory, {"sdk": {"url": remote.url}})
    remote.kill()

    async def call_gone() -> bool:
        async with answering_client(toolman.mcp_url, [], mode="legacy") as client:
            with pytest.raises(MCPError):
                await client.call_tool("sdk_echo", {"text": "gone"})
        return True

    assert asyncio.run(call_gone())
    wait_until(lambda: toolman.server_state("sdk")["state"] != "ready", timeout=30, what="down")
    remote.start()
    wait_until(lambda: toolman.server_state("sdk")["state"] == "ready", timeout=60, what="back")
    assert toolman.server_state("sdk")["protocol"] == "2026-07-28"
    _negotiated, answers = calls(toolman.mcp_url, "legacy", [("sdk_echo", {"text": "again"})])
    assert answers == ["again"]


def test_a_2026_client_without_the_capability_a_downstream_asks_for_gets_32021(
    toolman_factory: Factory, remote: Remote
) -> None:
    toolman = ready(toolman_factory, {"sdk": {"url": remote.url}})
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    call = {
        "jsonrpc": "2.0",
        "id": 3,
        "method": "tools/call",
        "params": {"name": "sdk_confirm", "arguments": {"question": "who?"}, "_meta": meta},
    }
    headers = {
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": "tools/call",
        "mcp-name": "sdk_confirm",
    }
    with httpx.Client(base_url=toolman.base_url, timeout=30) as http:
        answer = http.post("/mcp", json=call, headers=headers)
        assert answer.status_code == 400
        error = answer.json()["error"]
        assert error["code"] == -32021
        assert error["data"] == {"requiredCapabilities": {"elicitation": {}}}
        stream = http.get("/mcp", headers={**headers, "accept": "text/event-stream"})
        assert stream.status_code == 405
        assert stream.headers["allow"] == "POST"


def test_an_input_required_read_carries_no_cache_hints(
    toolman_factory: Factory, remote: Remote
) -> None:
    """Only a complete result may be cached: a read that asks first says nothing of caching."""
    toolman = ready(toolman_factory, {"sdk": {"url": remote.url}})
    uri = "test://asking/who"
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}},
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
    }
    headers = {"mcp-protocol-version": "2026-07-28", "mcp-method": "resources/read",
               "mcp-name": uri, "accept": "application/json"}  # fmt: skip
    body = {"jsonrpc": "2.0", "id": 1, "method": "resources/read",
            "params": {"uri": uri, "_meta": meta}}  # fmt: skip
    with httpx.Client(base_url=toolman.base_url, timeout=30) as http:
        result = http.post("/mcp", json=body, headers=headers).json()["result"]
    assert result["resultType"] == "input_required", result
    assert "ttlMs" not in result
    assert "cacheScope" not in result
