"""The reference server-everything (node) behind toolman: tools, resources, prompts, progress."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from typing import Any

import pytest
from conftest import PEERS_DIR, Toolman, mcp_client, missing

ENTRY = (
    PEERS_DIR
    / "node"
    / "node_modules"
    / "@modelcontextprotocol"
    / "server-everything"
    / "dist"
    / "index.js"
)


@pytest.fixture
def everything() -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        missing("node is not on PATH")
    if not ENTRY.exists():
        missing(f"@modelcontextprotocol/server-everything is not installed at {ENTRY}")
    return {"command": node, "args": [str(ENTRY), "stdio"]}


def test_server_everything_through_toolman(
    toolman_factory: Callable[..., Toolman], everything: dict[str, Any]
) -> None:
    toolman = toolman_factory({"servers": {"everything": everything}})
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    async def scenario() -> tuple[set[str], Any, Any, int, int]:
        async with mcp_client(toolman.mcp_url) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            echo = await client.call_tool("everything_echo", {"message": "hello"})
            total = await client.call_tool("everything_get-sum", {"a": 2, "b": 40})
            await client.call_tool(
                "everything_trigger-long-running-operation", {"duration": 0.3, "steps": 3},
                progress_callback=on_progress,
            )  # fmt: skip
            resources = len((await client.list_resources()).resources)
            prompts = len((await client.list_prompts()).prompts)
            return names, echo, total, resources, prompts

    names, echo, total, resources, prompts = asyncio.run(scenario())
    assert {"everything_echo", "everything_get-sum"} <= names
    assert echo.content[0].text == "Echo: hello"
    assert "42" in total.content[0].text
    assert seen == [1, 2, 3]
    assert resources > 0
    assert prompts > 0
