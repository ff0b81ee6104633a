"""The MCP methods toolman answers for an established session.

Lists come from the agent's cached View and are paginated with opaque cursors;
calls are mapped back to (server, original name) and forwarded. Every
tools/call, resources/read and prompts/get is decided by the same View that
listed them, audited and counted.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson

from toolman import __version__, audit
from toolman.errors import (
    DOWNSTREAM_TIMEOUT,
    DOWNSTREAM_UNAVAILABLE,
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    RESOURCE_NOT_FOUND,
    RpcError,
)
from toolman.jsonrpc import Incoming, notification
from toolman.related import CallChannel

if TYPE_CHECKING:
    from toolman.catalog import View
    from toolman.gateway import Gateway
    from toolman.sessions import Session

SUPPORTED_VERSIONS = ("2025-03-26", "2025-06-18", "2025-11-25")
LATEST_VERSION = SUPPORTED_VERSIONS[-1]

Emit = Callable[[dict[str, Any]], None]


def no_stream(_message: dict[str, Any]) -> None:
    """The Emit of a call answered as plain JSON: nothing can be sent before the answer."""


Handler = Callable[["Session", dict[str, Any], Emit], Awaitable[dict[str, Any]]]


def negotiate(requested: object) -> str:
    """The client's version when toolman speaks it, else toolman's latest (the spec's rule)."""
    return (
        requested
        if isinstance(requested, str) and requested in SUPPORTED_VERSIONS
        else LATEST_VERSION
    )


def initialize_result(
    version: str, extra: dict[str, Any] | None = None, *, subscribe: bool = False
) -> dict[str, Any]:
    """toolman's answer; ``extra`` and ``subscribe`` say what the agent's servers relay."""
    resources: dict[str, Any] = {"listChanged": True}
    if subscribe:
        resources["subscribe"] = True
    return {
        "protocolVersion": version,
        "capabilities": {
            "tools": {"listChanged": True},
            "resources": resources,
            "prompts": {"listChanged": True},
            **(extra or {}),
        },
        "serverInfo": {"name": "toolman", "version": __version__},
        "instructions": "Tools of several MCP servers, named <server>_<tool> unless a server "
        "is mounted without a prefix.",
    }


def _encode_cursor(kind: str, offset: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([kind, offset])).decode()


def _decode_cursor(kind: str, cursor: object) -> int:
    if cursor is None:
        return 0
    try:
        if not isinstance(cursor, str):
            raise ValueError
        decoded = orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
        if decoded[0] != kind or not isinstance(decoded[1], int) or decoded[1] < 0:
            raise ValueError
        return int(decoded[1])
    except (ValueError, TypeError, IndexError, KeyError, binascii.Error, orjson.JSONDecodeError):
        raise RpcError(INVALID_PARAMS, "Invalid cursor") from None


def _outcome(exc: RpcError) -> str:
    return {DOWNSTREAM_UNAVAILABLE: "unavailable", DOWNSTREAM_TIMEOUT: "timeout"}.get(
        exc.code, "error"
    )


class Methods:
    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self._table: dict[str, Handler] = {
            "ping": self._ping,
            "tools/list": self._list("tools", lambda view: view.tools),
            "tools/call": self._tools_call,
            "prompts/list": self._list("prompts", lambda view: view.prompts),
            "prompts/get": self._prompts_get,
            "resources/list": self._list("resources", lambda view: view.resources),
            "resources/templates/list": self._list(
                "resourceTemplates", lambda view: view.templates
            ),
            "resources/read": self._resources_read,
            "logging/setLevel": self._relay(gateway.relayed.set_level),
            "completion/complete": self._relay(gateway.relayed.complete),
            "resources/subscribe": self._relay(gateway.relayed.subscribe),
            "resources/unsubscribe": self._relay(gateway.relayed.unsubscribe),
        }

    def serves(self, method: str) -> bool:
        return method in self._table

    async def call(self, session: Session, incoming: Incoming, emit: Emit) -> dict[str, Any]:
        handler = self._table.get(incoming.method)
        if handler is None:
            raise RpcError(METHOD_NOT_FOUND, f"Method not found: {incoming.method}")
        return await handler(session, incoming.params, emit)

    @staticmethod
    def _relay(
        method: Callable[[Session, dict[str, Any]], Awaitable[dict[str, Any]]],
    ) -> Handler:
        async def handler(session: Session, params: dict[str, Any], _emit: Emit) -> dict[str, Any]:
            return await method(session, params)

        return handler

    async def _ping(
        self, _session: Session, _params: dict[str, Any], _emit: Emit
    ) -> dict[str, Any]:
        return {}

    def _list(self, key: str, items: Callable[[View], list[dict[str, Any]]]) -> Handler:
        async def handler(session: Session, params: dict[str, Any], _emit: Emit) -> dict[str, Any]:
            view = self._gateway.catalog.view(session.agent)
            kind = "resources" if key == "resourceTemplates" else key
            session.shown[kind] = view.fingerprints[kind]
            everything = items(view)
            offset = _decode_cursor(key, params.get("cursor"))
            size = self._gateway.config.http.page_size
            page: dict[str, Any] = {key: everything[offset : offset + size]}
            if offset + size < len(everything):
                page["nextCursor"] = _encode_cursor(key, offset + size)
            return page

        return handler

    @staticmethod
    def _channel(session: Session, emit: Emit) -> CallChannel:
        if session.modern:  # questions become input_required results (toolman.suspended)
            return CallChannel(
                session.client_capabilities, session.outstanding, None, session.asker
            )
        return CallChannel(
            session.client_capabilities,
            session.outstanding,
            None if emit is no_stream else emit,
            log_level=lambda: session.log_level,
        )

    def _progress_relay(
        self, params: dict[str, Any], emit: Emit
    ) -> Callable[[dict[str, Any]], None] | None:
        meta = params.get("_meta")
        if not isinstance(meta, dict) or "progressToken" not in meta:
            return None
        token = meta["progressToken"]

        def relay(progress: dict[str, Any]) -> None:
            emit(notification("notifications/progress", {**progress, "progressToken": token}))

        return relay

    async def _forward(
        self,
        session: Session,
        *,
        kind: str,
        name: str,
        server: str | None,
        decision: str,
        call: Callable[[], Awaitable[dict[str, Any]]] | None,
    ) -> dict[str, Any]:
        """Run (or refuse) one forwarded call, with its audit line and metrics."""
        gateway, started = self._gateway, time.perf_counter()
        outcome, result = "refused", None
        try:
            if call is None:
                if kind == "tool":
                    raise RpcError(INVALID_PARAMS, f"Unknown tool: {name}")
                if kind == "prompt":
                    raise RpcError(INVALID_PARAMS, f"Unknown prompt: {name}")
                raise RpcError(RESOURCE_NOT_FOUND, "Resource not found", {"uri": name})
            try:
                result = await call()
            except RpcError as exc:
                outcome = _outcome(exc)
                raise
            outcome = "tool_error" if result.get("isError") is True else "ok"
            return result
        except BaseException:
            if outcome == "refused" and call is not None:
                outcome = "cancelled"
            raise
        finally:
            elapsed = time.perf_counter() - started
            audit.record(
                agent=session.agent,
                kind=kind,
                name=name,
                server=server,
                decision=decision,
                duration_ms=elapsed * 1000,
                outcome=outcome,
                session=session.id,
            )
            if kind == "tool":
                label = server or "-"
                gateway.metrics.tool_calls.inc(server=label, outcome=outcome)
                if call is not None:
                    gateway.metrics.tool_seconds.observe(elapsed, server=label)

    async def _tools_call(
        self, session: Session, params: dict[str, Any], emit: Emit
    ) -> dict[str, Any]:
        name = params.get("name")
        if not isinstance(name, str):
            raise RpcError(INVALID_PARAMS, 'tools/call needs a string "name"')
        arguments = params.get("arguments", {})
        if not isinstance(arguments, dict):
            raise RpcError(INVALID_PARAMS, 'tools/call "arguments" must be an object')
        entry = self._gateway.catalog.view(session.agent).tool_index.get(name)
        if entry is None:
            server, decision = self._gateway.why_hidden(session.agent, name)
            down = None
            if server is not None and decision == "server_unavailable":
                down = self._gateway.supervisors[server].unavailable  # fails fast: -32010
            return await self._forward(
                session, kind="tool", name=name, server=server, decision=decision, call=down
            )
        supervisor = self._gateway.supervisors[entry.server]
        forwarded = {**params, "name": entry.name}
        relay = self._progress_relay(params, emit)
        return await self._forward(
            session,
            kind="tool",
            name=name,
            server=entry.server,
            decision="allowed",
            call=lambda: supervisor.call(
                "tools/call", forwarded, relay, self._channel(session, emit)
            ),
        )

    async def _prompts_get(
        self, session: Session, params: dict[str, Any], emit: Emit
    ) -> dict[str, Any]:
        name = params.get("name")
        if not isinstance(name, str):
            raise RpcError(INVALID_PARAMS, 'prompts/get needs a string "name"')
        entry = self._gateway.catalog.view(session.agent).prompt_index.get(name)
        if entry is None:
            return await self._forward(
                session, kind="prompt", name=name, server=None, decision="denied", call=None
            )
        supervisor = self._gateway.supervisors[entry.server]
        forwarded = {**params, "name": entry.name}
        return await self._forward(
            session,
            kind="prompt",
            name=name,
            server=entry.server,
            decision="allowed",
            call=lambda: supervisor.call(
                "prompts/get",
                forwarded,
                self._progress_relay(params, emit),
                self._channel(session, emit),
            ),
        )

    async def _resources_read(
        self, session: Session, params: dict[str, Any], emit: Emit
    ) -> dict[str, Any]:
        uri = params.get("uri")
        if not isinstance(uri, str):
            raise RpcError(INVALID_PARAMS, 'resources/read needs a string "uri"')
        server = self._gateway.catalog.view(session.agent).server_for_uri(uri)
        if server is None:
            return await self._forward(
                session, kind="resource", name=uri, server=None, decision="denied", call=None
            )
        supervisor = self._gateway.supervisors[server]
        return await self._forward(
            session,
            kind="resource",
            name=uri,
            server=server,
            decision="allowed",
            call=lambda: supervisor.call(
                "resources/read",
                params,
                self._progress_relay(params, emit),
                self._channel(session, emit),
            ),
        )
