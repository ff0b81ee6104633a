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
from collections.abc import Awaitable, Callable
from typing import Any

from toolman import asgi
from toolman.asgi import Send
from toolman.methods import Emit

PROGRESS_BACKLOG = 1000  # a flood of related messages is dropped, never the answer

Item = tuple[bool, dict[str, Any]]  # (is the answer, message)


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
    """
    queue: asyncio.Queue[Item | None] = asyncio.Queue()

    def emit(message: dict[str, Any]) -> None:
        if queue.qsize() < PROGRESS_BACKLOG:
            queue.put_nowait((False, message))

    async def work() -> None:
        try:
            queue.put_nowait((True, await run(emit)))
        finally:
            queue.put_nowait(None)

    task = asyncio.create_task(work())
    try:
        if not lazy:
            await asgi.start_sse(send)  # the client sees its stream open at once
        item = await queue.get()
        if lazy:
            if item is not None and item[0]:
                await asgi.respond_json(send, status(item[1]), item[1])
                return
            await asgi.start_sse(send)
        while item is not None:
            await asgi.send_event(send, item[1])
            item = await queue.get()
        await asgi.end_stream(send)
    finally:
        if not task.done():
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
