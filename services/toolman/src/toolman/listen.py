"""``subscriptions/listen`` (2026-07-28): one SSE stream of the notifications a client asked for.

The acknowledgement comes first and names what toolman honors of the filter:
the three ``list_changed`` kinds, and ``resources/updated`` for URIs in the
agent's view whose server offers subscriptions (subscribed downstream like a
2025 session's ``resources/subscribe``). Every frame carries the listen
request's id as ``_meta["io.modelcontextprotocol/subscriptionId"]``; nothing the
client did not ask for is sent. The stream ends when the client closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from toolman import asgi, streaming
from toolman.asgi import Receive, Send
from toolman.errors import INVALID_PARAMS, RpcError
from toolman.jsonrpc import RequestId, notification

if TYPE_CHECKING:
    from toolman.gateway import Gateway
    from toolman.sessions import Session

SUBSCRIPTION_ID = "io.modelcontextprotocol/subscriptionId"
FLAGS = {
    "toolsListChanged": "tools",
    "promptsListChanged": "prompts",
    "resourcesListChanged": "resources",
}


async def _subscribe_uris(gateway: Gateway, session: Session, uris: object) -> list[str]:
    """The requested URIs toolman can deliver updates for (subscribed downstream)."""
    honored: list[str] = []
    if not isinstance(uris, list):
        return honored
    for uri in uris:
        if not isinstance(uri, str):
            continue
        with contextlib.suppress(RpcError):
            await gateway.relayed.subscribe(session, {"uri": uri})
            honored.append(uri)
    return honored


async def listen(
    gateway: Gateway,
    session: Session,
    request: tuple[RequestId | None, dict[str, Any]],
    receive: Receive,
    send: Send,
) -> None:
    """Serve one listen ``request`` (its id and params) until the client goes."""
    request_id, params = request
    wanted = params.get("notifications")
    if not isinstance(wanted, dict):
        raise RpcError(INVALID_PARAMS, 'subscriptions/listen needs a "notifications" filter')
    stamp = {SUBSCRIPTION_ID: request_id}
    honored: dict[str, Any] = {flag: True for flag in FLAGS if wanted.get(flag) is True}
    session.kinds = frozenset(FLAGS[flag] for flag in honored)
    session.stamp = stamp
    session.shown = dict(gateway.catalog.view(session.agent).fingerprints)
    session.stream_open = True
    gateway.listeners.add(session)
    try:
        uris = await _subscribe_uris(gateway, session, wanted.get("resourceSubscriptions"))
        if uris:
            honored["resourceSubscriptions"] = uris
        ack = {"notifications": honored, "_meta": stamp}
        await asgi.start_sse(send)
        await asgi.send_event(send, notification("notifications/subscriptions/acknowledged", ack))
        await _stream(session, receive, send)
    finally:
        gateway.listeners.discard(session)
        session.end()
        for uri in wanted.get("resourceSubscriptions") or ():
            if isinstance(uri, str):
                with contextlib.suppress(RpcError):
                    await gateway.relayed.unsubscribe(session, {"uri": uri})


async def _stream(session: Session, receive: Receive, send: Send) -> None:
    gone = asyncio.ensure_future(streaming.wait_disconnect(receive))
    try:
        await streaming.pump_outbox(send, session.outbox, {gone})
    finally:
        gone.cancel()
