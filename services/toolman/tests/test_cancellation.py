"""notifications/cancelled racing the start of the call it names.

A cancel handled after the call's task exists but before that task has run a step used
to cancel a call that never started: the client got -32800 and the call had no audit
line. The race cannot be provoked deterministically over HTTP, so this drives
McpEndpoint at its seam: its Methods is replaced by a recorder (a fake, named here),
and the cancel is delivered exactly in that gap."""

from __future__ import annotations

import asyncio
from typing import Any

from toolman import jsonrpc
from toolman.sessions import Session
from toolman.transport import McpEndpoint


class RecordingMethods:
    def __init__(self) -> None:
        self.started: list[object] = []

    async def call(self, session: Session, incoming: jsonrpc.Incoming, emit: Any) -> dict[str, Any]:
        self.started.append(incoming.id)  # in toolman, the first step reaches the audit
        await asyncio.sleep(0)
        return {"content": [], "isError": False}


def test_a_cancel_before_the_call_runs_is_ignored_and_the_call_runs() -> None:
    async def scenario() -> tuple[dict[str, Any], list[object], dict[object, Any]]:
        endpoint = object.__new__(McpEndpoint)
        methods = RecordingMethods()
        endpoint.methods = methods  # type: ignore[assignment]
        session = Session(id="s", agent="a", protocol_version="2025-11-25")
        call = jsonrpc.classify({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                                 "params": {"name": "t"}})  # fmt: skip
        cancel = jsonrpc.classify({"jsonrpc": "2.0", "method": "notifications/cancelled",
                                   "params": {"requestId": 7}})  # fmt: skip
        answer = asyncio.ensure_future(endpoint._cancellable(session, call, lambda _m: None))
        await asyncio.sleep(0)  # _cancellable has made the call's task; it has not run yet
        endpoint._notification(session, cancel)
        return await answer, methods.started, session.in_flight

    result, started, in_flight = asyncio.run(scenario())
    assert started == [7]  # the call ran (and so was audited) instead of vanishing
    assert result == {"content": [], "isError": False}
    assert in_flight == {}


def test_a_cancel_of_a_running_call_stops_it_with_32800() -> None:
    async def scenario() -> tuple[str, list[object]]:
        endpoint = object.__new__(McpEndpoint)
        release = asyncio.Event()

        class Slow(RecordingMethods):
            async def call(self, session: Session, incoming: jsonrpc.Incoming,
                           emit: Any) -> dict[str, Any]:  # fmt: skip
                self.started.append(incoming.id)
                await release.wait()
                return {}

        methods = Slow()
        endpoint.methods = methods  # type: ignore[assignment]
        session = Session(id="s", agent="a", protocol_version="2025-11-25")
        call = jsonrpc.classify({"jsonrpc": "2.0", "id": 8, "method": "tools/call",
                                 "params": {"name": "t"}})  # fmt: skip
        answer = asyncio.ensure_future(endpoint._cancellable(session, call, lambda _m: None))
        while not methods.started:
            await asyncio.sleep(0)
        endpoint._notification(
            session,
            jsonrpc.classify(
                {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 8}}
            ),
        )
        try:
            await answer
        except Exception as exc:
            return repr(exc), methods.started
        return "no error", methods.started

    error, started = asyncio.run(scenario())
    assert started == [8]
    assert "Request cancelled" in error
