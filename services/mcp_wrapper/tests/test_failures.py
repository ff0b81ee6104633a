"""Every failure path of the issue, seen from the client's side of the pipes."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from typing import Any

from conftest import INIT_PARAMS, wrapper_script
from fake_toolman import FakeToolman, ServerThread


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_timeout_answers_with_own_id_and_cancels_upstream(fake: FakeToolman, spawn: Any) -> None:
    wrapper = spawn(MCP_WRAPPER_TIMEOUT="0.5")
    wrapper.initialize()
    started = time.monotonic()
    wrapper.call_tool("slow-7", "slow", seconds=3)
    answer = wrapper.read_answer("slow-7", timeout=5)
    elapsed = time.monotonic() - started
    assert answer["error"]["code"] == -32001
    assert "MCP_WRAPPER_TIMEOUT" in answer["error"]["message"]
    assert 0.4 < elapsed < 2.0
    assert fake.wait_for(lambda: bool(fake.messages("notifications/cancelled")))
    cancelled = fake.messages("notifications/cancelled")[0].message
    assert cancelled is not None
    assert cancelled["params"]["requestId"] == "slow-7"
    # The wrapper keeps working after a timeout.
    wrapper.request(8, "ping")
    assert wrapper.read_answer(8)["result"] == {}


def test_toolman_unreachable_is_an_error_not_a_crash(spawn: Any) -> None:
    wrapper = spawn(f"http://127.0.0.1:{free_port()}/mcp")
    wrapper.request(1, "initialize", INIT_PARAMS)
    error = wrapper.read_answer(1)["error"]
    assert error["code"] == -32000
    assert "cannot connect to toolman" in error["message"]
    wrapper.request(2, "ping")
    assert wrapper.read_answer(2)["error"]["code"] == -32000
    assert wrapper.process.poll() is None
    wrapper.close_stdin()
    assert wrapper.wait() == 0


def test_a_line_that_is_not_json_gets_parse_error_with_null_id(
    fake: FakeToolman, spawn: Any
) -> None:
    wrapper = spawn()
    wrapper.send(b"{not json\n")
    error = wrapper.read()
    assert error["id"] is None
    assert error["error"]["code"] == -32700
    wrapper.send(b"\xff\xfe not utf-8\n")
    assert wrapper.read()["error"]["code"] == -32700
    wrapper.send(b"[1, 2]\n")
    batch = wrapper.read()
    assert batch["id"] is None
    assert batch["error"]["code"] == -32600
    wrapper.send(b'{"jsonrpc": "2.0", "id": 9}\n')
    assert wrapper.read() == {
        "jsonrpc": "2.0",
        "id": 9,
        "error": {
            "code": -32600,
            "message": "not a request, notification or response (no 'method', no 'result'/'error')",
        },
    }
    wrapper.send(b"\n   \n")  # blank lines are not messages
    wrapper.initialize()  # and the stream is still in sync
    assert fake.messages("initialize")


def test_expired_session_is_renewed_with_the_original_params(fake: FakeToolman, spawn: Any) -> None:
    wrapper = spawn()
    wrapper.initialize()
    assert fake.wait_for(fake.initialized)
    old_session = next(iter(fake.sessions))
    fake.sessions.clear()  # toolman forgets the session: the next request gets 404
    wrapper.call_tool(5, "echo", text="after expiry")
    answer = wrapper.read_answer(5)
    assert answer["result"]["content"][0]["text"] == "after expiry"
    initializes = fake.messages("initialize")
    assert len(initializes) == 2
    assert initializes[1].message is not None
    assert initializes[1].message["params"] == INIT_PARAMS
    new_session = next(iter(fake.sessions))
    assert new_session != old_session
    calls = fake.messages("tools/call")
    assert [c.headers["mcp-session-id"] for c in calls] == [old_session, new_session]
    assert fake.tool_calls == ["echo"]  # refused with 404 the first time, so run once
    # The re-initialization was invisible to the client: no second initialize answer.
    assert all(m.get("id") != "init" for m in wrapper.extra)


def test_a_failed_renewal_is_retried_by_the_next_request(fake: FakeToolman, spawn: Any) -> None:
    wrapper = spawn()
    wrapper.initialize()
    assert fake.wait_for(fake.initialized)
    fake.sessions.clear()
    fake.fail_initialize = 1
    wrapper.request(1, "ping")
    error = wrapper.read_answer(1)["error"]
    assert "HTTP 500" in error["message"]
    wrapper.request(2, "ping")
    assert wrapper.read_answer(2)["result"] == {}
    assert len(fake.messages("initialize")) == 3


def test_concurrent_requests_on_an_expired_session_renew_it_once(
    fake: FakeToolman, spawn: Any
) -> None:
    wrapper = spawn()
    wrapper.initialize()
    assert fake.wait_for(fake.initialized)
    fake.sessions.clear()
    for n in range(5):
        wrapper.request(n, "ping")
    lines = [wrapper.read() for _ in range(6)]
    assert sorted(m["id"] for m in lines if "id" in m) == list(range(5))
    # One renewal, so one announcement.
    assert [m["method"] for m in lines if "method" in m] == ["notifications/tools/list_changed"]
    assert len(fake.messages("initialize")) == 2
    wrapper.assert_silent(0.3)


def test_a_dropped_tool_call_is_an_error_and_never_sent_twice(
    fake: FakeToolman, spawn: Any
) -> None:
    wrapper = spawn()
    wrapper.initialize()
    wrapper.call_tool(3, "drop")
    error = wrapper.read_answer(3)["error"]
    assert error["code"] == -32000
    assert "closed the connection" in error["message"]
    wrapper.request(4, "ping")
    wrapper.read_answer(4)
    assert fake.tool_calls == ["drop"]


def test_http_errors_become_json_rpc_errors(fake: FakeToolman, spawn: Any) -> None:
    wrapper = spawn()
    wrapper.initialize()
    wrapper.call_tool(1, "crash500")
    error = wrapper.read_answer(1)["error"]
    assert error["code"] == -32000
    assert "HTTP 500" in error["message"]
    # A JSON-RPC error in a 4xx body is passed on, with the request's id put back.
    wrapper.call_tool(2, "rpc_error")
    assert wrapper.read_answer(2) == {
        "jsonrpc": "2.0",
        "id": 2,
        "error": {"code": -32602, "message": "bad arguments"},
    }


def test_wrong_endpoint_path_says_which_setting_to_fix(server: ServerThread, spawn: Any) -> None:
    wrapper = spawn(server.url.replace("/mcp", "/nope"))
    wrapper.request(1, "initialize", INIT_PARAMS)
    error = wrapper.read_answer(1)["error"]
    assert "HTTP 404" in error["message"]
    assert "MCP_TOOLMAN_SERVER_URL=" in error["message"]


def test_client_cancellation_is_forwarded_and_unanswered(fake: FakeToolman, spawn: Any) -> None:
    wrapper = spawn()
    wrapper.initialize()
    wrapper.call_tool(11, "slow", seconds=2)
    assert fake.wait_for(lambda: "slow" in fake.tool_calls)
    wrapper.send(
        {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 11}}
    )
    assert fake.wait_for(lambda: bool(fake.messages("notifications/cancelled")))
    wrapper.request(12, "ping")
    assert wrapper.read()["id"] == 12
    wrapper.assert_silent(2.5)  # no answer for 11, even after the tool finished


def test_stdin_eof_finishes_in_flight_requests_then_deletes_session(
    fake: FakeToolman, spawn: Any
) -> None:
    wrapper = spawn()
    wrapper.initialize()
    session = next(iter(fake.sessions))
    wrapper.call_tool(1, "slow", seconds=1)
    assert fake.wait_for(lambda: "slow" in fake.tool_calls)
    wrapper.close_stdin()
    assert wrapper.read_answer(1)["result"]["content"][0]["text"] == "slow done"
    assert wrapper.wait(timeout=5) == 0
    deletes = [r for r in fake.received if r.http_method == "DELETE"]
    assert [d.headers["mcp-session-id"] for d in deletes] == [session]


def test_sigterm_answers_in_flight_within_the_timeout_and_exits_zero(
    fake: FakeToolman, spawn: Any
) -> None:
    wrapper = spawn(MCP_WRAPPER_TIMEOUT="1")
    wrapper.initialize()
    wrapper.call_tool(1, "slow", seconds=5)
    assert fake.wait_for(lambda: "slow" in fake.tool_calls)
    started = time.monotonic()
    wrapper.process.send_signal(signal.SIGTERM)
    assert wrapper.read_answer(1, timeout=5)["error"]["code"] == -32001
    assert wrapper.wait(timeout=5) == 0
    assert time.monotonic() - started < 3
    assert any(r.http_method == "DELETE" for r in fake.received)


def test_second_sigterm_answers_immediately(fake: FakeToolman, spawn: Any) -> None:
    wrapper = spawn(MCP_WRAPPER_TIMEOUT="20", MCP_WRAPPER_DEBUG="1")
    wrapper.initialize()
    wrapper.call_tool(1, "slow", seconds=5)
    assert fake.wait_for(lambda: "slow" in fake.tool_calls)
    wrapper.process.send_signal(signal.SIGTERM)
    # Signals do not queue: send the second only once the first has been handled.
    assert fake.wait_for(lambda: "waiting for 1 in-flight" in wrapper.stderr)
    wrapper.process.send_signal(signal.SIGTERM)
    error = wrapper.read_answer(1, timeout=3)["error"]
    assert "mcp-wrapper stopped" in error["message"]
    assert wrapper.wait(timeout=5) == 0


def test_toolman_restart_is_survived(fake: FakeToolman, server: ServerThread, spawn: Any) -> None:
    wrapper = spawn()
    wrapper.initialize()
    server.stop()
    wrapper.request(1, "ping")
    assert wrapper.read_answer(1)["error"]["code"] == -32000
    restarted_app = FakeToolman()
    restarted = ServerThread(restarted_app, port=server.port).start()
    try:
        wrapper.call_tool(2, "echo", text="back")
        assert wrapper.read_answer(2)["result"]["content"][0]["text"] == "back"
        assert len(restarted_app.messages("initialize")) == 1  # the re-initialization
    finally:
        restarted.stop()


def test_client_closing_stdout_ends_the_wrapper(fake: FakeToolman, server: ServerThread) -> None:
    """A client that went away without closing stdin must not leave a wrapper behind."""
    process = subprocess.Popen(
        [wrapper_script()],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin", "MCP_TOOLMAN_SERVER_URL": server.url},
    )
    try:
        assert process.stdin is not None
        assert process.stdout is not None
        message = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": INIT_PARAMS}
        process.stdin.write(json.dumps(message).encode() + b"\n")
        process.stdin.flush()
        assert json.loads(process.stdout.readline())["id"] == 1
        process.stdout.close()
        assert process.wait(timeout=5) == 0
        assert [r.http_method for r in fake.received][-1] == "DELETE"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)
        if process.stdin is not None:
            process.stdin.close()


def test_a_renewed_session_tells_the_client_its_lists_may_have_changed(
    fake: FakeToolman, spawn: Any
) -> None:
    wrapper = spawn()
    wrapper.initialize()
    assert fake.wait_for(fake.initialized)
    fake.sessions.clear()  # toolman restarted...
    fake.capabilities = {  # ...with another config
        "tools": {},
        "prompts": {"listChanged": True},
        "resources": {"subscribe": True},
    }
    wrapper.call_tool(5, "echo", text="after restart")
    assert wrapper.read_answer(5)["result"]["content"][0]["text"] == "after restart"
    # One line each, written before the answer to the resent request.
    assert wrapper.extra == [
        {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"},
        {"jsonrpc": "2.0", "method": "notifications/prompts/list_changed"},
    ]
    wrapper.assert_silent(0.3)


def test_a_session_renewed_before_the_client_is_initialized_announces_nothing(
    fake: FakeToolman, spawn: Any
) -> None:
    wrapper = spawn()
    wrapper.request("init", "initialize", INIT_PARAMS)
    wrapper.read_answer("init")
    fake.sessions.clear()  # the client's own notifications/initialized gets the 404
    wrapper.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    assert fake.wait_for(lambda: len(fake.messages("notifications/initialized")) == 3)
    wrapper.request(1, "ping")
    assert wrapper.read_answer(1)["result"] == {}
    assert wrapper.extra == []
    wrapper.assert_silent(0.3)
