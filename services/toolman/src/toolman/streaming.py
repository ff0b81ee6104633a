"""Answering one request on a POST: as JSON, or as an SSE stream when something goes first.

Messages related to the request (progress, the downstream's log lines, requests
toolman relays to the client) can only travel before the answer on an SSE
stream. A request that asked for progress, or whose client accepts only SSE,
is answered as a stream from the start; any other request a stream could
serve is answered lazily: as plain JSON when the answer comes first, as a
stream as soon as a related message does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from toolman import asgi
from toolman.asgi import Receive, Send
from toolman.errors import INVALID_REQUEST, HttpReject, RpcError
from toolman.methods import Emit
from toolman.sessions import Session

PROGRESS_BACKLOG = 1000  # a flood of related messages is dropped, never the answer
KEEPALIVE_SECONDS = 15.0


def _ok(_answer: dict[str, Any]) -> int:
    return 200


async def answer(
    send: Send,
    run: Callable[[Emit], Awaitable[dict[str, Any]]],
    *,
    lazy: bool,
    status: Callable[[dict[str, Any]], int] = _ok,
) -> None:
    """Run ``run(emit)`` and send what it emits, then its answer (a JSON-RPC response).

    ``status`` is the HTTP status of an answer sent as plain JSON (a stream is 200).
    Lazily, the call runs in the caller's task and nothing else is created unless
    something is emitted: the common case costs no more than a plain JSON answer.
    """
    if not lazy:
        await _stream_from_start(send, run)
        return
    queue: asyncio.Queue[dict[str, Any] | None] | None = None
    pump: asyncio.Future[None] | None = None

    def emit(message: dict[str, Any]) -> None:
        nonlocal queue, pump
        if queue is None:
            queue = asyncio.Queue()
            pump = asyncio.ensure_future(_pump(send, queue))
        if queue.qsize() < PROGRESS_BACKLOG:
            queue.put_nowait(message)

    try:
        result = await run(emit)
    except BaseException:
        if pump is not None:
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
        raise
    if queue is None or pump is None:
        await asgi.respond_json(send, status(result), result)
        return
    queue.put_nowait(result)
    queue.put_nowait(None)
    await pump


async def _pump(send: Send, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
    await asgi.start_sse(send)
    while (message := await queue.get()) is not None:
        await asgi.send_event(send, message)
    await asgi.end_stream(send)


async def _stream_from_start(send: Send, run: Callable[[Emit], Awaitable[dict[str, Any]]]) -> None:
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

    def emit(message: dict[str, Any]) -> None:
        if queue.qsize() < PROGRESS_BACKLOG:
            queue.put_nowait(message)

    async def work() -> None:
        try:
            queue.put_nowait(await run(emit))
        finally:
            queue.put_nowait(None)

    task = asyncio.create_task(work())
    try:
        await _pump(send, queue)
    finally:
        if not task.done():
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def wait_disconnect(receive: Receive) -> None:
    """Return once the client has closed its connection."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def pump_outbox(
    send: Send, outbox: asyncio.Queue[dict[str, Any]], stops: set[asyncio.Future[Any]]
) -> None:
    """A long-lived stream (the GET stream, subscriptions/listen): the outbox's messages as
    SSE events, a keep-alive comment every KEEPALIVE_SECONDS, until one of ``stops`` is done."""
    while not any(stop.done() for stop in stops):
        getter = asyncio.ensure_future(outbox.get())
        done, _ = await asyncio.wait(
            {getter, *stops}, timeout=KEEPALIVE_SECONDS, return_when=asyncio.FIRST_COMPLETED
        )
        if getter in done:
            await asgi.send_event(send, getter.result())
            continue
        getter.cancel()
        if not done:
            await asgi.send_comment(send, f"keepalive {int(time.time())}")


async def get(
    receive: Receive, send: Send, headers: dict[str, str], session_of: Callable[[], Session]
) -> None:
    """A GET of /mcp: a 2025 session's stream of what it is sent outside any call.

    2026-07-28 has no GET stream (405; ``subscriptions/listen`` instead).
    """
    if headers.get("mcp-protocol-version") == "2026-07-28" and "mcp-session-id" not in headers:
        reject = HttpReject(405, RpcError(INVALID_REQUEST, "2026-07-28 has no GET stream"))
        reject.headers["allow"] = "POST"
        raise reject
    if not asgi.accepts(headers.get("accept"))[1]:
        error = RpcError(INVALID_REQUEST, "Not Acceptable: the GET stream is text/event-stream")
        raise HttpReject(406, error)
    session = session_of()
    if session.stream_open:
        error = RpcError(INVALID_REQUEST, "Conflict: this session already has a GET stream open")
        raise HttpReject(409, error)
    session.open_stream()
    disconnected = asyncio.ensure_future(wait_disconnect(receive))
    ended = asyncio.ensure_future(session.ended.wait())
    try:
        await asgi.start_sse(send, {"mcp-session-id": session.id})
        await pump_outbox(send, session.outbox, {ended, disconnected})
        if not disconnected.done():
            await asgi.end_stream(send)
    finally:
        session.stream_open = False
        for task in (disconnected, ended):
            task.cancel()
