"""Both eras through mcp-wrapper: the SDK's stdio client -> mcp-wrapper -> toolman -> a server.

mcp-wrapper has no dependencies, so it runs from this repository's source
(services/mcp_wrapper/src) with this interpreter, as a real subprocess the
SDK's stdio client spawns and kills. In ``auto`` mode the client probes
``server/discover`` and then sends stateless 2026-07-28 requests, which the
wrapper forwards one POST each; in ``legacy`` mode it sends ``initialize`` and
the wrapper keeps a 2025 session. Both see the same tools.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from typing import Any

import pytest
from conftest import REPO, Toolman, missing, wait_until
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

WRAPPER_SRC = REPO / "services" / "mcp_wrapper" / "src"
Factory = Callable[..., Toolman]


def wrapper(toolman: Toolman, **env: str) -> StdioServerParameters:
    if not (WRAPPER_SRC / "mcp_wrapper" / "__main__.py").exists():
        missing(f"mcp-wrapper's source is not at {WRAPPER_SRC}")
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(WRAPPER_SRC),
        "MCP_TOOLMAN_SERVER_URL": toolman.mcp_url,
        **env,
    }
    return StdioServerParameters(
        command=sys.executable, args=["-m", "mcp_wrapper"], env=environment
    )


@pytest.fixture
def toolman(toolman_factory: Factory, sdk_server: dict[str, Any]) -> Toolman:
    toolman = toolman_factory({"servers": {"test": sdk_server}})
    wait_until(lambda: toolman.server_state("test")["state"] == "ready", timeout=30, what="ready")
    return toolman


async def session(params: StdioServerParameters, mode: str) -> tuple[str, list[str], str]:
    async with Client(stdio_client(params), mode=mode, read_timeout_seconds=30) as client:
        tools = sorted(tool.name for tool in (await client.list_tools()).tools)
        echoed = await client.call_tool("test_echo", {"text": mode})
        assert echoed.structured_content is not None
        return client.protocol_version, tools, str(echoed.structured_content["result"])


@pytest.mark.parametrize(("mode", "version"), [("auto", "2026-07-28"), ("legacy", "2025-11-25")])
def test_the_sdk_client_speaks_either_era_through_the_wrapper(
    toolman: Toolman, mode: str, version: str
) -> None:
    spoken, tools, echoed = asyncio.run(session(wrapper(toolman), mode))
    assert spoken == version
    assert {"test_echo", "test_add"} <= set(tools)
    assert echoed == mode
    calls = toolman.audits(lambda r: r["name"] == "test_echo")
    assert calls[-1]["outcome"] == "ok"
    assert (calls[-1]["session"] is None) == (mode == "auto")  # no session in 2026-07-28


def test_a_discovery_probe_spawns_probes_and_kills_the_wrapper_cleanly(toolman: Toolman) -> None:
    """What a client's start-up probe does: spawn, ask server/discover, kill, start again."""

    async def probe() -> str:
        async with Client(stdio_client(wrapper(toolman)), mode="auto") as client:
            return client.protocol_version

    assert asyncio.run(probe()) == "2026-07-28"
    assert asyncio.run(probe()) == "2026-07-28"
