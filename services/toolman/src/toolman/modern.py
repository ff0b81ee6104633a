"""The 2026-07-28 revision on /mcp: stateless requests, each carrying its own envelope.

Which requests are served here, and the envelope checks each must pass first
(-32602, -32020, -32022, all HTTP 400 with the request's id), are in
toolman.envelope. Then the method runs exactly as in a session (same policy,
audit and metrics) for the agent of the request's token, with a throwaway
session: no session id is minted. Unknown and removed methods (``initialize``,
``ping``, ``logging/setLevel``, ``resources/subscribe``...) get 404 with
-32601. Every result carries ``resultType``; lists, reads and
``server/discover`` carry ``ttlMs`` and ``cacheScope``. Closing the response
stream cancels the call.
"""

from __future__ import annotations

import asyncio
from collections import deque
from functools import partial
from typing import TYPE_CHECKING, Any

from toolman import __version__, asgi, jsonrpc, listen, streaming
from toolman.asgi import Receive, Send
from toolman.envelope import MODERN_VERSIONS, NAMED, check_envelope, without_envelope
from toolman.errors import RESOURCE_NOT_FOUND, HttpReject, RpcError
from toolman.jsonrpc import Incoming
from toolman.methods import LATEST_VERSION, Emit, Methods, no_stream
from toolman.sessions import Session
from toolman.suspended import Suspended

if TYPE_CHECKING:
    from toolman.gateway import Gateway

SERVER_INFO = "io.modelcontextprotocol/serverInfo"
IDENTITY = {"name": "toolman", "version": __version__}  # read-only: only ever serialized
STATUS = {-32700: 400, -32600: 400, -32602: 400, -32020: 400, -32021: 400, -32022: 400, -32601: 404}
FORWARDED = frozenset(NAMED)
REMOVED = frozenset({"ping", "logging/setLevel", "resources/subscribe", "resources/unsubscribe"})
CACHEABLE = frozenset(
    {"tools/list", "prompts/list", "resources/list", "resources/templates/list", "resources/read"}
)
CACHE_TTL_MS = 0  # list_changed (subscriptions/listen) is the signal to refetch
# A call whose client closes its stream is cancelled then, or this long after the call
# began if that is later (a call that ends first just ends). Each watched call costs a
# task waiting on ASGI receive: at 0.05 s, 32 clients on a slow machine (p50 66-70 ms)
# had nearly every call watched and toolman spent 1.19-1.22x the 2025 path's CPU per
# call; at 0.25 s, 0.94-0.97x (`nox -s bench -- toolman`, 2026-12-05).
WATCH_AFTER_SECONDS = 0.25
WATCH_TICK_SECONDS = 0.01  # the watches due are started together, this often at most
TIMER_RESOLUTION_SECONDS = 0.001  # a loop's timer may fire this much early
RETRY_KEYS = frozenset({"inputResponses", "requestState"})
ASKABLE = frozenset({"sampling", "elicitation"})  # client capabilities input_required serves


class ModernEndpoint:
    def __init__(self, gateway: Gateway, methods: Methods) -> None:
        self.gateway = gateway
        self.methods = methods
        self._watches = _Watches()

    async def post(
        self,
        receive: Receive,
        send: Send,
        headers: dict[str, str],
        agent: str,
        message: object,
        *,
        accepts: tuple[bool, bool],
    ) -> None:
        """Answer one 2026-07-28 POST; ``accepts``: (JSON, SSE) from its Accept header."""
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
        session = Session(
            "", agent, MODERN_VERSIONS[-1], modern=True, client_capabilities=capabilities
        )
        incoming = without_envelope(incoming)
        if incoming.method == "subscriptions/listen":
            self.gateway.metrics.requests.inc(method="subscriptions/listen", outcome="ok")
            request = (incoming.id, incoming.params)
            try:
                await listen.listen(self.gateway, session, request, receive, send)
            except RpcError as exc:  # a listen the gateway cannot honour, before any answer
                raise HttpReject(STATUS.get(exc.code, 400), exc, request_id=incoming.id) from None
            return
        json_ok, sse_ok = accepts
        meta = incoming.params.get("_meta")  # what is left of it: a dict, or absent
        wants_progress = meta is not None and "progressToken" in meta
        current = asyncio.current_task()
        assert current is not None  # called from the ASGI request's task
        response = _Response(send, receive, current)
        self._watches.add(response)
        try:
            if sse_ok and (wants_progress or not json_ok or incoming.method in FORWARDED):
                await streaming.answer(
                    response.send,
                    partial(self._answer, session, incoming, label=label),
                    lazy=json_ok and not wants_progress,
                    status=_status,
                )
            else:
                answer = await self._answer(session, incoming, no_stream, label=label)
                await asgi.respond_json(response.send, _status(answer), answer)
        except asyncio.CancelledError:
            if not response.gone:
                raise  # toolman itself is stopping
            current.uncancel()  # the client left: nothing more to send
        finally:
            await response.finish()

    async def _answer(
        self, session: Session, incoming: Incoming, emit: Emit, *, label: str
    ) -> dict[str, Any]:
        method = incoming.method
        try:
            if method == "server/discover":
                result = self.discover(session.agent)
            elif method in REMOVED or not self.methods.serves(method):
                raise RpcError(-32601, f"Method not found: {method}")
            elif method in FORWARDED and (
                "requestState" in incoming.params or ASKABLE & session.client_capabilities.keys()
            ):
                result = dict(await self._interactive(session, incoming, emit))
            else:  # nothing could be asked of this client: the call runs as a plain one
                result = dict(await self.methods.call(session, incoming, emit))
        except RpcError as exc:
            self.gateway.metrics.requests.inc(method=label, outcome="error")
            if exc.code == RESOURCE_NOT_FOUND:  # SEP-2164: -32602 from 2026-07-28 on
                exc = RpcError(-32602, exc.message, exc.data)
            return jsonrpc.error(incoming.id, exc)
        result.setdefault("resultType", "complete")
        cacheable = method in CACHEABLE or method == "server/discover"
        if cacheable and result["resultType"] == "complete":
            result["ttlMs"] = CACHE_TTL_MS
            result["cacheScope"] = "public" if self._same_for_everyone() else "private"
        meta = result.get("_meta")
        result["_meta"] = {**(meta if isinstance(meta, dict) else {}), SERVER_INFO: IDENTITY}
        self.gateway.metrics.requests.inc(method=label, outcome="ok")
        return jsonrpc.result(incoming.id, result)

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
        """Lists are shared only when no token is required and no agent has a policy."""
        config = self.gateway.config
        return not config.tokens and not config.rules.agents

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


def _status(answer: dict[str, Any]) -> int:
    """The HTTP status of an answer sent as plain JSON."""
    error = answer.get("error")
    return 200 if error is None else STATUS.get(error.get("code"), 200)


class _Response:
    """The ASGI ``send`` of one response, and what cancels its call if the client leaves first.

    Most answers take well under WATCH_AFTER_SECONDS, even under load: only a longer
    one pays for a task that waits for the disconnect (``watch``, started by
    _Watches); a client that leaves before then has its call cancelled when the watch
    starts, unless the call has ended. Once the
    response is complete, the server's ``http.disconnect`` means only that, and
    cancels nothing.
    """

    __slots__ = ("_receive", "_send", "_task", "complete", "gone", "group", "watcher")

    def __init__(self, send: Send, receive: Receive, task: asyncio.Task[Any]) -> None:
        self._send = send
        self._receive = receive
        self._task = task
        self.complete = False  # the last byte of the response went out
        self.gone = False  # the client closed the connection first: the task was cancelled
        self.group: set[_Response] | None = None  # in _Watches until it is watched or done
        self.watcher: asyncio.Future[None] | None = None

    async def send(self, message: asgi.Message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self.complete = True  # before sending: the server reports "disconnect" after it
        await self._send(message)

    def watch(self) -> None:
        self.watcher = asyncio.ensure_future(self._wait_disconnect())

    async def _wait_disconnect(self) -> None:
        await streaming.wait_disconnect(self._receive)
        if not self.complete:
            self.gone = True
            self._task.cancel()

    async def finish(self) -> None:
        if self.group is not None:
            self.group.discard(self)
        if self.watcher is not None:
            self.watcher.cancel()
            await asyncio.gather(self.watcher, return_exceptions=True)


class _Watches:
    """Starts the watch of every response still running WATCH_AFTER_SECONDS after it began.

    One timer for all of them rather than one per request (made, then cancelled,
    for nearly every request). Responses are grouped by when they began, one group
    per WATCH_TICK_SECONDS; a response leaves its group when it finishes, so only
    the ones still running are held. A group is due WATCH_AFTER_SECONDS after the
    end of its tick: each watch starts between that long and a tick more after
    its response began.
    """

    def __init__(self) -> None:
        self._groups: deque[tuple[float, set[_Response]]] = deque()  # the order they are due
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def add(self, response: _Response) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop (tests): the old one's timer is gone
            self._groups.clear()
            self._timer, self._loop = None, loop
        now = loop.time()
        groups = self._groups
        if not groups or groups[-1][0] <= now + WATCH_AFTER_SECONDS:
            groups.append((now + WATCH_AFTER_SECONDS + WATCH_TICK_SECONDS, set()))
            if self._timer is None:
                self._timer = loop.call_at(groups[0][0], self._start_due, loop)
        group = groups[-1][1]
        group.add(response)
        response.group = group

    def _start_due(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time() + TIMER_RESOLUTION_SECONDS  # a timer may fire this much early
        groups = self._groups
        while groups and groups[0][0] <= now:
            for response in groups.popleft()[1]:
                response.watch()
        self._timer = loop.call_at(groups[0][0], self._start_due, loop) if groups else None
