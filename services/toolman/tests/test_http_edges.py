"""Bad input at the HTTP and JSON-RPC layers: the right status or error, and serving goes on.

Raw httpx against a real toolman, so every byte is under the test's control.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from conftest import Toolman

INIT_PARAMS = {"capabilities": {}, "clientInfo": {"name": "edge", "version": "1"}}
ACCEPT = {"accept": "application/json, text/event-stream"}


@pytest.fixture(scope="module")
def toolman(
    tmp_path_factory: pytest.TempPathFactory, sdk_server: dict[str, Any]
) -> Iterator[Toolman]:
    config = {
        "servers": {"test": sdk_server},
        "http": {"max_body_bytes": 4096, "allowed_origins": ["http://allowed.example"]},
    }
    running = Toolman(tmp_path_factory.mktemp("edges"), config).start()
    yield running
    running.stop()


@pytest.fixture
def http(toolman: Toolman) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=toolman.base_url, timeout=10, headers=ACCEPT) as client:
        yield client


def open_session(http: httpx.Client, version: str = "2025-11-25") -> dict[str, str]:
    body = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {**INIT_PARAMS, "protocolVersion": version},
    }
    response = http.post("/mcp", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["result"]["protocolVersion"] == version
    headers = {
        "mcp-session-id": response.headers["mcp-session-id"],
        "mcp-protocol-version": version,
    }
    assert (
        http.post(
            "/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers
        ).status_code
        == 202
    )
    return headers


def call(
    http: httpx.Client, session: dict[str, str], method: str, params: dict[str, Any] | None = None
) -> httpx.Response:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": 7, "method": method}
    if params is not None:
        body["params"] = params
    return http.post("/mcp", json=body, headers=session)


def still_serving(http: httpx.Client, session: dict[str, str]) -> None:
    response = call(
        http, session, "tools/call", {"name": "test_echo", "arguments": {"text": "alive"}}
    )
    assert response.status_code == 200
    assert response.json()["result"]["structuredContent"] == {"result": "alive"}


def rpc_error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert body["jsonrpc"] == "2.0"
    error: dict[str, Any] = body["error"]
    return error


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", -32700),
        (b"", -32700),
        (b'"just a string"', -32600),
        (b"42", -32600),
        (b'{"id": 1, "method": "ping"}', -32600),  # no "jsonrpc"
        (b'{"jsonrpc": "1.0", "id": 1, "method": "ping"}', -32600),
        (b'{"jsonrpc": "2.0", "id": true, "method": "ping"}', -32600),
        (b'{"jsonrpc": "2.0", "id": 1, "method": 5}', -32600),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": [1, 2]}', -32600),
        (b'{"jsonrpc": "2.0", "id": 1}', -32600),
    ],
)
def test_malformed_messages_get_400_with_a_json_rpc_error(
    http: httpx.Client, body: bytes, code: int
) -> None:
    session = open_session(http)
    response = http.post(
        "/mcp", content=body, headers={**session, "content-type": "application/json"}
    )
    assert response.status_code == 400
    assert rpc_error(response)["code"] == code
    still_serving(http, session)


def test_method_errors_are_json_rpc_errors_on_http_200(http: httpx.Client) -> None:
    session = open_session(http)
    unknown = call(http, session, "tools/explode", {})
    no_name = call(http, session, "tools/call", {"arguments": {}})
    bad_args = call(http, session, "tools/call", {"name": "test_echo", "arguments": [1]})
    unknown_tool = call(http, session, "tools/call", {"name": "nope", "arguments": {}})
    assert [r.status_code for r in (unknown, no_name, bad_args, unknown_tool)] == [200] * 4
    assert rpc_error(unknown)["code"] == -32601
    assert rpc_error(no_name)["code"] == -32602
    assert rpc_error(bad_args)["code"] == -32602
    assert rpc_error(unknown_tool) == {"code": -32602, "message": "Unknown tool: nope"}
    assert unknown.json()["id"] == 7
    still_serving(http, session)


def test_oversized_bodies_get_413(http: httpx.Client) -> None:
    session = open_session(http)
    big = {"name": "test_echo", "arguments": {"text": "x" * 10_000}}
    declared = call(http, session, "tools/call", big)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies while reading
        yield b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"pad": "'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"}}'

    streamed = http.post(
        "/mcp", content=chunks(), headers={**session, "content-type": "application/json"}
    )
    assert declared.status_code == 413
    assert streamed.status_code == 413
    assert "max_body_bytes" in rpc_error(declared)["message"]
    still_serving(http, session)


def test_session_ids_are_required_known_and_end_with_delete(http: httpx.Client) -> None:
    session = open_session(http)
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    without = http.post("/mcp", json=ping)
    unknown = http.post("/mcp", json=ping, headers={"mcp-session-id": "no-such-session"})
    assert without.status_code == 400
    assert "Mcp-Session-Id" in rpc_error(without)["message"]
    assert unknown.status_code == 404
    assert http.delete("/mcp", headers=session).status_code == 204
    ended = http.post("/mcp", json=ping, headers=session)
    assert ended.status_code == 404
    assert http.delete("/mcp", headers=session).status_code == 404
    still_serving(http, open_session(http))


def test_protocol_versions_are_negotiated_and_checked(http: httpx.Client) -> None:
    for version in ("2025-03-26", "2025-06-18", "2025-11-25"):
        still_serving(http, open_session(http, version))
    body = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {**INIT_PARAMS, "protocolVersion": "1999-01-01"},
    }
    offered = http.post("/mcp", json=body)
    assert offered.json()["result"]["protocolVersion"] == "2025-11-25"  # ours, per the spec

    session = open_session(http, "2025-06-18")
    unsupported = call(http, {**session, "mcp-protocol-version": "1999-01-01"}, "ping")
    mismatch = call(http, {**session, "mcp-protocol-version": "2025-11-25"}, "ping")
    absent = call(http, {"mcp-session-id": session["mcp-session-id"]}, "ping")
    no_version = http.post(
        "/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": INIT_PARAMS}
    )
    assert unsupported.status_code == 400
    assert mismatch.status_code == 400
    assert absent.status_code == 200  # the session's version is assumed
    assert no_version.status_code == 400
    assert rpc_error(no_version)["code"] == -32602


def test_server_discover_is_the_2026_era_and_no_session_is_minted(http: httpx.Client) -> None:
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    probe = {"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": meta}}
    headers = {"mcp-protocol-version": "2026-07-28", "mcp-method": "server/discover"}
    response = http.post("/mcp", json=probe, headers=headers)
    assert response.status_code == 200, response.text
    assert "mcp-session-id" not in response.headers
    result = response.json()["result"]
    assert result["supportedVersions"] == ["2026-07-28"]
    assert result["resultType"] == "complete"
    assert "tools" in result["capabilities"]
    session = open_session(http)
    in_session = call(http, session, "server/discover", {})  # a 2025 session has no discover
    assert rpc_error(in_session)["code"] == -32601


def test_http_level_refusals(http: httpx.Client, toolman: Toolman) -> None:
    session = open_session(http)
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    text = http.post("/mcp", content=b"ping", headers={**session, "content-type": "text/plain"})
    html_only = http.post("/mcp", json=ping, headers={**session, "accept": "text/html"})
    put = http.put("/mcp", json=ping, headers=session)
    origin = http.post("/mcp", json=ping, headers={**session, "origin": "http://evil.example"})
    allowed_origin = http.post(
        "/mcp", json=ping, headers={**session, "origin": "http://allowed.example"}
    )
    rebinding = http.post("/mcp", json=ping, headers={**session, "host": "attacker.example"})
    get_html = http.get("/mcp", headers={**session, "accept": "text/html"})
    assert text.status_code == 415
    assert html_only.status_code == 406
    assert put.status_code == 405
    assert put.headers["allow"] == "GET, POST, DELETE"
    assert origin.status_code == 403
    assert allowed_origin.status_code == 200
    assert rebinding.status_code == 421
    assert get_html.status_code == 406
    assert 'toolman_http_rejections_total{status="421"}' in http.get("/metrics").text
    still_serving(http, session)


def test_a_local_page_reaches_a_local_toolman_and_a_rebinding_page_does_not(
    http: httpx.Client,
) -> None:
    """Browser clients on this machine (the MCP Inspector) send a loopback Origin."""
    session = open_session(http)
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}

    def status(origin: str, host: str = "127.0.0.1") -> int:
        headers = {**session, "origin": origin, "host": host}
        return http.post("/mcp", json=ping, headers=headers).status_code

    for origin in ("http://localhost:6274", "http://127.0.0.1", "https://[::1]:8080"):
        assert status(origin) == 200, origin
        assert status(origin, host="localhost:3000") == 200, origin
    for origin in ("http://localhost.evil.example", "http://evil.example", "null"):
        assert status(origin) == 403, origin
    assert status("http://localhost:6274", host="evil.example") == 421
    still_serving(http, session)


def test_notifications_and_responses_get_202(http: httpx.Client) -> None:
    session = open_session(http)
    note = http.post(
        "/mcp",
        json={"jsonrpc": "2.0", "method": "notifications/roots/list_changed"},
        headers=session,
    )
    answer = http.post("/mcp", json={"jsonrpc": "2.0", "id": 99, "result": {}}, headers=session)
    cancelled = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 12}}
    cancel = http.post("/mcp", json=cancelled, headers=session)
    assert (note.status_code, answer.status_code, cancel.status_code) == (202, 202, 202)
    assert note.content == b""


def test_empty_answers_carry_no_content_type(http: httpx.Client) -> None:
    session = open_session(http)
    note = http.post(
        "/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=session
    )
    deleted = http.delete("/mcp", headers=session)
    assert (note.status_code, deleted.status_code) == (202, 204)
    for response in (note, deleted):
        assert response.content == b""
        assert "content-type" not in response.headers
    assert "content-length" not in deleted.headers


@pytest.mark.parametrize(
    "accept",
    [
        "application/json;q=0",
        "application/json; q=0.0, text/html",
        "text/event-stream;q=0, application/json;q=0",
        "*/*;q=0",
    ],
)
def test_a_zero_quality_accept_is_not_acceptance(http: httpx.Client, accept: str) -> None:
    session = open_session(http)
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    refused = http.post("/mcp", json=ping, headers={**session, "accept": accept})
    assert refused.status_code == 406
    weighted = http.post(
        "/mcp", json=ping, headers={**session, "accept": "application/json;q=0.5, text/html"}
    )
    assert weighted.status_code == 200
    assert weighted.json() == {"jsonrpc": "2.0", "id": 1, "result": {}}


def test_refusals_after_the_body_is_read_carry_the_request_id(http: httpx.Client) -> None:
    probe = {
        "jsonrpc": "2.0", "id": "probe-1", "method": "server/discover",
        "params": {"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}},
    }  # fmt: skip
    discover = http.post("/mcp", json=probe, headers={"mcp-protocol-version": "2026-07-28"})
    ping = {"jsonrpc": "2.0", "id": 41, "method": "ping"}
    unknown = http.post("/mcp", json=ping, headers={"mcp-session-id": "no-such-session"})
    without = http.post("/mcp", json=ping)
    session = open_session(http, "2025-06-18")
    mismatch = http.post(
        "/mcp", json=ping, headers={**session, "mcp-protocol-version": "2025-11-25"}
    )
    unparsable = http.post(
        "/mcp", content=b"{nope", headers={**session, "content-type": "application/json"}
    )
    assert (discover.status_code, discover.json()["id"]) == (400, "probe-1")
    assert (unknown.status_code, unknown.json()["id"]) == (404, 41)
    assert (without.status_code, without.json()["id"]) == (400, 41)
    assert (mismatch.status_code, mismatch.json()["id"]) == (400, 41)
    assert (unparsable.status_code, unparsable.json()["id"]) == (400, None)


def test_batches_only_in_2025_03_26(http: httpx.Client) -> None:
    old = open_session(http, "2025-03-26")
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "ping"},
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "test_add", "arguments": {"a": 1, "b": 2}},
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 3},
    ]
    response = http.post("/mcp", json=batch, headers=old)
    assert response.status_code == 200
    answers = {a["id"]: a for a in response.json()}
    assert answers[1]["result"] == {}
    assert answers[2]["result"]["structuredContent"] == {"result": 3}
    assert answers[3]["error"]["code"] == -32600
    notes_only = http.post(
        "/mcp", json=[{"jsonrpc": "2.0", "method": "notifications/initialized"}], headers=old
    )
    assert notes_only.status_code == 202
    assert http.post("/mcp", json=[], headers=old).status_code == 400

    new = open_session(http, "2025-11-25")
    refused = http.post("/mcp", json=batch[:1], headers=new)
    assert refused.status_code == 400
    assert "2025-03-26" in rpc_error(refused)["message"]


def test_progress_requests_are_answered_as_sse(http: httpx.Client) -> None:
    session = open_session(http)
    params = {"name": "test_count", "arguments": {"steps": 2}, "_meta": {"progressToken": "p-1"}}
    response = call(http, session, "tools/call", params)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert len(events) == 3
    assert '"notifications/progress"' in events[0]
    assert '"progressToken":"p-1"' in events[0]
    assert '"result"' in events[-1]


def test_health_ready_and_metrics(http: httpx.Client) -> None:
    still_serving(http, open_session(http))  # at least one call for the histogram
    assert http.get("/health").json()["status"] == "ok"
    ready = http.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["servers"]["test"]["state"] == "ready"
    assert ready.json()["servers"]["test"]["pid"] > 0
    metrics = http.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert 'toolman_downstream_up{server="test"} 1' in metrics.text
    assert "toolman_tool_call_duration_seconds_bucket" in metrics.text


KUBERNETES_HOSTS = [
    "localhost",
    "127.0.0.1",
    "toolman",
    "toolman.ns",
    "*.svc",
    "*.svc.cluster.local",
]


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("toolman", 200),
        ("toolman:8080", 200),
        ("toolman.ns.svc", 200),
        ("toolman.ns.svc.cluster.local", 200),
        ("toolman.ns.svc.cluster.local.", 200),
        ("TOOLMAN.NS.SVC.Cluster.Local.:8080", 200),
        ("toolman.", 200),
        ("attacker.example", 421),
        ("toolman.ns.svc.cluster.local.attacker.example", 421),
        (".", 421),
    ],
)
def test_kubernetes_host_names_pass_the_host_check(
    toolman_factory: Callable[..., Toolman], host: str, status: int
) -> None:
    toolman = toolman_factory({"http": {"allowed_hosts": KUBERNETES_HOSTS}})
    with httpx.Client(base_url=toolman.base_url, timeout=10, headers=ACCEPT) as client:
        body = {
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {**INIT_PARAMS, "protocolVersion": "2025-11-25"},
        }
        response = client.post("/mcp", json=body, headers={"host": host})
    assert response.status_code == status, response.text
