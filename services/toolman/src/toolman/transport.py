"""The MCP Streamable HTTP endpoint (/mcp): POST messages, GET stream, DELETE session.

Order of checks for every request: Host and Origin (421/403), bearer token
(401), then per method: Content-Type (415), Accept (406), body size (413),
JSON (400, -32700), JSON-RPC shape (400, -32600), MCP-Protocol-Version (400),
Mcp-Session-Id (400 missing, 404 unknown or ended). A request that passes all
of them is answered with HTTP 200 and a JSON-RPC result or error, as JSON, or
as SSE when it asked for progress or something must precede the answer.
Notifications and responses get 202. A single 2026-07-28 POST (toolman.envelope)
leaves here once parsed, for toolman.modern: its envelope instead of a session.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from toolman import asgi, jsonrpc, streaming
from toolman.asgi import Receive, Scope, Send
from toolman.auth import check_request
from toolman.envelope import is_modern
from toolman.errors import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    REQUEST_CANCELLED,
    TOO_MANY_SESSIONS,
    HttpReject,
    RpcError,
)
from toolman.gateway import Gateway
from toolman.jsonrpc import Incoming, RequestId
from toolman.methods import (
    SUPPORTED_VERSIONS,
    Emit,
    Methods,
    initialize_result,
    negotiate,
    no_stream,
)
from toolman.modern import ModernEndpoint
from toolman.sessions import Session

log = logging.getLogger("toolman.transport")

FORWARDED = frozenset({"tools/call", "resources/read", "prompts/get"})
KNOWN = FORWARDED | {
    "initialize",
    "ping",
    "tools/list",
    "prompts/list",
    "resources/list",
    "resources/templates/list",
    "logging/setLevel",
    "completion/complete",
    "resources/subscribe",
    "resources/unsubscribe",
}
BATCH_VERSION = "2025-03-26"  # the only revision with JSON-RPC batches
MAX_BATCH = 100
INITIALIZE_WAIT_SECONDS = 30.0
SESSIONS_FULL_RETRY_SECONDS = 5


def _reject(
    status: int, message: str, code: int = INVALID_REQUEST, request_id: RequestId | None = None
) -> HttpReject:
    return HttpReject(status, RpcError(code, message), request_id=request_id)


class McpEndpoint:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.methods = Methods(gateway)
        self.modern = ModernEndpoint(gateway, self.methods)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = asgi.headers_of(scope)
        options = self.gateway.config.http
        try:
            check_request(headers, options.allowed_hosts, options.allowed_origins)
            agent = self.gateway.auth.agent(headers.get("authorization"))
            method = scope["method"]
            if method == "POST":
                await self._post(receive, send, headers, agent)
            elif method == "GET":
                await streaming.get(receive, send, headers, lambda: self._session(headers, agent))
            elif method == "DELETE":
                self.gateway.sessions.end(self._session(headers, agent).id)
                await asgi.respond(send, 204)
            else:
                reject = _reject(405, f"Method {method} not allowed on /mcp")
                reject.headers["allow"] = "GET, POST, DELETE"
                raise reject
        except HttpReject as exc:
            self.gateway.metrics.http_errors.inc(status=str(exc.status))
            await asgi.respond_json(
                send, exc.status, jsonrpc.error(exc.request_id, exc.error), exc.headers
            )
        except asgi.ClientGone:
            return

    def _session(
        self, headers: dict[str, str], agent: str, request_id: RequestId | None = None
    ) -> Session:
        """The request's session, or HttpReject carrying ``request_id`` (the body's, when read)."""
        version = headers.get("mcp-protocol-version")
        if version is not None and version not in SUPPORTED_VERSIONS:
            # A plain -32600, never the newer "unsupported version" error: that one
            # would tell a 2026-07-28 client probing with server/discover that this
            # server speaks its revision, and it would not fall back to initialize.
            raise _reject(
                400,
                f"Bad Request: unsupported MCP-Protocol-Version {version!r}; this server "
                f"speaks {', '.join(SUPPORTED_VERSIONS)} and starts sessions with initialize",
                request_id=request_id,
            )
        session_id = headers.get("mcp-session-id")
        if not session_id:
            raise _reject(
                400,
                "Bad Request: Mcp-Session-Id header is required (send initialize first)",
                request_id=request_id,
            )
        session = self.gateway.sessions.get(session_id)
        if session is None or session.agent != agent:
            raise _reject(
                404,
                "Session not found: it ended or never existed; initialize a new one",
                request_id=request_id,
            )
        if version is not None and version != session.protocol_version:
            raise _reject(
                400,
                f"Bad Request: MCP-Protocol-Version {version!r} does not match the session's "
                f"{session.protocol_version!r}",
                request_id=request_id,
            )
        return session

    async def _post(
        self, receive: Receive, send: Send, headers: dict[str, str], agent: str
    ) -> None:
        if asgi.media_types(headers.get("content-type")) != {"application/json"}:
            raise _reject(415, "Unsupported Media Type: Content-Type must be application/json")
        json_ok, sse_ok = asgi.accepts(headers.get("accept"))
        if not (json_ok or sse_ok):
            raise _reject(406, "Not Acceptable: accept application/json and text/event-stream")
        body = await asgi.read_body(receive, headers, self.gateway.config.http.max_body_bytes)
        try:
            message = jsonrpc.loads(body)
        except RpcError as exc:
            raise HttpReject(400, exc) from None
        if isinstance(message, list):
            await self._batch(send, message, self._session(headers, agent))
            return
        if is_modern(headers, message):
            accepts = (json_ok, sse_ok)
            await self.modern.post(receive, send, headers, agent, message, accepts=accepts)
            return
        try:
            incoming = jsonrpc.classify(message)
        except RpcError as exc:
            raise HttpReject(400, exc, request_id=jsonrpc.request_id_of(message)) from None
        if incoming.kind == "request" and incoming.method == "initialize":
            await self._initialize(send, incoming, agent)
            return
        session = self._session(headers, agent, incoming.id)
        if incoming.kind != "request":
            self._notification(session, incoming)
            await asgi.respond(send, 202)
            return
        wants_progress = isinstance(incoming.params.get("_meta"), dict) and (
            "progressToken" in incoming.params["_meta"]
        )
        if sse_ok and (wants_progress or not json_ok or incoming.method in FORWARDED):
            await streaming.answer(
                send,
                lambda emit: self._answer(session, incoming, emit),
                lazy=json_ok and not wants_progress,
            )
        else:
            await asgi.respond_json(send, 200, await self._answer(session, incoming, no_stream))

    async def _initialize(self, send: Send, incoming: Incoming, agent: str) -> None:
        requested = incoming.params.get("protocolVersion")
        if not isinstance(requested, str):
            error = RpcError(INVALID_PARAMS, 'initialize needs a string "protocolVersion"')
            raise HttpReject(400, error, request_id=incoming.id)
        gateway = self.gateway
        if not gateway.started.is_set():  # first seconds after start: let the first tools arrive
            try:
                await asyncio.wait_for(gateway.started.wait(), INITIALIZE_WAIT_SECONDS)
            except TimeoutError:
                log.warning("initialize answered before every server finished starting")
        session = gateway.sessions.create(agent, negotiate(requested))
        if session is None:
            gateway.metrics.requests.inc(method="initialize", outcome="error")
            log.warning("session refused: every session is busy", extra={"agent": agent})
            error = RpcError(
                TOO_MANY_SESSIONS,
                f"Too many sessions: all {gateway.sessions.limit} (http.max_sessions) have a "
                "call in flight or a stream open; retry later or end a session with DELETE",
            )
            raise HttpReject(
                503,
                error,
                request_id=incoming.id,
                headers={"retry-after": str(SESSIONS_FULL_RETRY_SECONDS)},
            )
        session.shown = dict(gateway.catalog.view(agent).fingerprints)
        capabilities = incoming.params.get("capabilities")
        session.client_capabilities = capabilities if isinstance(capabilities, dict) else {}
        gateway.metrics.requests.inc(method="initialize", outcome="ok")
        log.info("session started", extra={"agent": agent, "version": session.protocol_version})
        result = initialize_result(
            session.protocol_version,
            gateway.relayed.capabilities(agent),
            subscribe=gateway.relayed.subscribable(agent),
        )
        answer = jsonrpc.result(incoming.id, result)
        await asgi.respond_json(send, 200, answer, {"mcp-session-id": session.id})

    def _notification(self, session: Session, incoming: Incoming) -> None:
        if incoming.kind == "response":
            session.outstanding.answered(incoming.id, incoming.params)
        elif incoming.method == "notifications/cancelled":
            task = session.in_flight.get(incoming.params.get("requestId"))
            if task is not None:
                task.cancel()

    async def _answer(self, session: Session, incoming: Incoming, emit: Emit) -> dict[str, Any]:
        """Run one request; always returns a JSON-RPC response object."""
        label = incoming.method if incoming.method in KNOWN else "other"
        try:
            if incoming.method in FORWARDED:
                result = await self._cancellable(session, incoming, emit)
            else:
                result = await self.methods.call(session, incoming, emit)
        except RpcError as exc:
            self.gateway.metrics.requests.inc(method=label, outcome="error")
            return jsonrpc.error(incoming.id, exc)
        self.gateway.metrics.requests.inc(method=label, outcome="ok")
        return jsonrpc.result(incoming.id, result)

    async def _cancellable(
        self, session: Session, incoming: Incoming, emit: Emit
    ) -> dict[str, Any]:
        # Its own task, so notifications/cancelled (or DELETE) can stop just this call. It is
        # cancellable only once it runs: a task cancelled before its first step would never
        # reach the call's audit line. A cancel for a request not yet running is ignored,
        # as the spec allows for requests the receiver does not know (yet).
        async def run() -> dict[str, Any]:
            current = asyncio.current_task()
            assert current is not None  # a coroutine run by ensure_future runs as a task
            session.in_flight[incoming.id] = current
            return await self.methods.call(session, incoming, emit)

        task = asyncio.ensure_future(run())
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # toolman itself is being stopped
            raise RpcError(REQUEST_CANCELLED, "Request cancelled") from None
        finally:
            if session.in_flight.get(incoming.id) is task:
                del session.in_flight[incoming.id]

    async def _batch(self, send: Send, messages: list[Any], session: Session) -> None:
        if session.protocol_version != BATCH_VERSION:
            raise _reject(
                400, f"JSON-RPC batches are only part of protocol version {BATCH_VERSION}"
            )
        if not messages or len(messages) > MAX_BATCH:
            raise _reject(400, f"Invalid Request: a batch holds 1 to {MAX_BATCH} messages")
        answers: list[dict[str, Any]] = []
        requests: list[Incoming] = []
        for item in messages:
            try:
                incoming = jsonrpc.classify(item)
            except RpcError as exc:
                answers.append(jsonrpc.error(jsonrpc.request_id_of(item), exc))
                continue
            if incoming.kind != "request":
                self._notification(session, incoming)
            elif incoming.method == "initialize":
                answers.append(
                    jsonrpc.error(
                        incoming.id, RpcError(INVALID_REQUEST, "initialize cannot be batched")
                    )
                )
            else:
                requests.append(incoming)
        answers += await asyncio.gather(*(self._answer(session, r, no_stream) for r in requests))
        if answers:
            await asgi.respond_json(send, 200, answers)
        else:
            await asgi.respond(send, 202)
