"""What is refused before any handler runs: a request to the API without a known token
(401, before its body is read, so an unauthenticated caller never gets the server to read
or parse a body), and a body larger than `tasks.max_request_bytes` (413, counted as it
arrives, whatever `Content-Length` says).

The handlers' own `require_token` dependency stays: it puts the bearer scheme into the
OpenAPI schema, and it is the same check.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator.api.auth import TokenCheck

OPEN = frozenset({"/api/v1/health"})  # under /api/ but open, like /health


class RequestGuard:
    def __init__(self, app: ASGIApp, *, tokens: TokenCheck, max_body_bytes: int) -> None:
        self.app = app
        self.tokens = tokens
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith("/api/") and path not in OPEN:
            try:
                self.tokens.caller(_header(scope, b"authorization"))
            except HTTPException as exc:
                await _reply(send, exc.status_code, exc.detail, exc.headers)
                return
        length = _header(scope, b"content-length") or ""
        if length.isdigit() and int(length) > self.max_body_bytes:
            await self._too_large(send)
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before it sent the whole body
            body += message.get("body", b"")
            if len(body) > self.max_body_bytes:
                await self._too_large(send)
                return
            more = message.get("more_body", False)
        await self.app(scope, _replay(bytes(body), receive), send)

    async def _too_large(self, send: Send) -> None:
        detail = (
            f"the request body is larger than {self.max_body_bytes} bytes "
            "(tasks.max_request_bytes in the orchestrator's config)"
        )
        await _reply(send, 413, detail, None)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body once, as one message; after it, whatever the client sends (disconnect)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


async def _reply(
    send: Send, status: int, detail: object, headers: Mapping[str, str] | None
) -> None:
    body = json.dumps({"detail": detail}).encode()
    raw = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
