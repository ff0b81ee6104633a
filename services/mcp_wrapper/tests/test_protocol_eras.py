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
