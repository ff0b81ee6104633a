"""MCP messages from SSE streams: a request's answer stream and the session's GET stream.

Both forward every server-initiated message (progress, logs, sampling or
elicitation requests) to the client as it arrives. An answer stream also
picks out the response to its own request; the GET stream never carries one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable

from mcp_wrapper import jsonrpc
from mcp_wrapper.errors import ConnectionLost, UpstreamError, UpstreamProtocolError
from mcp_wrapper.http11 import HttpClient, Response
from mcp_wrapper.sse import SSEDecoder, SSEError

log = logging.getLogger("mcp_wrapper")

Emit = Callable[[jsonrpc.Message], Awaitable[None]]
DEFAULT_RETRY = 1.0  # seconds before reconnecting when the server named no `retry`
MAX_RETRY = 10.0
MAX_LISTEN_FAILURES = 5


class EventStreamReader:
    """Reads one logical event stream, possibly over several HTTP responses (resumption)."""

    def __init__(self, emit: Emit) -> None:
        self._emit = emit
        self.last_event_id: str | None = None
        self._retry_ms: int | None = None

    @property
    def retry_seconds(self) -> float:
        if self._retry_ms is None:
            return DEFAULT_RETRY
        return min(self._retry_ms / 1000, MAX_RETRY)

    async def read_until_response(
        self, response: Response, request_id: jsonrpc.RequestId | None
    ) -> jsonrpc.Message | None:
        """Emit server messages until the answer to ``request_id`` arrives and return it.

        Returns None when the stream ends first; raises ConnectionLost if it broke
        before any event id arrived (so it cannot be resumed).
        """
        decoder = SSEDecoder()  # a new response is a new stream; only id and retry carry over
        decoder.last_event_id = self.last_event_id
        try:
            async with contextlib.aclosing(response.iter_bytes()) as chunks:
                async for chunk in chunks:
                    for event in decoder.feed(chunk):
                        self.last_event_id, self._retry_ms = decoder.last_event_id, decoder.retry_ms
                        message = _message(event.event, event.data)
                        if message is None:
                            continue
                        if request_id is not None and _answers(message, request_id):
                            return message
                        await self._emit(message)
        except ConnectionLost:
            if decoder.last_event_id is None:
                raise
        except SSEError as exc:
            raise UpstreamProtocolError(f"toolman's event stream is invalid: {exc}") from exc
        finally:
            self.last_event_id, self._retry_ms = decoder.last_event_id, decoder.retry_ms
        return None


def _answers(message: jsonrpc.Message, request_id: jsonrpc.RequestId) -> bool:
    if not jsonrpc.is_response(message):
        return False
    # An error with id null on a request's own stream is about that request.
    return message.get("id") == request_id or message.get("id") is None


def _message(event_type: str, data: str) -> jsonrpc.Message | None:
    if event_type != "message":
        log.debug("ignoring SSE event of type %r", event_type)
        return None
    try:
        message = json.loads(data)
    except ValueError:
        log.warning("ignoring an SSE event from toolman that is not JSON")
        return None
    if not isinstance(message, dict):
        log.warning("ignoring an SSE event from toolman that is not a JSON-RPC object")
        return None
    return message


async def listen(
    http: HttpClient,
    headers: Callable[[], dict[str, str]],
    emit: Emit,
    alive: Callable[[str], bool],
    session_id: str,
) -> None:
    """Keep the GET stream of ``session_id`` open while it lives; give up after repeated failures.

    A 4xx (405: the server offers no GET stream; 404: the session is gone) ends
    listening: the next POST finds out whether the session must be renewed.
    """
    stream = EventStreamReader(emit)
    failures = 0
    delay = DEFAULT_RETRY
    while alive(session_id):
        request_headers = headers()
        if stream.last_event_id is not None:
            request_headers["Last-Event-ID"] = stream.last_event_id
        try:
            async with await http.request("GET", request_headers) as response:
                if 400 <= response.status < 500:
                    log.debug("no GET stream from toolman (HTTP %d)", response.status)
                    return
                if response.status == 200 and response.content_type == "text/event-stream":
                    failures, delay = 0, DEFAULT_RETRY
                    log.debug("GET stream open")
                    await stream.read_until_response(response, None)
                    log.debug("GET stream ended")
                else:
                    failures += 1
        except UpstreamError as exc:
            failures += 1
            log.debug("GET stream failed: %s", exc)
        if failures >= MAX_LISTEN_FAILURES:
            log.info("GET stream unavailable after %d attempts; stopped listening", failures)
            return
        await asyncio.sleep(stream.retry_seconds if stream.last_event_id else delay)
        if failures:
            delay = min(delay * 2, MAX_RETRY)
