"""The 2026-07-28 path on /mcp: stateless requests beside 2025 sessions, one policy for both.

Raw httpx against a real toolman in front of the SDK test server over stdio
(a 2025-era downstream), so every header and status is under the test's
control: the envelope checks and their errors, removed methods, resultType and
caching hints, no session ids, per-agent policy and audit, subscriptions/listen
and cancelling a call by closing its stream.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from conftest import Toolman, wait_until

from toolman.secrets import sha256_hex

VERSION = "2026-07-28"
CODER, GUEST = "coder-token", "guest-token"
Factory = Callable[..., Toolman]


def envelope(**extra: Any) -> dict[str, Any]:
    return {
        "io.modelcontextprotocol/protocolVersion": VERSION,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
        **extra,
    }


def request(
    http: httpx.Client,
    method: str,
    params: dict[str, Any] | None = None,
    *,
    token: str = CODER,
    headers: dict[str, str] | None = None,
    request_id: int = 1,
) -> httpx.Response:
    """One 2026-07-28 request with the envelope and matching headers, unless overridden."""
    params = {"_meta": envelope(), **(params or {})}
    sent = {
        **({"authorization": f"Bearer {token}"} if token else {}),
        "mcp-protocol-version": VERSION,
        "mcp-method": method,
        "accept": "application/json, text/event-stream",
    }
    name = params.get("name", params.get("uri"))
    if isinstance(name, str):
        sent["mcp-name"] = name
    sent.update(headers or {})
    body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
    return http.post("/mcp", json=body, headers=sent)


def config(sdk_server: dict[str, Any]) -> dict[str, Any]:
    return {
        "servers": {"test": sdk_server},
        "auth": {
            "tokens": [
                {"agent": "coder", "sha256": sha256_hex(CODER)},
                {"agent": "guest", "sha256": sha256_hex(GUEST)},
            ]
        },
        "agent_policies": {"guest": {"allowed_tools": ["test_echo"]}},
        "reload": {"watch_interval_seconds": 0},
    }


def started(toolman: Toolman) -> Toolman:
    toolman.start()
    wait_until(lambda: toolman.server_state("test")["state"] == "ready", timeout=30, what="ready")
    return toolman


@pytest.fixture(scope="module")
def toolman(
    tmp_path_factory: pytest.TempPathFactory, sdk_server: dict[str, Any]
) -> Iterator[Toolman]:
    running = started(Toolman(tmp_path_factory.mktemp("modern"), config(sdk_server)))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def http(toolman: Toolman) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=toolman.base_url, timeout=30) as client:
        yield client


def test_calls_are_stateless_and_carry_result_type_and_cache_hints(http: httpx.Client) -> None:
    listed = request(http, "tools/list")
    called = request(http, "tools/call", {"name": "test_echo", "arguments": {"text": "hi"}})
    read = request(http, "resources/read", {"uri": "test://greeting"})
    for response in (listed, called, read):
        assert response.status_code == 200, response.text
        assert "mcp-session-id" not in response.headers
        assert response.json()["result"]["resultType"] == "complete"
    tools = listed.json()["result"]
    assert {"test_echo", "test_add"} <= {tool["name"] for tool in tools["tools"]}
    assert tools["ttlMs"] == 0
    assert tools["cacheScope"] == "private"  # agents have policies of their own
    assert read.json()["result"]["cacheScope"] == "private"
    assert called.json()["result"]["structuredContent"] == {"result": "hi"}
    assert "ttlMs" not in called.json()["result"]


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"params": {"_meta": {}}}, 400, -32602),
        ({"headers": {"mcp-protocol-version": "2025-11-25"}}, 400, -32020),
        ({"headers": {"mcp-method": "tools/list"}}, 400, -32020),
        ({"headers": {"mcp-name": "test_add"}}, 400, -32020),
        ({"version": "2099-01-01"}, 400, -32022),
        ({"method": "ping"}, 404, -32601),
        ({"method": "logging/setLevel"}, 404, -32601),
        ({"method": "no/such/method"}, 404, -32601),
        ({"method": "subscriptions/listen"}, 400, -32602),  # no "notifications" filter
    ],
)
def test_bad_envelopes_and_removed_methods_get_their_error_and_status(
    http: httpx.Client, change: dict[str, Any], status: int, code: int
) -> None:
    method = change.get("method", "tools/call")
    params: dict[str, Any] = {"name": "test_echo", "arguments": {"text": "x"}}
    params.update(change.get("params", {}))
    headers = dict(change.get("headers", {}))
    if "version" in change:
        params["_meta"] = envelope(**{"io.modelcontextprotocol/protocolVersion": change["version"]})
        headers["mcp-protocol-version"] = change["version"]
    response = request(http, method, params, headers=headers, request_id=41)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["id"] == 41
    assert body["error"]["code"] == code
    if code == -32022:
        assert body["error"]["data"]["supported"] == [VERSION]
    assert request(http, "tools/list").status_code == 200  # and serving goes on


def test_policy_auth_and_audit_apply_as_in_a_session(toolman: Toolman, http: httpx.Client) -> None:
    guest_tools = request(http, "tools/list", token=GUEST).json()["result"]["tools"]
    refused = request(http, "tools/call", {"name": "test_add", "arguments": {"a": 1, "b": 2}},
                      token=GUEST)  # fmt: skip
    anonymous = request(http, "tools/list", token="")
    assert [tool["name"] for tool in guest_tools] == ["test_echo"]
    assert refused.json()["error"]["code"] == -32602
    assert anonymous.status_code == 401
    audit = toolman.audits(lambda r: r["agent"] == "guest" and r["name"] == "test_add")[0]
    assert audit["decision"] == "not_allowed"
    assert audit["outcome"] == "refused"


def test_closing_the_stream_cancels_the_call_downstream(
    toolman: Toolman, http: httpx.Client
) -> None:
    params = {"name": "test_sleep", "arguments": {"seconds": 30}}
    headers = {"accept": "text/event-stream", "mcp-name": "test_sleep"}
    body = {"jsonrpc": "2.0", "id": 5, "method": "tools/call",
            "params": {"_meta": envelope(), **params}}  # fmt: skip
    sent = {"authorization": f"Bearer {CODER}", "mcp-protocol-version": VERSION,
            "mcp-method": "tools/call", **headers}  # fmt: skip
    with http.stream("POST", "/mcp", json=body, headers=sent) as response:
        assert response.status_code == 200
    audit = toolman.audits(lambda r: r["name"] == "test_sleep")[0]
    assert audit["outcome"] == "cancelled"


def test_listen_acknowledges_first_then_delivers_only_what_was_asked(
    toolman_factory: Factory, sdk_server: dict[str, Any], time_server: dict[str, Any]
) -> None:
    toolman = toolman_factory(config(sdk_server))  # this one's config changes
    wait_until(lambda: toolman.server_state("test")["state"] == "ready", timeout=30, what="ready")
    http = httpx.Client(base_url=toolman.base_url, timeout=30)
    wanted = {"notifications": {"toolsListChanged": True}}
    body = {"jsonrpc": "2.0", "id": "listen-1", "method": "subscriptions/listen",
            "params": {"_meta": envelope(), **wanted}}  # fmt: skip
    sent = {"authorization": f"Bearer {CODER}", "mcp-protocol-version": VERSION,
            "mcp-method": "subscriptions/listen", "accept": "text/event-stream"}  # fmt: skip
    with http.stream("POST", "/mcp", json=body, headers=sent) as response:
        assert response.status_code == 200
        events = (
            json.loads(line[5:]) for line in response.iter_lines() if line.startswith("data:")
        )
        ack = next(events)
        assert ack["method"] == "notifications/subscriptions/acknowledged"
        assert ack["params"]["notifications"] == {"toolsListChanged": True}
        assert ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == "listen-1"
        servers = {**toolman.config["servers"], "time": time_server}
        toolman.write_config({**toolman.config, "servers": servers})
        toolman.signal(signal.SIGHUP)
        changed = next(events)  # a prompts or resources change would not be sent
        assert changed["method"] == "notifications/tools/list_changed"
        assert changed["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == "listen-1"
    http.close()


def test_lists_are_public_only_without_tokens_and_policies(
    toolman_factory: Factory, sdk_server: dict[str, Any]
) -> None:
    """A list behind a bearer token is private even when every agent sees the same."""
    tokens_only = {k: v for k, v in config(sdk_server).items() if k != "agent_policies"}
    toolman = toolman_factory(tokens_only)
    wait_until(lambda: toolman.server_state("test")["state"] == "ready", timeout=30, what="ready")
    with httpx.Client(base_url=toolman.base_url, timeout=30) as http:
        assert request(http, "tools/list").json()["result"]["cacheScope"] == "private"
        toolman.write_config({"servers": {"test": sdk_server}, "reload": tokens_only["reload"]})
        toolman.signal(signal.SIGHUP)

        def scope() -> str | None:
            answer = request(http, "tools/list", token="")
            if answer.status_code != 200:
                return None  # the reload has not dropped the tokens yet
            found: str = answer.json()["result"]["cacheScope"]
            return found

        assert wait_until(scope, timeout=30, what="an open toolman") == "public"
