"""Config reloads (SIGHUP and file changes) keep sessions; a bad config is refused."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import mcp_types as types
import pytest
from conftest import Toolman, alive, initialize, mcp_client, wait_until
from mcp import Client
from mcp.client.session import IncomingMessage
from mcp.shared.exceptions import MCPError

Factory = Callable[..., Toolman]


class Notes:
    def __init__(self) -> None:
        self.tool_changes = 0

    async def __call__(self, message: IncomingMessage) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            self.tool_changes += 1

    async def wait(self, count: int, timeout: float = 20) -> None:
        for _ in range(int(timeout / 0.05)):
            if self.tool_changes >= count:
                return
            await asyncio.sleep(0.05)
        pytest.fail(f"no tools/list_changed number {count} within {timeout} s")


async def names(client: Client) -> set[str]:
    return {tool.name for tool in (await client.list_tools()).tools}


def test_sighup_applies_a_new_config_without_dropping_the_session(
    toolman_factory: Factory, sdk_server: dict[str, Any], time_server: dict[str, Any]
) -> None:
    config: dict[str, Any] = {
        "servers": {"test": sdk_server},
        "reload": {"watch_interval_seconds": 0},
    }
    toolman = toolman_factory(config)
    notes = Notes()

    async def scenario() -> None:
        async with mcp_client(toolman.mcp_url, message_handler=notes, mode="legacy") as client:
            assert "test_add" in await names(client)
            pid = toolman.server_state("test")["pid"]

            toolman.write_config(
                {
                    **config,
                    "servers": {"test": sdk_server, "time": time_server},
                    "default_policy": {"blocked_tools": ["test_add"]},
                }
            )
            toolman.signal(signal.SIGHUP)
            await notes.wait(1)
            wait_until(lambda: toolman.ready()["servers"].get("time", {}).get("state") == "ready",
                       timeout=20, what="the new server")  # fmt: skip
            await notes.wait(2)
            visible = await names(client)  # the same session, still valid
            assert "time_get_current_time" in visible
            assert "test_add" not in visible
            with pytest.raises(MCPError):
                await client.call_tool("test_add", {"a": 1, "b": 2})
            echoed = await client.call_tool("test_echo", {"text": "same session"})
            assert echoed.structured_content == {"result": "same session"}
            assert toolman.server_state("test")["pid"] == pid  # unchanged server kept running

            toolman.write_config({**config, "servrs": {}})
            toolman.signal(signal.SIGHUP)
            wait_until(lambda: "config reload refused" in toolman.log_text(), timeout=10,
                       what="the refusal")  # fmt: skip
            assert "did you mean 'servers'" in toolman.log_text()
            still = await names(client)
            assert still == visible  # the old config keeps serving

    asyncio.run(scenario())


def test_a_changed_file_is_reloaded_and_removed_servers_are_reaped(
    toolman_factory: Factory, sdk_server: dict[str, Any], time_server: dict[str, Any]
) -> None:
    config: dict[str, Any] = {
        "servers": {"test": sdk_server, "time": time_server},
        "reload": {"watch_interval_seconds": 0.2},
    }
    toolman = toolman_factory(config)
    time_pid = toolman.server_state("time")["pid"]
    notes = Notes()

    async def scenario() -> None:
        async with mcp_client(toolman.mcp_url, message_handler=notes, mode="legacy") as client:
            assert "time_get_current_time" in await names(client)
            toolman.write_config({**config, "servers": {"test": sdk_server}})
            await notes.wait(1)
            visible = await names(client)
            assert "time_get_current_time" not in visible
            assert "test_echo" in visible

    asyncio.run(scenario())
    assert "time" not in toolman.ready()["servers"]
    wait_until(lambda: not alive(time_pid), timeout=10, what="the removed server to exit")


def test_config_errors_stop_start_up_naming_the_key(toolman_factory: Factory) -> None:
    toolman = toolman_factory(
        {"servers": {"git": {"comand": "x"}}, "agent_policies": {}}, ready=False
    )
    assert toolman.process is not None
    assert toolman.process.wait(timeout=20) == 2
    text = toolman.log_text()
    assert "servers.git.comand: unknown key (did you mean 'command'?)" in text


def test_a_rotated_token_file_applies_without_sighup(
    toolman_factory: Factory, tmp_path: Path
) -> None:
    # Kubernetes rotates a Secret volume by swapping the ..data symlink to a new directory.
    secrets = tmp_path / "secrets"
    (secrets / "v1").mkdir(parents=True)
    (secrets / "v1" / "token").write_text("old-token-0123456789\n")
    (secrets / "..data").symlink_to("v1")
    (secrets / "token").symlink_to("..data/token")
    config = {
        "auth": {"tokens": [{"agent": "ops", "file": str(secrets / "token")}]},
        "reload": {"watch_interval_seconds": 0.2},
    }
    toolman = toolman_factory(config)
    config_mtime = toolman.config_path.stat().st_mtime_ns

    def status(token: str) -> int:
        headers = {"authorization": f"Bearer {token}", "accept": "application/json"}
        return httpx.post(
            toolman.mcp_url, json=initialize(), headers=headers, timeout=10
        ).status_code

    assert status("old-token-0123456789") == 200
    assert status("new-token-0123456789") == 401

    (secrets / "v2").mkdir()
    (secrets / "v2" / "token").write_text("new-token-0123456789\n")
    (secrets / "..data_tmp").symlink_to("v2")
    (secrets / "..data_tmp").replace(secrets / "..data")  # atomic, like the kubelet
    wait_until(
        lambda: status("old-token-0123456789") == 401,
        timeout=10,
        what="the rotated token file to be applied",
    )
    assert status("new-token-0123456789") == 200
    assert toolman.config_path.stat().st_mtime_ns == config_mtime  # only the secret changed
