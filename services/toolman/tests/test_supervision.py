"""Process-level behaviour: kill -9 of a downstream, broken servers, timeouts, reaping.

Each test starts its own toolman from the console script and watches it from
outside: /ready, /proc, the SDK client's notifications.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import mcp_types as types
import pytest
from conftest import Toolman, alive, descendants, initialize, mcp_client, wait_until
from mcp.client.session import IncomingMessage
from mcp.shared.exceptions import MCPError

FAST_RESTART = {"backoff_initial_seconds": 0.2, "backoff_max_seconds": 1}
Factory = Callable[..., Toolman]


class ListChanges:
    """A message handler that counts notifications/tools/list_changed."""

    def __init__(self) -> None:
        self.count = 0

    async def __call__(self, message: IncomingMessage) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            self.count += 1

    async def wait_for(self, count: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while self.count < count:
            if time.monotonic() > deadline:
                pytest.fail(f"only {self.count} of {count} tools/list_changed within {timeout} s")
            await asyncio.sleep(0.05)


async def tool_names(client: Any) -> set[str]:
    return {tool.name for tool in (await client.list_tools()).tools}


def test_a_killed_downstream_vanishes_fails_fast_and_returns(
    toolman_factory: Factory, sdk_server: dict[str, Any], time_server: dict[str, Any]
) -> None:
    # A 2 s backoff keeps the server down long enough to observe, even on a busy machine.
    restart = {"backoff_initial_seconds": 2, "backoff_max_seconds": 2}
    toolman = toolman_factory(
        {"servers": {"test": sdk_server, "time": time_server}, "supervisor": restart}
    )
    changes = ListChanges()

    async def scenario() -> None:
        async with mcp_client(toolman.mcp_url, message_handler=changes, mode="legacy") as client:
            assert {"test_echo", "time_get_current_time"} <= await tool_names(client)
            first = (await client.call_tool("test_pid", {})).structured_content
            assert first is not None
            assert first["result"] == toolman.server_state("test")["pid"]

            os.kill(first["result"], signal.SIGKILL)
            await changes.wait_for(1)
            names = await tool_names(client)
            assert "test_echo" not in names
            assert "time_get_current_time" in names  # the other server is untouched
            started = time.monotonic()
            with pytest.raises(MCPError) as caught:
                await client.call_tool("test_echo", {"text": "x"})
            assert time.monotonic() - started < 2.0
            assert caught.value.code == -32010
            assert "unavailable" in caught.value.error.message

            await changes.wait_for(2)
            assert "test_echo" in await tool_names(client)
            second = (await client.call_tool("test_pid", {})).structured_content
            assert second is not None
            assert second["result"] != first["result"]
            assert not alive(first["result"])

    asyncio.run(scenario())
    state = toolman.server_state("test")
    assert state["state"] == "ready"
    assert state["restarts"] >= 1


def test_no_child_is_left_after_many_sessions_or_after_shutdown(
    toolman_factory: Factory, sdk_server: dict[str, Any], peer_python: Path
) -> None:
    # A downstream that forks a grandchild: the process-group kill must reap it too.
    forking = {
        "command": "sh",
        "args": ["-c", f"sleep 300 & exec {peer_python} {sdk_server['args'][0]}"],
    }
    toolman = toolman_factory({"servers": {"test": sdk_server, "forking": forking}})
    before = descendants(toolman.pid)
    assert len(before) >= 3  # two servers and the sleeping grandchild

    async def one_session(index: int) -> None:
        async with mcp_client(toolman.mcp_url, mode="legacy") as client:
            result = await client.call_tool("test_echo", {"text": str(index)})
            assert result.structured_content == {"result": str(index)}

    async def scenario() -> None:
        for index in range(15):
            await one_session(index)
        await asyncio.gather(*(one_session(index) for index in range(15, 30)))

    asyncio.run(scenario())
    assert descendants(toolman.pid) == before  # sessions never spawn or leak processes
    assert toolman.ready()["sessions"] == 0  # clients ended their sessions with DELETE

    # uvicorn re-raises SIGTERM after its graceful shutdown, so the status is -15.
    assert toolman.stop() in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in toolman.log_text()
    wait_until(lambda: not any(alive(pid) for pid in before), timeout=10, what="children to exit")


def test_a_broken_server_never_blocks_start_up_or_the_others(
    toolman_factory: Factory, sdk_server: dict[str, Any], peer_python: Path
) -> None:
    toolman = toolman_factory(
        {
            "servers": {
                "test": sdk_server,
                "missing": {"command": "/nonexistent/mcp-server"},
                "crashing": {"command": str(peer_python), "args": ["-c", "raise SystemExit(3)"]},
                "silent": {"command": "sleep", "args": ["300"], "startup_timeout_seconds": 1},
            },
            "supervisor": FAST_RESTART,
        }
    )
    status = toolman.ready()
    assert status["degraded"] is True
    servers = status["servers"]
    assert servers["test"]["state"] == "ready"
    assert "command not found: /nonexistent/mcp-server" in servers["missing"]["last_error"]
    assert "no answer within 1 s" in servers["silent"]["last_error"]
    wait_until(
        lambda: toolman.server_state("crashing")["restarts"] >= 2, timeout=20, what="restarts"
    )

    async def scenario() -> set[str]:
        async with mcp_client(toolman.mcp_url) as client:
            return await tool_names(client)

    assert {name.split("_")[0] for name in asyncio.run(scenario())} == {"test"}


def test_slow_calls_time_out_and_can_be_cancelled(
    toolman_factory: Factory, sdk_server: dict[str, Any]
) -> None:
    toolman = toolman_factory(
        {"servers": {"test": {**sdk_server, "timeout_seconds": 1}, "patient": sdk_server}}
    )
    accept = {"accept": "application/json, text/event-stream"}
    with httpx.Client(base_url=toolman.base_url, timeout=30, headers=accept) as http:
        init = http.post("/mcp", json=initialize())
        session = {"mcp-session-id": init.headers["mcp-session-id"]}

        def sleep_call(
            request_id: int, seconds: float, tool: str = "test_sleep"
        ) -> tuple[httpx.Response, float]:
            started = time.monotonic()
            body = {"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
                    "params": {"name": tool, "arguments": {"seconds": seconds}}}  # fmt: skip
            return http.post("/mcp", json=body, headers=session), time.monotonic() - started

        timed_out, took = sleep_call(1, 5)
        assert timed_out.json()["error"]["code"] == -32011
        assert took < 4

        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(sleep_call, 2, 10, "patient_sleep")
            cancel = {
                "jsonrpc": "2.0",
                "method": "notifications/cancelled",
                "params": {"requestId": 2},
            }
            deadline = time.monotonic() + 5
            while not pending.done() and time.monotonic() < deadline:  # until it is in flight
                assert http.post("/mcp", json=cancel, headers=session).status_code == 202
                time.sleep(0.05)
            cancelled, took = pending.result(timeout=10)
        assert took < 5
    assert cancelled.json()["error"]["code"] == -32800
    outcomes = [r["outcome"] for r in toolman.audits(count=2)]
    assert outcomes == ["timeout", "cancelled"]


def test_ready_waits_for_the_first_start_attempts(
    toolman_factory: Factory, sdk_server: dict[str, Any]
) -> None:
    silent = {"command": "sleep", "args": ["300"], "startup_timeout_seconds": 8}
    toolman = toolman_factory({"servers": {"test": sdk_server, "silent": silent}}, ready=False)

    def health() -> bool:
        try:
            return httpx.get(f"{toolman.base_url}/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(health, timeout=30, what="/health")
    early = httpx.get(f"{toolman.base_url}/ready", timeout=5)
    assert early.status_code == 503
    assert early.json()["ready"] is False
    wait_until(
        lambda: httpx.get(f"{toolman.base_url}/ready", timeout=5).status_code == 200,
        timeout=30, what="/ready after the silent server's start-up timeout",
    )  # fmt: skip
    assert toolman.server_state("silent")["state"] in ("down", "starting")


def test_downstreams_die_with_a_killed_toolman(
    toolman_factory: Factory, sdk_server: dict[str, Any]
) -> None:
    toolman = toolman_factory({"servers": {"test": sdk_server}})
    child = toolman.server_state("test")["pid"]
    assert alive(child)
    toolman.signal(signal.SIGKILL)  # no shutdown code runs
    assert toolman.process is not None
    toolman.process.wait(timeout=10)
    wait_until(lambda: not alive(child), timeout=10, what="the orphaned server to be killed")
