"""A remote Streamable HTTP downstream: the SDK test server over HTTP, behind toolman."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import mcp_types as types
import pytest
from conftest import SDK_SERVER, Toolman, free_port, mcp_client, wait_until
from mcp.client.session import IncomingMessage
from mcp.shared.exceptions import MCPError

Factory = Callable[..., Toolman]


class Remote:
    """The SDK test server serving Streamable HTTP on 127.0.0.1; restartable on its port."""

    def __init__(self, python: Path) -> None:
        self.python = python
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [str(self.python), str(SDK_SERVER), "--http", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

        def up() -> bool:
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/", timeout=1)
                return True
            except httpx.TransportError:
                return False

        wait_until(up, timeout=30, what="the remote SDK server")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def remote(peer_python: Path) -> Iterator[Remote]:
    server = Remote(peer_python)
    server.start()
    yield server
    server.kill()


def test_a_remote_server_is_listed_called_and_reconnected(
    toolman_factory: Factory, remote: Remote
) -> None:
    toolman = toolman_factory(
        {
            "servers": {"remote": {"url": remote.url, "headers": {"X-Test": "yes"}}},
            "supervisor": {"backoff_initial_seconds": 0.2, "backoff_max_seconds": 1},
        }
    )
    assert toolman.server_state("remote")["transport"] == "http"
    changes: list[str] = []

    async def on_message(message: IncomingMessage) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changes.append("tools")

    async def wait_changes(count: int) -> None:
        for _ in range(400):
            if len(changes) >= count:
                return
            await asyncio.sleep(0.05)
        pytest.fail(f"expected {count} tools/list_changed, got {len(changes)}")

    updates: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append(progress)

    async def scenario() -> None:
        async with mcp_client(toolman.mcp_url, message_handler=on_message, mode="legacy") as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            assert {"remote_echo", "remote_count"} <= names
            echoed = await client.call_tool("remote_echo", {"text": "over http"})
            assert echoed.structured_content == {"result": "over http"}
            counted = await client.call_tool(
                "remote_count", {"steps": 2}, progress_callback=on_progress
            )
            assert counted.structured_content == {"result": "counted 2"}
            assert updates == [1, 2]

            remote.kill()
            await wait_changes(1)
            with pytest.raises(MCPError) as caught:
                await client.call_tool("remote_echo", {"text": "x"})
            assert caught.value.code == -32010

            remote.start()
            await wait_changes(2)
            again = await client.call_tool("remote_echo", {"text": "back"})
            assert again.structured_content == {"result": "back"}

    asyncio.run(scenario())
    assert toolman.server_state("remote")["restarts"] >= 1


def test_an_unreachable_remote_is_down_and_the_rest_serves(
    toolman_factory: Factory, sdk_server: dict[str, Any]
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/mcp"
    toolman = toolman_factory({"servers": {"gone": {"url": dead}, "test": sdk_server}})
    state = toolman.server_state("gone")
    assert state["state"] in ("down", "starting")
    assert toolman.server_state("test")["state"] == "ready"


def test_only_a_remote_is_told_toolman_can_sample_and_elicit(
    toolman_factory: Factory, remote: Remote, sdk_server: dict[str, Any]
) -> None:
    """Sampling and elicitation are relayed only from a remote's call; stdio is not offered them."""
    servers = {"local": sdk_server, "remote": {"url": remote.url, "protocol": "2025"}}
    toolman = toolman_factory({"servers": servers})

    async def declared(client_name: str) -> set[str]:
        async with mcp_client(toolman.mcp_url, mode="legacy") as client:
            result = await client.call_tool(f"{client_name}_client_capabilities", {})
            assert isinstance(result.structured_content, dict)
            return set(result.structured_content["result"])

    assert not asyncio.run(declared("local")) & {"sampling", "elicitation"}
    assert {"sampling", "elicitation"} <= asyncio.run(declared("remote"))
