"""A downstream's log lines, sampling and elicitation during a call reach that call's client.

The scenario server (remote, Streamable HTTP) writes log lines while a tool
runs and asks its client for an LLM answer or for user input; through toolman
the official SDK client answers them as it would answer the server directly.
A client that cannot answer (no capability declared, or a call answered as
plain JSON) gets the downstream's error at once, and toolman keeps serving.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import mcp_types as types
import pytest
from conftest import Toolman, initialize
from downstreams import passthrough, scenario_server_url
from mcp import Client
from mcp.client.session import ClientRequestContext
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

__all__ = ["scenario_server_url"]  # the fixture, imported for pytest

Factory = Callable[..., Toolman]


@asynccontextmanager
async def answering_client(
    url: str, log: list[str], mode: str = "legacy", **callbacks: Any
) -> AsyncIterator[Client]:
    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        log.append(str(params.data))

    async with create_mcp_http_client() as http:
        transport = streamable_http_client(url, http_client=http)
        async with Client(
            transport, mode=mode, logging_callback=on_log, read_timeout_seconds=60, **callbacks
        ) as client:
            yield client


async def sample(
    _context: ClientRequestContext, params: types.CreateMessageRequestParams
) -> types.CreateMessageResult:
    asked = params.messages[0].content
    text = asked.text if isinstance(asked, types.TextContent) else "?"
    return types.CreateMessageResult(
        role="assistant",
        content=types.TextContent(type="text", text=f"echo of {text}"),
        model="test-model",
    )


async def elicit(
    _context: ClientRequestContext, params: types.ElicitRequestParams
) -> types.ElicitResult:
    assert isinstance(params, types.ElicitRequestFormParams)
    return types.ElicitResult(action="accept", content={"username": "ada", "email": "a@b.c"})


def text_of(result: types.CallToolResult) -> str:
    first = result.content[0]
    assert isinstance(first, types.TextContent)
    return first.text


def test_log_lines_sampling_and_elicitation_reach_the_calling_client(
    toolman_factory: Factory, scenario_server_url: str
) -> None:
    toolman = passthrough(toolman_factory, scenario_server_url)
    log: list[str] = []

    async def scenario() -> tuple[str, str, str]:
        async with answering_client(
            toolman.mcp_url, log, sampling_callback=sample, elicitation_callback=elicit
        ) as client:
            logged = await client.call_tool("test_tool_with_logging", {})
            sampled = await client.call_tool("test_sampling", {"prompt": "hello"})
            elicited = await client.call_tool("test_elicitation", {"message": "who?"})
            return text_of(logged), text_of(sampled), text_of(elicited)

    logged, sampled, elicited = asyncio.run(scenario())
    assert logged == "Tool with logging executed successfully"
    assert log == ["Tool execution started", "Tool processing data", "Tool execution completed"]
    assert sampled == "LLM response: echo of hello"
    assert elicited.startswith("User response: action=accept")
    assert '"username": "ada"' in elicited


@pytest.mark.filterwarnings("ignore:.*as of 2026-07-28")  # logging/setLevel: 2025 sessions
def test_each_session_gets_the_log_lines_at_its_own_level(
    toolman_factory: Factory, scenario_server_url: str
) -> None:
    """Two sessions share one downstream; one's logging/setLevel never silences the other."""
    toolman = passthrough(toolman_factory, scenario_server_url)
    verbose: list[str] = []
    quiet: list[str] = []

    async def scenario() -> None:
        async with (
            answering_client(toolman.mcp_url, verbose) as chatty,
            answering_client(toolman.mcp_url, quiet) as terse,
        ):
            await chatty.set_logging_level("info")
            await terse.set_logging_level("error")  # set last: the shared downstream stays at info
            for client in (chatty, terse):
                await client.call_tool("test_tool_with_logging", {})

    asyncio.run(scenario())
    assert verbose == ["Tool execution started", "Tool processing data", "Tool execution completed"]
    assert quiet == []  # the info lines are below the level this session asked for


def test_a_client_that_cannot_answer_gets_an_error_at_once_and_toolman_serves_on(
    toolman_factory: Factory, scenario_server_url: str
) -> None:
    toolman = passthrough(toolman_factory, scenario_server_url)

    async def without_capability() -> str:
        async with answering_client(toolman.mcp_url, []) as client:  # declares no sampling
            with pytest.raises(MCPError) as refused:
                await client.call_tool("test_sampling", {"prompt": "hello"})
            return refused.value.error.message

    assert "the client did not declare sampling" in asyncio.run(without_capability())

    # A client that takes only JSON cannot be asked anything before the answer.
    with httpx.Client(base_url=toolman.base_url, timeout=30) as http:
        json_only = {"accept": "application/json", "content-type": "application/json"}
        init = initialize()
        init["params"]["capabilities"] = {"sampling": {}}
        opened = http.post("/mcp", json=init, headers=json_only)
        session = {**json_only, "mcp-session-id": opened.headers["mcp-session-id"]}
        call = {
            "jsonrpc": "2.0",
            "id": 7,
            "method": "tools/call",
            "params": {"name": "test_sampling", "arguments": {"prompt": "hi"}},
        }
        answer = http.post("/mcp", json=call, headers=session)
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("application/json")
        assert answer.json()["id"] == 7
        assert "cannot carry sampling/createMessage" in answer.json()["error"]["message"]
        ping = {"jsonrpc": "2.0", "id": 8, "method": "ping"}
        assert http.post("/mcp", json=ping, headers=session).json()["result"] == {}


def test_a_2026_client_answers_the_downstreams_questions_as_input_required(
    toolman_factory: Factory, scenario_server_url: str
) -> None:
    """The SDK client in auto mode drives input_required itself: same answers as 2025."""
    toolman = passthrough(toolman_factory, scenario_server_url)

    async def scenario() -> tuple[str, str, str]:
        async with answering_client(
            toolman.mcp_url, [], mode="auto", sampling_callback=sample, elicitation_callback=elicit
        ) as client:
            sampled = await client.call_tool("test_sampling", {"prompt": "hello"})
            elicited = await client.call_tool("test_elicitation", {"message": "who?"})
            return client.protocol_version, text_of(sampled), text_of(elicited)

    version, sampled, elicited = asyncio.run(scenario())
    assert version == "2026-07-28"
    assert sampled == "LLM response: echo of hello"
    assert elicited.startswith("User response: action=accept")


def test_request_state_is_checked_and_an_unanswered_question_is_asked_again(
    toolman_factory: Factory, scenario_server_url: str
) -> None:
    toolman = passthrough(toolman_factory, scenario_server_url)
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {"sampling": {}},
    }
    headers = {"mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call",
               "mcp-name": "test_sampling", "accept": "application/json"}  # fmt: skip

    def call(**extra: Any) -> dict[str, Any]:
        params = {"name": "test_sampling", "arguments": {"prompt": "hi"}, "_meta": meta, **extra}
        body = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": params}
        with httpx.Client(base_url=toolman.base_url, timeout=30) as http:
            answer: dict[str, Any] = http.post("/mcp", json=body, headers=headers).json()
        return answer

    first = call()["result"]
    assert first["resultType"] == "input_required"
    [(key, question)] = first["inputRequests"].items()
    assert question["method"] == "sampling/createMessage"
    state = first["requestState"]
    assert call(requestState=state)["result"]["inputRequests"] == {key: question}  # again
    tampered = state[:-4] + ("AAAA" if not state.endswith("AAAA") else "BBBB")
    assert call(requestState=tampered)["error"]["code"] == -32602
    assert call(requestState="not even base64!")["error"]["code"] == -32602
    assert call(requestState=state + "\u00e9")["error"]["code"] == -32602  # not ASCII
    reply = {"role": "assistant", "model": "m", "content": {"type": "text", "text": "fine"}}
    done = call(requestState=state, inputResponses={key: reply})["result"]
    assert done["resultType"] == "complete"
    assert done["content"][0]["text"] == "LLM response: fine"
    assert call(requestState=state)["error"]["code"] == -32602  # finished: nothing waits
