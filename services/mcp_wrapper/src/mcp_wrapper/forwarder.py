"""The stdio side: one line in, one task out, one answer back per request.

Requests run concurrently (a slow ``tools/call`` never holds up a ``ping``),
each bounded by MCP_WRAPPER_TIMEOUT, and every request gets exactly one
answer carrying its own id — toolman's, or the wrapper's error when toolman
cannot give one. Notifications (and the client's answers to server requests)
are never answered; they are sent in order, and a message read after one is
sent only once it has been delivered (``initialized`` must precede the rest).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from mcp_wrapper import jsonrpc
from mcp_wrapper.errors import UpstreamError
from mcp_wrapper.settings import Settings
from mcp_wrapper.stdio import LineSource, LineTooLong, Output
from mcp_wrapper.upstream import Upstream

log = logging.getLogger("mcp_wrapper")
# Extra time, beyond each request's own timeout, that shutdown waits for answers.
SHUTDOWN_GRACE = 1.0


@dataclass
class _InFlight:
    message: jsonrpc.Message
    modern: bool
    task: asyncio.Task[None] | None = None
    cancelled_by_client: bool = False
    answered: bool = False


class Forwarder:
    def __init__(self, settings: Settings, upstream: Upstream, output: Output) -> None:
        self._settings = settings
        self._upstream = upstream
        self._output = output
        self._inflight: dict[tuple[str, jsonrpc.RequestId], _InFlight] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_notification: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._stopping = False
        output.on_closed = self.stop

    async def run(self, source: LineSource) -> None:
        """Forward until stdin ends or ``stop()``; then let requests finish and end the session."""
        self._reader = asyncio.create_task(self._read_loop(source))
        await asyncio.wait({self._reader})
        self._stopping = True
        if self._tasks:
            # Every request is bounded by its own timeout, so this wait ends in time;
            # the grace only covers writing the last answers.
            log.debug("waiting for %d in-flight message(s)", len(self._tasks))
            limit = self._settings.timeout + SHUTDOWN_GRACE
            _, pending = await asyncio.wait(set(self._tasks), timeout=limit)
            for task in pending:
                task.cancel()  # a cancelled request answers with an error itself
            if pending:
                await asyncio.wait(pending, timeout=SHUTDOWN_GRACE)
        await self._upstream.close()

    def stop(self) -> None:
        """First call: stop reading, let in-flight requests finish. Second: answer them now."""
        if self._stopping:
            for task in list(self._tasks):
                task.cancel()
            return
        self._stopping = True
        if self._reader is not None:
            self._reader.cancel()

    async def _read_loop(self, source: LineSource) -> None:
        while True:
            try:
                line = await source.readline()
            except LineTooLong as exc:
                error = jsonrpc.error_response(None, jsonrpc.INVALID_REQUEST, str(exc))
                await self._output.write(error)
                continue
            if line is None:
                log.debug("stdin closed")
                return
            if line.strip():
                await self._dispatch(line)

    async def _dispatch(self, line: bytes) -> None:
        try:
            message = jsonrpc.parse(line)
        except jsonrpc.ParseError as exc:
            await self._output.write(
                jsonrpc.error_response(exc.request_id, jsonrpc.PARSE_ERROR, str(exc))
            )
            return
        if isinstance(message, list):
            await self._output.write(jsonrpc.batch_refusal(message))
            return
        try:
            kind = jsonrpc.classify(message)
        except jsonrpc.InvalidMessage as exc:
            error = jsonrpc.error_response(exc.request_id, jsonrpc.INVALID_REQUEST, str(exc))
            await self._output.write(error)
            return
        assert isinstance(message, dict)  # classify() only accepts objects
        if kind is jsonrpc.Kind.REQUEST:
            entry = _InFlight(message, modern=jsonrpc.modern_version(message) is not None)
            self._inflight[jsonrpc.id_key(message["id"])] = entry
            entry.task = self._spawn(self._forward_request(entry, self._last_notification))
        elif message.get("method") == "notifications/cancelled" and self._cancel(message):
            return
        else:
            self._last_notification = self._spawn(
                self._forward_notification(message, self._last_notification)
            )

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _forward_request(self, entry: _InFlight, after: asyncio.Task[None] | None) -> None:
        """Forward one request; whatever goes wrong, the client still gets one answer."""
        try:
            await self._exchange(entry, after)
        except Exception as exc:  # a bug: answer -32603 instead of leaving the client waiting
            request_id = entry.message["id"]
            method = entry.message.get("method")
            log.error(
                "%s id=%s failed inside mcp-wrapper: %s: %s",
                method,
                request_id,
                type(exc).__name__,
                exc,
            )
            if not entry.answered and not entry.cancelled_by_client:
                entry.answered = True
                message = f"mcp-wrapper failed on {method}: {type(exc).__name__}: {exc}"
                await self._output.write(
                    jsonrpc.error_response(request_id, jsonrpc.INTERNAL_ERROR, message)
                )

    async def _exchange(self, entry: _InFlight, after: asyncio.Task[None] | None) -> None:
        message = entry.message
        request_id = message["id"]
        method = str(message.get("method"))
        try:
            async with asyncio.timeout(self._settings.timeout):
                if after is not None:
                    await asyncio.wait({after})
                answer = await self._upstream.request(message)
        except TimeoutError:
            answer = jsonrpc.error_response(
                request_id,
                jsonrpc.REQUEST_TIMEOUT,
                f"toolman did not answer {method} within {self._settings.timeout:g} s "
                "(MCP_WRAPPER_TIMEOUT)",
            )
            self._tell_toolman_cancelled(entry, "timed out in mcp-wrapper")
        except UpstreamError as exc:
            log.warning("%s id=%s failed: %s", method, request_id, exc)
            answer = jsonrpc.error_response(request_id, exc.code, str(exc))
        except asyncio.CancelledError:
            if not entry.cancelled_by_client and not entry.answered:
                # Shutting down: the DELETE tells toolman; the client still needs an answer.
                entry.answered = True
                shutting_down = "mcp-wrapper stopped before toolman answered"
                await self._output.write(
                    jsonrpc.error_response(request_id, jsonrpc.UPSTREAM_ERROR, shutting_down)
                )
            raise
        finally:
            if self._inflight.get(jsonrpc.id_key(request_id)) is entry:
                del self._inflight[jsonrpc.id_key(request_id)]
        if not entry.answered and not entry.cancelled_by_client:
            entry.answered = True
            await self._output.write(answer)

    async def _forward_notification(
        self, message: jsonrpc.Message, after: asyncio.Task[None] | None
    ) -> None:
        try:
            async with asyncio.timeout(self._settings.timeout):
                if after is not None:
                    await asyncio.wait({after})
                await self._upstream.notify(message)
        except (UpstreamError, TimeoutError) as exc:
            # Nobody waits for an answer to a notification: all we can do is say so.
            what = message.get("method") or f"response to id={message.get('id')}"
            log.warning("could not deliver %s to toolman: %s", what, exc or "timed out")
        except Exception as exc:  # a bug: say so in one line; nobody waits for an answer
            what = message.get("method") or f"response to id={message.get('id')}"
            log.error(
                "delivering %s failed inside mcp-wrapper: %s: %s", what, type(exc).__name__, exc
            )

    def _cancel(self, notification: jsonrpc.Message) -> bool:
        """The client cancelled a request: stop waiting for it, and answer nothing.

        Returns True when the notification must not be forwarded: on 2026-era
        HTTP, closing the request's stream is the cancellation.
        """
        request_id = jsonrpc.cancelled_request_id(notification)
        entry = self._inflight.get(jsonrpc.id_key(request_id)) if request_id is not None else None
        if entry is None or entry.task is None:
            return False
        entry.cancelled_by_client = True
        entry.task.cancel()
        return entry.modern

    def _tell_toolman_cancelled(self, entry: _InFlight, reason: str) -> None:
        method = entry.message.get("method")
        if entry.modern or method in jsonrpc.UNCANCELLABLE_METHODS:
            return  # 2026-era: the closed stream already said it; initialize: forbidden
        cancelled = {
            "jsonrpc": "2.0",
            "method": "notifications/cancelled",
            "params": {"requestId": entry.message["id"], "reason": reason},
        }
        self._spawn(self._forward_notification(cancelled, None))
