"""Tool names a client would reject, end to end: listed valid, called through, and when down.

The SDK test server gets extra tools with a name over 64 characters, one with
a space, and a colliding pair with a slash and an underscore; toolman must list
each under a valid name, route a call of that name to the right tool, and,
while the server is down, answer the mapped name with -32010 like any other.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from typing import Any

import pytest
from conftest import Toolman, mcp_client, wait_until
from mcp.shared.exceptions import MCPError

from toolman.naming import assign, is_valid

LONG = "a_tool_name_that_is_much_longer_than_the_sixty_four_characters_clients_take"
BLOCKED = "another_tool_name_that_is_much_longer_than_sixty_four_characters_and_blocked"
AWKWARD = [LONG, BLOCKED, "has space", "path/to", "path_to"]
# Kept down long enough to observe; toolman is stopped before it would return.
SLOW_RESTART = {"backoff_initial_seconds": 30, "backoff_max_seconds": 30}
Factory = Callable[..., Toolman]


def test_awkward_tool_names_are_listed_valid_called_and_unavailable_when_down(
    toolman_factory: Factory, sdk_server: dict[str, Any]
) -> None:
    assert len(LONG) > 64
    config = {
        "servers": {"test": {**sdk_server, "env": {"TEST_SERVER_EXTRA_TOOLS": ",".join(AWKWARD)}}},
        "default_policy": {"blocked_tools": [f"test/{BLOCKED}"]},
        "supervisor": SLOW_RESTART,
    }
    toolman = toolman_factory(config)
    expected = assign([("test", tool) for tool in AWKWARD], "_")
    exposed = {tool: expected[("test", tool)] for tool in AWKWARD}
    assert exposed["path_to"] == "test_path_to"  # needed no rewriting: keeps its name
    assert len({exposed[LONG], exposed["path/to"]}) == 2
    assert all(is_valid(name) for name in exposed.values())

    async def listed_and_called() -> tuple[set[str], dict[str, str], int]:
        async with mcp_client(toolman.mcp_url) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            answers = {}
            for tool in (LONG, "has space", "path/to", "path_to"):
                result = await client.call_tool(exposed[tool], {})
                assert not result.is_error, result
                assert result.structured_content is not None
                answers[tool] = result.structured_content["result"]
            pid = (await client.call_tool("test_pid", {})).structured_content
            assert pid is not None
            return names, answers, int(pid["result"])

    names, answers, pid = asyncio.run(listed_and_called())
    for name in names:
        assert is_valid(name), name
    assert {exposed[t] for t in (LONG, "has space", "path/to", "path_to")} <= names
    assert exposed[BLOCKED] not in names
    assert answers == {tool: f"extra {tool}" for tool in answers}  # each reached its own tool

    os.kill(pid, signal.SIGKILL)
    wait_until(
        lambda: toolman.server_state("test")["state"] != "ready",
        timeout=20,
        what="the killed server to be noticed",
    )

    async def called_while_down() -> dict[str, int]:
        codes = {}
        async with mcp_client(toolman.mcp_url) as client:
            for name in (exposed[LONG], exposed["path/to"], "test_echo", exposed[BLOCKED]):
                with pytest.raises(MCPError) as caught:
                    await client.call_tool(name, {})
                codes[name] = caught.value.code
        return codes

    codes = asyncio.run(called_while_down())
    assert codes == {
        exposed[LONG]: -32010,
        exposed["path/to"]: -32010,
        "test_echo": -32010,
        exposed[BLOCKED]: -32602,  # blocked stays blocked, down or not
    }
    records = toolman.audits(lambda r: r["name"] in codes and r["outcome"] != "ok", count=4)
    decisions = {r["name"]: (r["decision"], r["server"]) for r in records}
    assert decisions[exposed[LONG]] == ("server_unavailable", "test")
    assert decisions[exposed["path/to"]] == ("server_unavailable", "test")
    assert decisions[exposed[BLOCKED]] == ("blocked", "test")
