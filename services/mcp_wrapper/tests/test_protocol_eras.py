"""2026-era (stateless) requests: routing headers mirrored from the body, and cancellation by
closing the request's stream instead of a notification; plus stdin framing limits."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from fake_toolman import MODERN_KEY, FakeToolman

from mcp_wrapper.stdio import LineSource, LineTooLong


def modern_call(request_id: int, name: str, **arguments: Any) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments, "_meta": {MODERN_KEY: "2026-07-28"}},
    }


def test_modern_requests_carry_their_routing_headers(fake: FakeToolman, spawn: Any) -> None:
    wrapper = spawn()
    wrapper.send(modern_call(1, "echo", text="x"))
    assert wrapper.read_answer(1)["result"]["content"][0]["text"] == "x"
    wrapper.send(modern_call(2, "ünïcode tool"))
    wrapper.read_answer(2)
    plain, encoded = fake.messages("tools/call")
    assert plain.headers["mcp-protocol-version"] == "2026-07-28"
    assert plain.headers["mcp-method"] == "tools/call"
    assert plain.headers["mcp-name"] == "echo"
    assert encoded.headers["mcp-name"] == "=?base64?w7xuw69jb2RlIHRvb2w=?="


def modern(request_id: int, method: str, **params: Any) -> dict[str, Any]:
    params["_meta"] = {MODERN_KEY: "2026-07-28"}
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


def test_arguments_marked_x_mcp_header_travel_as_mcp_param_headers(
    fake: FakeToolman, spawn: Any
) -> None:
    wrapper = spawn()
    wrapper.send(modern(1, "tools/list"))
    assert "regional" in [tool["name"] for tool in wrapper.read_answer(1)["result"]["tools"]]
    arguments = {"region": "eu-west 1", "limits": {"max": 5}, "note": "not a header"}
    wrapper.send(modern(2, "tools/call", name="regional", arguments=arguments))
    assert wrapper.read_answer(2)["result"]["content"][0]["text"] == "regional eu-west 1"
    wrapper.send(modern(3, "tools/call", name="regional", arguments={"region": "zürich"}))
    wrapper.read_answer(3)
    first, second = fake.messages("tools/call")
    assert first.headers["mcp-param-region"] == "eu-west 1"
    assert first.headers["mcp-param-max"] == "5"
    assert not any(name.startswith("mcp-param-note") for name in first.headers)
    assert second.headers["mcp-param-region"] == "=?base64?esO8cmljaA==?="
    assert "mcp-param-max" not in second.headers


def test_a_modern_request_after_a_session_carries_no_session(fake: FakeToolman, spawn: Any) -> None:
    wrapper = spawn()
    wrapper.initialize()
    wrapper.call_tool(1, "echo", text="in the session")
    wrapper.read_answer(1)
    wrapper.send(modern_call(2, "echo", text="stateless"))
    assert wrapper.read_answer(2)["result"]["content"][0]["text"] == "stateless"
    in_session, stateless = fake.messages("tools/call")
    assert "mcp-session-id" in in_session.headers
    assert "mcp-session-id" not in stateless.headers
    assert stateless.headers["mcp-protocol-version"] == "2026-07-28"
    assert not any(name.startswith("mcp-param-") for name in in_session.headers)


def test_handshake_requests_do_not_get_modern_headers(fake: FakeToolman, spawn: Any) -> None:
    wrapper = spawn()
    wrapper.initialize()
    wrapper.call_tool(1, "echo", text="x")
    wrapper.read_answer(1)
    headers = fake.messages("tools/call")[0].headers
    assert "mcp-method" not in headers
    assert "mcp-name" not in headers


def test_modern_timeout_closes_the_stream_and_sends_no_notification(
    fake: FakeToolman, spawn: Any
) -> None:
    wrapper = spawn(MCP_WRAPPER_TIMEOUT="0.5")
    wrapper.send(modern_call(1, "slow", seconds=2))
    assert wrapper.read_answer(1, timeout=5)["error"]["code"] == -32001
    time.sleep(0.5)  # give a stray notification time to arrive
    assert fake.messages("notifications/cancelled") == []


def test_modern_client_cancel_is_not_forwarded_and_not_answered(
    fake: FakeToolman, spawn: Any
) -> None:
    wrapper = spawn()
    wrapper.send(modern_call(1, "slow", seconds=1.5))
    assert fake.wait_for(lambda: "slow" in fake.tool_calls)
    wrapper.send(
        {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}}
    )
    wrapper.assert_silent(2.0)
    assert fake.messages("notifications/cancelled") == []


def lines_from(chunks: list[bytes], limit: int) -> list[bytes | str]:
    """Feed ``chunks`` one by one to a LineSource over a reader with ``limit``; collect results."""

    async def scenario() -> list[bytes | str]:
        reader = asyncio.StreamReader(limit=limit)
        source = LineSource(reader)

        async def feed() -> None:
            for chunk in chunks:
                reader.feed_data(chunk)
                await asyncio.sleep(0)
            reader.feed_eof()

        feeder = asyncio.create_task(feed())
        out: list[bytes | str] = []
        async with asyncio.timeout(5):
            while True:
                try:
                    line = await source.readline()
                except LineTooLong:
                    out.append("too long")
                    continue
                if line is None:
                    break
                out.append(line)
        await feeder
        return out

    return asyncio.run(scenario())


@pytest.mark.parametrize("chunk", [1, 5, 1000])
def test_an_overlong_line_is_dropped_whole(chunk: int) -> None:
    data = b'{"a":1}\n' + b"x" * 50 + b"\n" + b'{"b":2}\n' + b"tail"
    chunks = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    assert lines_from(chunks, limit=16) == [
        b'{"a":1}',
        "too long",
        b'{"b":2}',
        b"tail",
    ]
