"""Direct mode: the real mcp-wrapper process between test pipes and a fake toolman on loopback."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from conftest import INIT_PARAMS
from fake_toolman import FakeToolman


@pytest.mark.parametrize("sse", [True, False], ids=["sse-answers", "json-answers"])
def test_initialize_and_call_answer_one_line_each(fake: FakeToolman, spawn: Any, sse: bool) -> None:
    fake.answer_with_sse = sse
    wrapper = spawn()
    answer = wrapper.initialize()
    assert answer["result"]["serverInfo"]["name"] == "fake-toolman"
    wrapper.call_tool(7, "echo", text="hello\nworld")
    answer = wrapper.read_answer(7)
    assert answer == {
        "jsonrpc": "2.0",
        "id": 7,
        "result": {"content": [{"type": "text", "text": "hello\nworld"}]},
    }
    assert all(line.count(b"\n") == 1 for line in wrapper.raw_stdout)


def test_post_headers_follow_the_spec(fake: FakeToolman, spawn: Any) -> None:
    wrapper = spawn()
    wrapper.initialize()
    wrapper.request(2, "tools/list")
    wrapper.read_answer(2)
    initialize = fake.messages("initialize")[0]
    tools_list = fake.messages("tools/list")[0]
    for received in (initialize, tools_list):
        accept = received.headers["accept"]
        assert "application/json" in accept
        assert "text/event-stream" in accept
        assert received.headers["content-type"] == "application/json"
    # The session id and negotiated version are captured after initialize, sent after it.
    assert "mcp-session-id" not in initialize.headers
    assert "mcp-protocol-version" not in initialize.headers
    assert tools_list.headers["mcp-session-id"] in fake.sessions
    assert tools_list.headers["mcp-protocol-version"] == "2025-06-18"
    assert fake.messages("notifications/initialized")[0].headers["mcp-session-id"] in fake.sessions


def test_notifications_are_forwarded_and_never_answered(fake: FakeToolman, spawn: Any) -> None:
    wrapper = spawn()
    wrapper.initialize()
    wrapper.send({"jsonrpc": "2.0", "method": "notifications/roots/list_changed"})
    assert fake.wait_for(lambda: bool(fake.messages("notifications/roots/list_changed")))
    wrapper.assert_silent(0.3)


def test_slow_call_does_not_block_a_ping(fake: FakeToolman, spawn: Any) -> None:
    wrapper = spawn()
    wrapper.initialize()
    started = time.monotonic()
    wrapper.call_tool("slow-1", "slow", seconds=2)
    wrapper.request("ping-1", "ping")
    first = wrapper.read(timeout=5)
    assert first["id"] == "ping-1"
    assert time.monotonic() - started < 1.5
    second = wrapper.read(timeout=5)
    assert second["id"] == "slow-1"
    assert second["result"]["content"][0]["text"] == "slow done"


def test_concurrent_answers_are_matched_by_id(fake: FakeToolman, spawn: Any) -> None:
    wrapper = spawn()
    wrapper.initialize()
    for n in range(20):
        wrapper.call_tool(n, "echo", text=f"call {n}")
    answers = [wrapper.read() for _ in range(20)]
    assert sorted(a["id"] for a in answers) == list(range(20))
    assert all(a["result"]["content"][0]["text"] == f"call {a['id']}" for a in answers)


def test_server_messages_on_the_answer_stream_come_first(fake: FakeToolman, spawn: Any) -> None:
    wrapper = spawn()
    wrapper.initialize()
    wrapper.call_tool(3, "progress")
    progress = wrapper.read()
    assert progress["method"] == "notifications/progress"
    assert wrapper.read()["id"] == 3


def test_server_request_round_trip(fake: FakeToolman, spawn: Any) -> None:
    """toolman asks the client (sampling) during a tool call; the client's answer goes back."""
    wrapper = spawn()
    wrapper.initialize()
    wrapper.call_tool(4, "sample")
    ask = wrapper.read()
    assert ask["method"] == "sampling/createMessage"
    assert ask["id"] == "srv-1"
    wrapper.send(
        {
            "jsonrpc": "2.0",
            "id": "srv-1",
            "result": {"role": "assistant", "content": {"type": "text", "text": "42"}},
        }
    )
    answer = wrapper.read_answer(4)
    assert answer["result"]["content"][0]["text"] == "sampled 42"


def test_get_stream_delivers_server_notifications(fake: FakeToolman, spawn: Any) -> None:
    fake.offer_get_stream = True
    wrapper = spawn()
    wrapper.initialize()
    assert fake.wait_for(lambda: any(r.http_method == "GET" for r in fake.received))
    get = next(r for r in fake.received if r.http_method == "GET")
    assert get.headers["accept"] == "text/event-stream"
    assert get.headers["mcp-session-id"] in fake.sessions
    assert fake.wait_for(lambda: fake.get_streams_opened == 1)
    fake.push({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
    assert wrapper.read()["method"] == "notifications/tools/list_changed"


def test_without_get_stream_nothing_breaks(fake: FakeToolman, spawn: Any) -> None:
    wrapper = spawn()  # the fake answers GET with 405
    wrapper.initialize()
    assert fake.wait_for(lambda: any(r.http_method == "GET" for r in fake.received))
    wrapper.request(5, "ping")
    assert wrapper.read_answer(5)["result"] == {}
    assert sum(r.http_method == "GET" for r in fake.received) == 1  # 405 means: do not retry


def test_interrupted_stream_is_resumed_with_last_event_id(fake: FakeToolman, spawn: Any) -> None:
    wrapper = spawn()
    wrapper.initialize()
    wrapper.call_tool(6, "resumable")
    answer = wrapper.read_answer(6)
    assert answer["result"]["content"][0]["text"] == "resumed"
    resume = [r for r in fake.received if r.http_method == "GET" and "last-event-id" in r.headers]
    assert [r.headers["last-event-id"] for r in resume] == ["ev-1"]
    assert fake.tool_calls.count("resumable") == 1


def test_token_is_sent_as_bearer_and_never_logged(fake: FakeToolman, spawn: Any) -> None:
    token = "s3cr3t-token-value"
    fake.require_token = token
    wrapper = spawn(MCP_TOOLMAN_TOKEN=token, MCP_WRAPPER_DEBUG="1")
    wrapper.initialize()
    wrapper.request(2, "ping")
    assert wrapper.read_answer(2)["result"] == {}
    assert all(r.headers.get("authorization") == f"Bearer {token}" for r in fake.received)
    wrapper.close_stdin()
    assert wrapper.wait() == 0
    assert "-> ping" in wrapper.stderr  # debug logging was on
    assert token not in wrapper.stderr
    assert token.encode() not in b"".join(wrapper.raw_stdout)


def test_wrong_token_is_an_error_that_names_the_setting(fake: FakeToolman, spawn: Any) -> None:
    fake.require_token = "right"
    wrapper = spawn(MCP_TOOLMAN_TOKEN="wrong")
    wrapper.request(1, "initialize", INIT_PARAMS)
    error = wrapper.read_answer(1)["error"]
    assert "401" in error["message"]
    assert "MCP_TOOLMAN_TOKEN" in error["message"]


def test_debug_logs_go_to_stderr_only(fake: FakeToolman, spawn: Any) -> None:
    wrapper = spawn(MCP_WRAPPER_DEBUG="true")
    wrapper.initialize()
    wrapper.call_tool(2, "progress")
    wrapper.read_answer(2)
    wrapper.close_stdin()
    assert wrapper.wait() == 0
    assert "-> tools/call id=2" in wrapper.stderr
    for line in wrapper.raw_stdout:
        assert json.loads(line)["jsonrpc"] == "2.0"
