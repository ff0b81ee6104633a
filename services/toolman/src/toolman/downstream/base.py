"""JSON-RPC client side shared by every downstream transport.

A Connection numbers requests, matches answers to them, enforces the per-call
timeout, tells the server about abandoned requests (``notifications/cancelled``),
rewrites progress tokens so two clients' tokens can never clash on one
server, and answers the few requests a server may send its client. Messages a
transport can tie to one request (a remote server's SSE stream for that
request) go to that request's ``Related`` handler: the client of the call.
Subclasses only move bytes: ``_send`` one message, and feed every message
that arrives to ``_receive``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, Protocol

from toolman.errors import (
    INTERNAL_ERROR,
    METHOD_NOT_FOUND,
    DownstreamTimeout,
    DownstreamUnavailable,
    RpcError,
    TransportClosed,
)

log = logging.getLogger("toolman.downstream")

NotificationHandler = Callable[[str, dict[str, Any]], None]
ProgressHandler = Callable[[dict[str, Any]], None]
Message = dict[str, Any]


class Related(Protocol):
    """Where a request's related messages go (toolman.related.CallChannel)."""

    def notify(self, message: Message) -> None: ...

    async def ask(self, method: str, params: Message) -> Message: ...


class Connection(ABC):
    """One live connection to one downstream server."""

    def __init__(self, server: str, on_notification: NotificationHandler) -> None:
        self.server = server
        self._on_notification = on_notification
        self._pending: dict[int, asyncio.Future[Message]] = {}
        self._progress: dict[str, ProgressHandler] = {}
        self._related: dict[int, Related] = {}
        self._next_id = 0
        self.closed = asyncio.Event()
        self.close_reason = ""

    @property
    def pid(self) -> int | None:
        return None

    @abstractmethod
    async def start(self) -> None:
        """Open the transport (spawn the process, or nothing for HTTP)."""

    @abstractmethod
    async def _send(self, message: Message) -> None:
        """Deliver one message; HTTP transports also read the answer here."""

    @abstractmethod
    async def close(self) -> None:
        """End the connection and release everything it holds (bounded in time)."""

    def after_initialize(self, result: Message) -> None:  # noqa: B027 - optional hook
        """Transport-specific bookkeeping once the handshake succeeded."""

    async def request(
        self,
        method: str,
        params: Message | None = None,
        *,
        timeout: float,
        on_progress: ProgressHandler | None = None,
        related: Related | None = None,
    ) -> Message:
        """Send a request and return its ``result``; RpcError for an ``error`` answer."""
        if self.closed.is_set():
            raise DownstreamUnavailable(self.server, self.close_reason or "connection closed")
        self._next_id += 1
        request_id = self._next_id
        message: Message = {"jsonrpc": "2.0", "id": request_id, "method": method}
        token = None
        if params is not None:
            if on_progress is not None:
                params, token = self._rewrite_progress(params, request_id, on_progress)
            message["params"] = params
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        if related is not None:
            self._related[request_id] = related
        try:
            async with asyncio.timeout(timeout):
                await self._send(message)
                answer = await future
        except TimeoutError:
            self._abandon(request_id, "timed out")
            raise DownstreamTimeout(self.server, timeout) from None
        except asyncio.CancelledError:
            self._abandon(request_id, "cancelled by the client")
            raise
        except TransportClosed:
            raise DownstreamUnavailable(
                self.server, self.close_reason or "connection closed"
            ) from None
        finally:
            self._pending.pop(request_id, None)
            self._related.pop(request_id, None)
            if token is not None:
                self._progress.pop(token, None)
        error = answer.get("error")
        if error is not None:
            raise _remote_error(error)
        result = answer.get("result")
        return result if isinstance(result, dict) else {}

    async def notify(self, method: str, params: Message | None = None) -> None:
        message: Message = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        try:
            await self._send(message)
        except TransportClosed:
            raise DownstreamUnavailable(
                self.server, self.close_reason or "connection closed"
            ) from None

    def _rewrite_progress(
        self, params: Message, request_id: int, on_progress: ProgressHandler
    ) -> tuple[Message, str | None]:
        meta = params.get("_meta")
        if not isinstance(meta, dict) or "progressToken" not in meta:
            return params, None
        token = f"toolman-{request_id}"
        self._progress[token] = on_progress
        return {**params, "_meta": {**meta, "progressToken": token}}, token

    def _abandon(self, request_id: int, reason: str) -> None:
        """Tell the server to stop work nobody waits for any more (fire and forget)."""
        if self.closed.is_set():
            return
        params = {"requestId": request_id, "reason": reason}
        task = asyncio.ensure_future(self.notify("notifications/cancelled", params))
        task.add_done_callback(_ignore_result)

    def _receive(self, message: object, related_to: object = None) -> None:
        """Route one message from the server; ``related_to``: our request it came with."""
        if not isinstance(message, dict):
            log.warning("ignoring a non-object message", extra={"server": self.server})
            return
        method = message.get("method")
        if method is None:
            future = self._pending.get(message.get("id"))  # type: ignore[arg-type]
            if future is not None and not future.done():
                future.set_result(message)
            return
        params = message.get("params")
        params = params if isinstance(params, dict) else {}
        related = self._related.get(related_to) if isinstance(related_to, int) else None
        if "id" in message:
            if related is not None and isinstance(method, str):
                task = asyncio.ensure_future(self._relay(related, message["id"], method, params))
                task.add_done_callback(_ignore_result)
            else:
                self._answer_server_request(message["id"], method)
        elif method == "notifications/progress":
            handler = self._progress.get(str(params.get("progressToken")))
            if handler is not None:
                handler(params)
        else:
            if related is not None:
                related.notify(message)
            self._on_notification(method, params)

    async def _relay(
        self, related: Related, request_id: object, method: str, params: Message
    ) -> None:
        """A server request made during one of our requests: the client of that call answers."""
        answer: Message = {"jsonrpc": "2.0", "id": request_id}
        try:
            answer["result"] = await related.ask(method, params)
        except RpcError as exc:
            answer["error"] = exc.to_json()
        if not self.closed.is_set():
            await self._send(answer)

    def _answer_server_request(self, request_id: object, method: object) -> None:
        # Not tied to a call (stdio, or a remote server's GET stream): only ping is answered;
        # sampling and elicitation are relayed only from within a call (toolman.related).
        answer: Message = {"jsonrpc": "2.0", "id": request_id}
        if method == "ping":
            answer["result"] = {}
        else:
            answer["error"] = {
                "code": METHOD_NOT_FOUND,
                "message": f"toolman does not offer {method}",
            }
        task = asyncio.ensure_future(self._send(answer))
        task.add_done_callback(_ignore_result)

    def _mark_closed(self, reason: str) -> None:
        if self.closed.is_set():
            return
        self.close_reason = reason
        self.closed.set()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(TransportClosed(reason))
        self._pending.clear()


def _remote_error(error: object) -> RpcError:
    if not isinstance(error, dict):
        return RpcError(INTERNAL_ERROR, "downstream answered with a malformed error")
    code = error.get("code")
    message = error.get("message")
    return RpcError(
        code if isinstance(code, int) and not isinstance(code, bool) else INTERNAL_ERROR,
        message if isinstance(message, str) else "downstream error",
        error.get("data"),
    )


def _ignore_result(task: asyncio.Future[Any]) -> None:
    with contextlib.suppress(asyncio.CancelledError, Exception):
        task.result()
