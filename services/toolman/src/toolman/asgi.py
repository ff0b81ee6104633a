"""Raw ASGI helpers for the /mcp endpoint: headers, bounded bodies, JSON and SSE framing.

/mcp is served without a framework on purpose: it is the hot path, and a
plain ASGI callable keeps toolman's added latency per call well under a
millisecond.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from toolman.errors import INVALID_REQUEST, HttpReject, RpcError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class ClientGone(Exception):
    """The client disconnected before its request body arrived."""


def headers_of(scope: Scope) -> dict[str, str]:
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}


def media_types(header: str | None) -> set[str]:
    if not header:
        return set()
    return {part.split(";", 1)[0].strip().lower() for part in header.split(",")}


def _quality(params: list[str]) -> float:
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "q":
            try:
                return float(value.strip())
            except ValueError:
                return 0.0  # an unreadable weight accepts nothing
    return 1.0


def accepted_types(header: str | None) -> set[str]:
    """The media types (or ranges) an Accept header accepts: those with ``q`` above 0."""
    types = set()
    for part in (header or "").split(","):
        media_type, *params = part.split(";")
        media_type = media_type.strip().lower()
        if media_type and _quality(params) > 0:
            types.add(media_type)
    return types


def accepts(header: str | None) -> tuple[bool, bool]:
    """(accepts JSON, accepts SSE); a missing Accept header accepts both, ``q=0`` refuses."""
    if not header or not header.strip():
        return True, True
    types = accepted_types(header)
    anything = "*/*" in types
    return (
        anything or "application/json" in types or "application/*" in types,
        anything or "text/event-stream" in types or "text/*" in types,
    )


async def read_body(receive: Receive, headers: dict[str, str], limit: int) -> bytes:
    """The whole request body, or HttpReject(413) as soon as it exceeds ``limit``."""
    too_large = HttpReject(
        413,
        RpcError(INVALID_REQUEST, f"Request body larger than {limit} bytes (http.max_body_bytes)"),
    )
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _raw_headers(
    content_type: bytes | None, extra: dict[str, str] | None
) -> list[tuple[bytes, bytes]]:
    headers = [(b"content-type", content_type)] if content_type is not None else []
    if extra:
        headers.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in extra.items())
    return headers


async def respond(
    send: Send,
    status: int,
    body: bytes = b"",
    *,
    content_type: bytes = b"application/json",
    headers: dict[str, str] | None = None,
) -> None:
    """A complete response; an empty body (202, 204) carries no Content-Type."""
    raw = _raw_headers(content_type if body else None, headers)
    if status != 204:  # RFC 9110: a 204 has no Content-Length
        raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def respond_json(
    send: Send, status: int, payload: object, headers: dict[str, str] | None = None
) -> None:
    await respond(send, status, orjson.dumps(payload), headers=headers)


async def start_sse(send: Send, headers: dict[str, str] | None = None) -> None:
    raw = _raw_headers(b"text/event-stream", headers)
    raw += [(b"cache-control", b"no-cache, no-transform"), (b"x-accel-buffering", b"no")]
    await send({"type": "http.response.start", "status": 200, "headers": raw})


async def send_event(send: Send, payload: object) -> None:
    data = b"event: message\ndata: " + orjson.dumps(payload) + b"\n\n"
    await send({"type": "http.response.body", "body": data, "more_body": True})


async def send_comment(send: Send, text: str) -> None:
    await send({"type": "http.response.body", "body": f": {text}\n\n".encode(), "more_body": True})


async def end_stream(send: Send) -> None:
    await send({"type": "http.response.body", "body": b"", "more_body": False})
