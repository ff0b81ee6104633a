"""The 2026-07-28 revision on /mcp: stateless requests, each carrying its own envelope.

A request is served here when it carries ``params._meta["io.modelcontextprotocol/
protocolVersion"]``, is a ``server/discover``, or names a non-2025 revision in
``MCP-Protocol-Version`` (and has no ``Mcp-Session-Id``: sessions are the 2025
era's). Checks, in order, each failing with HTTP 400 and the request's id:

1. ``_meta`` is an object with ``protocolVersion`` and ``clientCapabilities``
   (-32602);
2. the ``MCP-Protocol-Version``, ``Mcp-Method`` and ``Mcp-Name`` headers equal
   the body's version, method and name/uri (-32020);
3. the version is one toolman serves (-32022, ``data.supported`` lists them).

Then the method runs exactly as in a session (same policy, audit and metrics)
for the agent of the request's token, with a throwaway session: no session id
is minted. Unknown and removed methods (``initialize``, ``ping``,
``logging/setLevel``, ``resources/subscribe``...) get 404 with -32601. Every
result carries ``resultType``; lists, reads and ``server/discover`` carry
``ttlMs`` and ``cacheScope``. Closing the response stream cancels the call.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from toolman import __version__, asgi, jsonrpc, listen, streaming
from toolman.asgi import Receive, Send
from toolman.errors import RESOURCE_NOT_FOUND, HttpReject, RpcError
from toolman.jsonrpc import Incoming
from toolman.methods import LATEST_VERSION, SUPPORTED_VERSIONS, Emit, Methods, no_stream
from toolman.sessions import Session
from toolman.suspended import Suspended

if TYPE_CHECKING:
    from toolman.gateway import Gateway

MODERN_VERSIONS = ("2026-07-28",)
PROTOCOL_VERSION = "io.modelcontextprotocol/protocolVersion"
CLIENT_CAPABILITIES = "io.modelcontextprotocol/clientCapabilities"
SERVER_INFO = "io.modelcontextprotocol/serverInfo"
ENVELOPE_PREFIX = "io.modelcontextprotocol/"

HEADER_MISMATCH = -32020
UNSUPPORTED_VERSION = -32022
STATUS = {-32700: 400, -32600: 400, -32602: 400, -32020: 400, -32021: 400, -32022: 400, -32601: 404}
NAMED = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
FORWARDED = frozenset(NAMED)
REMOVED = frozenset({"ping", "logging/setLevel", "resources/subscribe", "resources/unsubscribe"})
CACHEABLE = frozenset(
    {"tools/list", "prompts/list", "resources/list", "resources/templates/list", "resources/read"}
)
CACHE_TTL_MS = 0  # list_changed (subscriptions/listen) is the signal to refetch
WATCH_AFTER_SECONDS = 0.05
RETRY_KEYS = frozenset({"inputResponses", "requestState"})
ASKABLE = frozenset({"sampling", "elicitation"})  # client capabilities input_required serves


def is_modern(headers: dict[str, str], message: object) -> bool:
    """Whether a (single, parsed) POST body is a 2026-07-28 request."""
    if "mcp-session-id" in headers or not isinstance(message, dict):
        return False
    params = message.get("params")
    meta = params.get("_meta") if isinstance(params, dict) else None
    if isinstance(meta, dict) and PROTOCOL_VERSION in meta:
        return True
    if message.get("method") == "server/discover":
        return True
    version = headers.get("mcp-protocol-version")
    return (
        version is not None
        and version not in SUPPORTED_VERSIONS
        and "method" in message
        and (message.get("method") != "initialize")
    )


def _header_value(raw: str | None) -> str | None:
    """An ``Mcp-Name`` value; ``=?base64?...?=`` carries one that is not plain ASCII."""
    if raw is None or not (raw.startswith("=?base64?") and raw.endswith("?=")):
        return raw
    try:
        return base64.b64decode(raw[9:-2], validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def check_envelope(headers: dict[str, str], incoming: Incoming) -> dict[str, Any]:
    """The request's client capabilities, or RpcError for the first check that fails."""
    meta = incoming.params.get("_meta")
    if not isinstance(meta, dict) or any(
        k not in meta for k in (PROTOCOL_VERSION, CLIENT_CAPABILITIES)
    ):
        raise RpcError(
            -32602,
            f"params._meta must be an object carrying {PROTOCOL_VERSION!r} and "
            f"{CLIENT_CAPABILITIES!r}",
        )
    version = meta[PROTOCOL_VERSION]
    if headers.get("mcp-protocol-version") != version:
        raise RpcError(HEADER_MISMATCH, "MCP-Protocol-Version header does not match _meta")
    if headers.get("mcp-method") != incoming.method:
        raise RpcError(HEADER_MISMATCH, "Mcp-Method header does not match the body's method")
    key = NAMED.get(incoming.method)
    body_name = incoming.params.get(key) if key is not None else None
    if body_name is not None and _header_value(headers.get("mcp-name")) != body_name:
        raise RpcError(HEADER_MISMATCH, f"Mcp-Name header does not match the body's {key!r}")
    if not isinstance(version, str):
        raise RpcError(-32602, "the protocol version in _meta must be a string")
    if version not in MODERN_VERSIONS:
        data = {"supported": list(MODERN_VERSIONS), "requested": version}
        raise RpcError(UNSUPPORTED_VERSION, "Unsupported protocol version", data)
    capabilities = meta[CLIENT_CAPABILITIES]
    return capabilities if isinstance(capabilities, dict) else {}


class ModernEndpoint:
    def __init__(self, gateway: Gateway, methods: Methods) -> None:
        self.gateway = gateway
        self.methods = methods

    async def post(
        self, receive: Receive, send: Send, headers: dict[str, str], agent: str, message: object
    ) -> None:
        try:
            incoming = jsonrpc.classify(message)
        except RpcError as exc:
            raise HttpReject(400, exc, request_id=jsonrpc.request_id_of(message)) from None
        if incoming.kind != "request":
            await asgi.respond(send, 202)  # nothing to act on: cancelling is closing the stream
            return
        label = incoming.method if self.methods.serves(incoming.method) else "other"
        try:
            capabilities = check_envelope(headers, incoming)
        except RpcError as exc:
            self.gateway.metrics.requests.inc(method=label, outcome="error")
            raise HttpReject(STATUS.get(exc.code, 400), exc, request_id=incoming.id) from None
        session = Session("", agent, MODERN_VERSIONS[-1], modern=True)
        session.client_capabilities = capabilities
        incoming = _without_envelope(incoming)
        if incoming.method == "subscriptions/listen":
            self.gateway.metrics.requests.inc(method="subscriptions/listen", outcome="ok")
            request = (incoming.id, incoming.params)
            try:
                await listen.listen(self.gateway, session, request, receive, send)
            except RpcError as exc:  # a listen the gateway cannot honour, before any answer
                raise HttpReject(STATUS.get(exc.code, 400), exc, request_id=incoming.id) from None
            return
        json_ok, sse_ok = asgi.accepts(headers.get("accept"))
        response = _Tracked(send)
        send = response.send
        wants_progress = "progressToken" in incoming.params.get("_meta", {})
        if sse_ok and (wants_progress or not json_ok or incoming.method in FORWARDED):
            run = streaming.answer(
                send,
                lambda emit: self._answer(session, incoming, emit, label),
                lazy=json_ok and not wants_progress,
                status=lambda answer: STATUS.get(answer.get("error", {}).get("code"), 200),
            )
        else:
            run = self._json(send, session, incoming, label)
        await _until_disconnect(run, receive, response)

    async def _json(self, send: Send, session: Session, incoming: Incoming, label: str) -> None:
        answer = await self._answer(session, incoming, no_stream, label)
        status = STATUS.get(answer.get("error", {}).get("code"), 200)
        await asgi.respond_json(send, status, answer)

    async def _answer(
        self, session: Session, incoming: Incoming, emit: Emit, label: str
    ) -> dict[str, Any]:
        try:
            result = await self._result(session, incoming, emit)
        except RpcError as exc:
            self.gateway.metrics.requests.inc(method=label, outcome="error")
            if exc.code == RESOURCE_NOT_FOUND:  # SEP-2164: -32602 from 2026-07-28 on
                exc = RpcError(-32602, exc.message, exc.data)
            return jsonrpc.error(incoming.id, exc)
        self.gateway.metrics.requests.inc(method=label, outcome="ok")
        return jsonrpc.result(incoming.id, result)

    async def _result(self, session: Session, incoming: Incoming, emit: Emit) -> dict[str, Any]:
        method = incoming.method
        if method == "server/discover":
            result = self.discover(session.agent)
        elif method in REMOVED or not self.methods.serves(method):
            raise RpcError(-32601, f"Method not found: {method}")
        elif method in FORWARDED:
            result = dict(await self._interactive(session, incoming, emit))
        else:
            result = dict(await self.methods.call(session, incoming, emit))
        result.setdefault("resultType", "complete")
        if method in CACHEABLE or method == "server/discover":
            result["ttlMs"] = CACHE_TTL_MS
            result["cacheScope"] = "public" if self._same_for_everyone() else "private"
        meta = result.get("_meta")
        result["_meta"] = {**(meta if isinstance(meta, dict) else {}), SERVER_INFO: _server_info()}
        return result

    async def _interactive(
        self, session: Session, incoming: Incoming, emit: Emit
    ) -> dict[str, Any]:
        """A call that may need input: started, or resumed by its ``requestState``."""
        waiting = self.gateway.waiting
        state = incoming.params.get("requestState")
        if state is not None:
            call = waiting.resume(state, session.agent)
            call.answer(incoming.params.get("inputResponses"))
            return await waiting.run(call, None)
        if not ASKABLE & session.client_capabilities.keys():
            # Nothing could be asked of this client: the call runs as a plain one.
            return await self.methods.call(session, incoming, emit)
        call = Suspended(session.agent)
        session.asker = call.ask
        forwarded = Incoming(
            incoming.kind,
            incoming.id,
            incoming.method,
            {k: v for k, v in incoming.params.items() if k not in RETRY_KEYS},
        )
        return await waiting.run(call, lambda: self.methods.call(session, forwarded, emit))

    def _same_for_everyone(self) -> bool:
        """Lists are shared only when no agent has a policy of its own."""
        return not self.gateway.config.rules.agents

    def discover(self, agent: str) -> dict[str, Any]:
        relayed = self.gateway.relayed
        capabilities: dict[str, Any] = {
            "tools": {"listChanged": True},
            "resources": {"listChanged": True, "subscribe": relayed.subscribable(agent)},
            "prompts": {"listChanged": True},
            **relayed.capabilities(agent),
        }
        capabilities.pop("logging", None)  # removed in 2026-07-28 (per-request logLevel instead)
        return {
            "supportedVersions": list(MODERN_VERSIONS),
            "capabilities": capabilities,
            "instructions": "Tools of several MCP servers, named <server>_<tool> unless a "
            f"server is mounted without a prefix. Sessions ({LATEST_VERSION} and older) are "
            "served too: start one with initialize.",
        }


def _without_envelope(incoming: Incoming) -> Incoming:
    """The request as a 2025 downstream takes it: ``_meta`` without the envelope keys."""
    meta = incoming.params["_meta"]
    kept = {key: value for key, value in meta.items() if not key.startswith(ENVELOPE_PREFIX)}
    params = (
        {**incoming.params, "_meta": kept}
        if kept
        else {key: value for key, value in incoming.params.items() if key != "_meta"}
    )
    return Incoming(incoming.kind, incoming.id, incoming.method, params)


def _server_info() -> dict[str, str]:
    return {"name": "toolman", "version": __version__}


class _Tracked:
    """The ASGI ``send`` of one response, knowing when its last byte went out."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.complete = False

    async def send(self, message: asgi.Message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self.complete = True  # before sending: the server reports "disconnect" after it
        await self._send(message)


async def _until_disconnect(
    run: Coroutine[Any, Any, None], receive: Receive, response: _Tracked
) -> None:
    """Run the answer here; a client that closes the connection first cancels it (and its call).

    Most answers take well under WATCH_AFTER_SECONDS: only a longer one pays for a task
    that waits for the disconnect. Once the response is complete, the server's
    ``http.disconnect`` means only that, and cancels nothing.
    """
    current = asyncio.current_task()
    assert current is not None  # called from the ASGI request's task
    watcher: asyncio.Future[None] | None = None
    gone = False

    async def watch() -> None:
        nonlocal gone
        await streaming.wait_disconnect(receive)
        if not response.complete:
            gone = True
            current.cancel()

    def start_watching() -> None:
        nonlocal watcher
        watcher = asyncio.ensure_future(watch())

    timer = asyncio.get_running_loop().call_later(WATCH_AFTER_SECONDS, start_watching)
    try:
        await run
    except asyncio.CancelledError:
        if not gone:
            raise  # toolman itself is stopping
        current.uncancel()  # the client left: nothing more to send
    finally:
        timer.cancel()
        if watcher is not None:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
