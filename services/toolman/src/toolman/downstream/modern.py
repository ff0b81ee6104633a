"""A remote downstream that speaks 2026-07-28: stateless POSTs, each with its own envelope.

toolman finds out by asking ``server/discover`` first (``discover``); a server
that answers it with 2026-07-28 among its ``supportedVersions`` is spoken to
this way, any other gets ``initialize`` and a session (toolman.downstream.http).

Every request carries ``params._meta`` with toolman's protocol version and
client capabilities, and the routing headers ``MCP-Protocol-Version``,
``Mcp-Method`` and ``Mcp-Name``; no session id, no GET stream, no
notifications (cancelling is closing the response, which abandoning a request
does). A result of ``resultType: input_required`` is the server asking the
call's client: each of its ``inputRequests`` goes to that client (``Related.
ask``: a request on a 2025 session, or toolman's own ``input_required`` for a
2026-07-28 client), and the request is sent again with the ``inputResponses``
and the server's ``requestState``, unchanged. Results reach the rest of toolman
without the 2026-only fields, as a 2025 server's would.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any, NotRequired, TypedDict, Unpack

import orjson

from toolman.downstream.base import Message, ProgressHandler, Related
from toolman.downstream.http import HttpConnection
from toolman.errors import INTERNAL_ERROR, RpcError

MODERN_VERSION = "2026-07-28"
PROTOCOL_VERSION = "io.modelcontextprotocol/protocolVersion"
CLIENT_CAPABILITIES = "io.modelcontextprotocol/clientCapabilities"
SERVER_INFO = "io.modelcontextprotocol/serverInfo"
# What toolman can answer for a call: it relays these to the call's client.
CAPABILITIES: Message = {"sampling": {}, "elicitation": {"form": {}}}
NAMED = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
MAX_ROUNDS = 10
ERA_ONLY = ("resultType", "ttlMs", "cacheScope")
LISTEN_FILTER = {"toolsListChanged": True, "promptsListChanged": True, "resourcesListChanged": True}


class RequestOptions(TypedDict):
    timeout: float
    on_progress: NotRequired[ProgressHandler | None]
    related: NotRequired[Related | None]


def header_value(value: str) -> str:
    """An ``Mcp-Name`` value: as is when printable ASCII, else ``=?base64?...?=``."""
    if value.isascii() and value.isprintable():
        return value
    return "=?base64?" + base64.b64encode(value.encode()).decode() + "?="


class ModernHttpConnection(HttpConnection):
    def _post_headers(self, message: Message) -> dict[str, str]:
        headers = dict(self._config.headers)
        headers["accept"] = "application/json, text/event-stream"
        headers["content-type"] = "application/json"
        headers["mcp-protocol-version"] = MODERN_VERSION
        method = message.get("method")
        if isinstance(method, str):
            headers["mcp-method"] = method
            key = NAMED.get(method)
            params = message.get("params")
            name = params.get(key) if key is not None and isinstance(params, dict) else None
            if isinstance(name, str):
                headers["mcp-name"] = header_value(name)
        return headers

    async def _send(self, message: Message) -> None:
        if "id" in message and "method" in message:
            await super()._send(message)
        # Notifications and answers have no place in 2026-07-28: there is no session to
        # initialize, a request is cancelled by closing its response, and the server
        # asks through input_required results, never by a request of its own.

    def after_discover(self) -> None:
        """Listen for the server's list changes (and notice at once when it goes away)."""
        self._get_task = asyncio.create_task(self._listen(), name=f"{self.server}-listen")

    async def _listen(self) -> None:
        """``subscriptions/listen`` in place of a session's GET stream; optional for the server."""
        params = {"notifications": LISTEN_FILTER, "_meta": _envelope({})}
        message: Message = {
            "jsonrpc": "2.0",
            "id": "toolman-listen",
            "method": "subscriptions/listen",
        }
        message["params"] = params
        body = orjson.dumps(message)
        headers = self._post_headers(message)
        await self._follow(lambda: self._client.request("POST", headers, body))

    async def discover(self, timeout: float) -> Message | None:
        """The server's ``server/discover`` answer, or None when it does not speak 2026-07-28."""
        try:
            result = await self._request_once("server/discover", {}, timeout, None, None)
        except RpcError:
            return None  # a 2025 server: 400/404 or -32601, whatever it says
        versions = result.get("supportedVersions")
        if not isinstance(versions, list) or MODERN_VERSION not in versions:
            return None
        return result

    async def request(
        self, method: str, params: Message | None = None, **options: Unpack[RequestOptions]
    ) -> Message:
        """The request's final result, after asking the call's client whatever the server asks."""
        timeout, on_progress = options["timeout"], options.get("on_progress")
        related = options.get("related")
        params = dict(params or {})
        for _round in range(MAX_ROUNDS):
            result = await self._request_once(method, params, timeout, on_progress, related)
            if result.get("resultType") != "input_required":
                return _era_neutral(result)
            params = {
                k: v for k, v in params.items() if k not in ("inputResponses", "requestState")
            }
            asked = result.get("inputRequests")
            if isinstance(asked, dict) and asked:
                params["inputResponses"] = await _ask(self.server, related, asked)
            if result.get("requestState") is not None:
                params["requestState"] = result["requestState"]
        raise RpcError(
            INTERNAL_ERROR, f"{self.server} still asked for input after {MAX_ROUNDS} rounds"
        )

    async def _request_once(
        self,
        method: str,
        params: Message,
        timeout: float,
        on_progress: ProgressHandler | None,
        related: Related | None,
    ) -> Message:
        meta = params.get("_meta")
        return await super().request(
            method,
            {**params, "_meta": _envelope(meta if isinstance(meta, dict) else {})},
            timeout=timeout,
            on_progress=on_progress,
            related=related,
        )


def _envelope(meta: Message) -> Message:
    return {**meta, PROTOCOL_VERSION: MODERN_VERSION, CLIENT_CAPABILITIES: CAPABILITIES}


async def _ask(server: str, related: Related | None, asked: dict[str, Any]) -> Message:
    """Every input request answered by the call's client, all asked at once."""
    if related is None:
        raise RpcError(INTERNAL_ERROR, f"{server} asked for input that no client can give here")
    keys, questions = [], []
    for key, question in asked.items():
        if not isinstance(question, dict) or not isinstance(question.get("method"), str):
            raise RpcError(INTERNAL_ERROR, f"{server} sent a malformed input request {key!r}")
        params = question.get("params")
        keys.append(key)
        questions.append(
            related.ask(question["method"], params if isinstance(params, dict) else {})
        )
    answers = await asyncio.gather(*questions)
    return dict(zip(keys, answers, strict=True))


def _era_neutral(result: Message) -> Message:
    """A 2026-07-28 result as a 2025 server would have sent it."""
    plain = {key: value for key, value in result.items() if key not in ERA_ONLY}
    meta = plain.get("_meta")
    if isinstance(meta, dict) and SERVER_INFO in meta:
        rest = {key: value for key, value in meta.items() if key != SERVER_INFO}
        if rest:
            plain["_meta"] = rest
        else:
            del plain["_meta"]
    return plain


def modern_capabilities(discovered: Message) -> Message:
    """What toolman can relay of a 2026-07-28 server's capabilities to clients of either era.

    Resource subscriptions travel on ``subscriptions/listen`` in 2026-07-28; toolman
    does not relay a session's ``resources/subscribe`` onto it (yet), so it offers none.
    """
    capabilities = discovered.get("capabilities")
    if not isinstance(capabilities, dict):
        return {}
    resources = capabilities.get("resources")
    if isinstance(resources, dict) and "subscribe" in resources:
        resources = {k: v for k, v in resources.items() if k != "subscribe"}
        capabilities = {**capabilities, "resources": resources}
    return capabilities
