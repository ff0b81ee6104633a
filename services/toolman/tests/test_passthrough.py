"""Passthrough mounting and the methods toolman relays to the server that owns them.

A server with ``"prefix": false`` exposes its own tool and prompt names; two
unprefixed servers claiming one name is a config error naming both, and
neither tool is exposed. ``logging/setLevel``, ``completion/complete`` and
``resources/subscribe``/``unsubscribe`` reach the downstream for the agents
whose policy lets them use it, and are refused like a read for the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import mcp_types as types
import pytest
from conftest import Toolman, mcp_client, wait_until
from downstreams import scenario_server_url
from mcp.shared.exceptions import MCPError

__all__ = ["scenario_server_url"]  # the fixture, imported for pytest

Factory = Callable[..., Toolman]
# A session to the scenario server: these relays (logging/setLevel, resources/subscribe)
# are 2025 methods, which 2026-07-28 removed (see downstreams.passthrough).
SCENARIOS: dict[str, Any] = {"prefix": False, "protocol": "2025"}
# The SDK warns that these methods are gone from 2026-07-28; this is the 2025 era on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:.*as of 2026-07-28")


def ready(toolman: Toolman, *servers: str) -> Toolman:
    for server in servers:
        wait_until(
            lambda name=server: toolman.server_state(name)["state"] == "ready",  # type: ignore[misc]
            timeout=30,
            what=f"server {server} ready",
        )
    return toolman


def test_an_unprefixed_server_keeps_its_names_beside_a_prefixed_one(
    toolman_factory: Factory, sdk_server: dict[str, Any], time_server: dict[str, Any]
) -> None:
    config = {"servers": {"own": {**sdk_server, "prefix": False}, "time": time_server}}
    toolman = ready(toolman_factory(config), "own", "time")

    async def scenario() -> tuple[set[str], set[str], str]:
        async with mcp_client(toolman.mcp_url) as client:
            tools = {tool.name for tool in (await client.list_tools()).tools}
            prompts = {prompt.name for prompt in (await client.list_prompts()).prompts}
            echoed = await client.call_tool("echo", {"text": "as is"})
            assert echoed.structured_content is not None
            return tools, prompts, str(echoed.structured_content["result"])

    tools, prompts, echoed = asyncio.run(scenario())
    assert {"echo", "add", "time_get_current_time"} <= tools
    assert "own_echo" not in tools
    assert "greet" in prompts
    assert echoed == "as is"
    audit = toolman.audits(lambda r: r.get("name") == "echo")[0]
    assert audit["server"] == "own"


def test_two_unprefixed_servers_with_one_tool_name_is_a_config_error_naming_both(
    toolman_factory: Factory, sdk_server: dict[str, Any]
) -> None:
    config = {
        "servers": {
            "first": {**sdk_server, "prefix": False},
            "second": {**sdk_server, "prefix": False},
        }
    }
    toolman = ready(toolman_factory(config), "first", "second")
    status = toolman.ready()
    errors = " | ".join(status["config_errors"])
    assert "tool 'echo' of server 'first' and tool 'echo' of server 'second'" in errors
    assert '"prefix": true' in errors
    assert status["degraded"] is True

    async def names() -> set[str]:
        async with mcp_client(toolman.mcp_url) as client:
            return {tool.name for tool in (await client.list_tools()).tools}

    assert "echo" not in asyncio.run(names())
    logged = [r for r in toolman.log_records() if "config error" in str(r.get("msg"))]
    assert logged
    assert "'first'" in str(logged[0]["msg"])
    assert logged[0]["level"] == "error"


def test_a_prefix_that_is_not_a_boolean_stops_start_up_naming_the_key(
    toolman_factory: Factory, sdk_server: dict[str, Any]
) -> None:
    toolman = toolman_factory({"servers": {"own": {**sdk_server, "prefix": "no"}}}, ready=False)
    assert toolman.process is not None
    assert toolman.process.wait(timeout=30) != 0
    assert "servers.own.prefix" in toolman.log_text()


def test_logging_completion_and_subscriptions_reach_the_downstream(
    toolman_factory: Factory, scenario_server_url: str
) -> None:
    config = {"servers": {"scenarios": SCENARIOS | {"url": scenario_server_url}}}
    toolman = ready(toolman_factory(config), "scenarios")

    async def scenario() -> tuple[types.ServerCapabilities | None, list[str]]:
        async with mcp_client(toolman.mcp_url, mode="legacy") as client:
            await client.set_logging_level("debug")
            prompt = types.PromptReference(type="ref/prompt", name="test_prompt_with_arguments")
            completed = await client.complete(prompt, {"name": "arg1", "value": "par"})
            await client.subscribe_resource("test://watched-resource")
            await client.unsubscribe_resource("test://watched-resource")
            with pytest.raises(MCPError) as unknown:
                await client.subscribe_resource("test://not-there")
            assert unknown.value.error.code == -32002
            return client.server_capabilities, completed.completion.values

    capabilities, values = asyncio.run(scenario())
    assert capabilities is not None
    assert capabilities.logging is not None
    assert capabilities.completions is not None
    assert capabilities.resources is not None
    assert capabilities.resources.subscribe is True
    assert values == ["paris", "park", "party"]


def test_an_agent_without_the_server_gets_nothing_relayed(
    toolman_factory: Factory, scenario_server_url: str
) -> None:
    config = {
        "servers": {"scenarios": SCENARIOS | {"url": scenario_server_url}},
        "agent_policies": {"outsider": {"allowed_servers": []}},
    }
    toolman = ready(toolman_factory(config, env={"AGENT_NAME": "outsider"}), "scenarios")

    async def scenario() -> tuple[types.ServerCapabilities | None, int, int]:
        async with mcp_client(toolman.mcp_url, mode="legacy") as client:
            with pytest.raises(MCPError) as subscribe:
                await client.subscribe_resource("test://watched-resource")
            prompt = types.PromptReference(type="ref/prompt", name="test_prompt_with_arguments")
            with pytest.raises(MCPError) as complete:
                await client.complete(prompt, {"name": "arg1", "value": "par"})
            return client.server_capabilities, subscribe.value.error.code, complete.value.error.code

    capabilities, subscribe_code, complete_code = asyncio.run(scenario())
    assert capabilities is not None
    assert capabilities.logging is None
    assert capabilities.completions is None
    assert subscribe_code == -32002
    assert complete_code == -32602
