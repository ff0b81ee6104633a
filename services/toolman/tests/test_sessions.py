"""Session bookkeeping: idle expiry, the size limit, list_changed coalescing."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from typing import Any

import httpx
from conftest import Toolman, initialize

from toolman.sessions import Session, SessionStore


def new(store: SessionStore, agent: str) -> Session:
    session = store.create(agent, "2025-11-25")
    assert session is not None
    return session


def test_idle_sessions_end_and_the_oldest_makes_room() -> None:
    async def scenario() -> None:
        store = SessionStore(idle_seconds=0.2, limit=2)
        first = new(store, "a")
        second = new(store, "a")
        assert store.get(first.id) is first  # now the most recently used
        third = new(store, "b")  # full: the least recently used (second) ends
        assert store.get(second.id) is None
        assert second.ended.is_set()
        assert {s.id for s in store} == {first.id, third.id}
        time.sleep(0.25)
        assert store.get(first.id) is None  # idle too long
        assert len(store) == 1
        store.sweep()
        assert len(store) == 0

    asyncio.run(scenario())


def test_list_changed_waits_for_a_stream_and_is_coalesced() -> None:
    async def scenario() -> None:
        session = new(SessionStore(idle_seconds=60, limit=10), "a")
        session.list_changed("tools")
        session.list_changed("tools")
        session.list_changed("prompts")
        assert session.outbox.empty()
        session.open_stream()
        methods = [session.outbox.get_nowait()["method"] for _ in range(session.outbox.qsize())]
        assert methods == ["notifications/prompts/list_changed", "notifications/tools/list_changed"]
        session.list_changed("tools")
        assert session.outbox.get_nowait()["method"] == "notifications/tools/list_changed"

    asyncio.run(scenario())


def test_a_full_store_evicts_fairly_and_never_a_busy_session() -> None:
    async def scenario() -> None:
        store = SessionStore(idle_seconds=60, limit=3)
        other = new(store, "b")  # the least recently used of all
        mine = [new(store, "a"), new(store, "a")]
        third = new(store, "a")  # full: a's own oldest idle session makes room, not b's
        assert mine[0].ended.is_set()
        assert not other.ended.is_set()
        assert {s.id for s in store} == {other.id, mine[1].id, third.id}

        other.stream_open = True  # b's GET stream is open
        later = new(store, "b")  # b has no idle session: anyone's oldest idle one ends
        assert mine[1].ended.is_set()
        assert not other.ended.is_set()

        third.in_flight[1] = asyncio.ensure_future(asyncio.sleep(60))
        later.stream_open = True
        assert store.create("c", "2025-11-25") is None  # all busy: refused, nobody ends
        assert len(store) == 3
        assert not any(s.ended.is_set() for s in (other, third, later))
        third.in_flight.pop(1).cancel()
        fourth = new(store, "c")  # the call is over: its session is idle again
        assert third.ended.is_set()
        assert {s.id for s in store} == {other.id, later.id, fourth.id}

    asyncio.run(scenario())


ALICE, BOB = "alice-token-0123456789", "bob-token-0123456789"
ACCEPT_BOTH = "application/json, text/event-stream"


def test_one_agent_opening_sessions_never_ends_another_agents_busy_ones(
    toolman_factory: Callable[..., Toolman], sdk_server: dict[str, Any]
) -> None:
    config = {
        "servers": {"test": sdk_server},
        "auth": {
            "tokens": [
                {"agent": "alice", "sha256": hashlib.sha256(ALICE.encode()).hexdigest()},
                {"agent": "bob", "sha256": hashlib.sha256(BOB.encode()).hexdigest()},
            ]
        },
        "http": {"max_sessions": 2},
    }
    toolman = toolman_factory(config)
    base = {"accept": ACCEPT_BOTH}
    with httpx.Client(base_url=toolman.base_url, timeout=10, headers=base) as http:

        def start(token: str) -> dict[str, str]:
            auth = {"authorization": f"Bearer {token}"}
            response = http.post("/mcp", json=initialize(), headers=auth)
            assert response.status_code == 200, response.text
            return {**auth, "mcp-session-id": response.headers["mcp-session-id"]}

        def ping(session: dict[str, str]) -> int:
            ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
            return http.post("/mcp", json=ping, headers=session).status_code

        bob_streaming = start(BOB)
        with http.stream("GET", "/mcp", headers=bob_streaming) as stream:
            assert stream.status_code == 200  # bob's GET stream is open
            alice_first = start(ALICE)
            alice_second = start(ALICE)  # full: alice's own idle session makes room
            assert ping(alice_first) == 404
            assert ping(bob_streaming) == 200

            bob_calling = start(BOB)  # bob's only session streams: alice's idle one goes
            assert ping(alice_second) == 404
            call = {
                "jsonrpc": "2.0", "id": 5, "method": "tools/call",
                "params": {"name": "test_count", "arguments": {"steps": 3000},
                           "_meta": {"progressToken": "p"}},
            }  # fmt: skip
            with http.stream("POST", "/mcp", json=call, headers=bob_calling) as running:
                lines = running.iter_lines()
                first = next(line for line in lines if line.startswith("data:"))
                assert "notifications/progress" in first  # the call is in flight

                refused = http.post(
                    "/mcp",
                    json=initialize(request_id=9),
                    headers={"authorization": f"Bearer {ALICE}"},
                )
                assert refused.status_code == 503
                assert refused.headers["retry-after"].isdigit()
                assert refused.json()["id"] == 9
                assert refused.json()["error"]["code"] == -32012
                assert "max_sessions" in refused.json()["error"]["message"]
                assert ping(bob_streaming) == 200
                assert ping(bob_calling) == 200
                second = next(line for line in lines if line.startswith("data:"))
                assert "notifications/progress" in second  # the call goes on
                assert http.delete("/mcp", headers=bob_calling).status_code == 204  # ends it
        assert ping(bob_streaming) == 200
        start(ALICE)  # room again
