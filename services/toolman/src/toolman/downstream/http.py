"""A remote downstream MCP server over Streamable HTTP (toolman as the client).

Each message is one POST; the answer comes back as JSON or as an SSE stream
that may carry progress notifications first. The server's session id and the
negotiated protocol version are sent on every later request. A GET stream, when
the server offers one, brings its ``list_changed`` notifications. A transport
failure or a 404 for our session closes the connection, and the supervisor
reconnects with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import httpx
import orjson

from toolman.config import HttpServer
from toolman.downstream.base import Connection, Message, NotificationHandler
from toolman.errors import TransportClosed

log = logging.getLogger("toolman.downstream")

GET_STREAM_RETRIES = 5
GET_STREAM_RETRY_SECONDS = 1.0


async def sse_messages(response: httpx.Response) -> AsyncIterator[object]:
    """The JSON payloads of the ``message`` events of an SSE body."""
    data: list[str] = []
    event = "message"
    async for line in response.aiter_lines():
        if line == "":
            if data and event == "message":
                with contextlib.suppress(orjson.JSONDecodeError):
                    yield orjson.loads("\n".join(data))
            data, event = [], "message"
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
        elif line.startswith("event:"):
            event = line[6:].strip()


class HttpConnection(Connection):
    def __init__(
        self, config: HttpServer, client: httpx.AsyncClient, on_notification: NotificationHandler
    ) -> None:
        super().__init__(config.name, on_notification)
        self._config = config
        self._client = client
        self._session_id: str | None = None
        self._version: str | None = None
        self._get_task: asyncio.Task[None] | None = None

    def _headers(self) -> dict[str, str]:
        headers = dict(self._config.headers)
        headers["accept"] = "application/json, text/event-stream"
        headers["content-type"] = "application/json"
        if self._session_id:
            headers["mcp-session-id"] = self._session_id
        if self._version:
            headers["mcp-protocol-version"] = self._version
        return headers

    async def start(self) -> None:
        """Nothing to open: the first POST (initialize) connects."""

    def after_initialize(self, result: Message) -> None:
        version = result.get("protocolVersion")
        self._version = version if isinstance(version, str) else None
        self._get_task = asyncio.create_task(self._get_stream(), name=f"{self.server}-get")

    async def _send(self, message: Message) -> None:
        if self.closed.is_set():
            raise TransportClosed(self.close_reason)
        try:
            async with self._client.stream(
                "POST", self._config.url, content=orjson.dumps(message), headers=self._headers()
            ) as response:
                await self._read_answer(message, response)
        except httpx.HTTPError as exc:
            self._mark_closed(f"HTTP error: {type(exc).__name__}: {exc}")
            raise TransportClosed(self.close_reason) from None

    async def _read_answer(self, message: Message, response: httpx.Response) -> None:
        if message.get("method") == "initialize" and "mcp-session-id" in response.headers:
            self._session_id = response.headers["mcp-session-id"]
        if response.status_code == 404 and self._session_id:
            self._mark_closed("the server ended our session (HTTP 404)")
            raise TransportClosed(self.close_reason)
        content_type = response.headers.get("content-type", "")
        if content_type.startswith("text/event-stream"):
            async for item in sse_messages(response):
                self._receive(item)
                if (
                    isinstance(item, dict)
                    and "method" not in item
                    and item.get("id") == message.get("id")
                ):
                    return
            return
        body = await response.aread()
        if response.status_code == 202 or not body:
            if response.status_code >= 400 and "id" in message and "method" in message:
                self._fail(message, f"HTTP {response.status_code} without a JSON-RPC answer")
            return
        try:
            answer = orjson.loads(body)
        except orjson.JSONDecodeError:
            if "id" in message and "method" in message:
                self._fail(message, f"HTTP {response.status_code} with a non-JSON body")
            return
        if isinstance(answer, dict) and answer.get("id") is None and "error" in answer:
            answer = {**answer, "id": message.get("id")}  # errors sent before the id was read
        self._receive(answer)

    def _fail(self, message: Message, reason: str) -> None:
        self._receive(
            {"jsonrpc": "2.0", "id": message["id"], "error": {"code": -32603, "message": reason}}
        )

    async def _get_stream(self) -> None:
        """Listen for server-initiated notifications; optional for the server (405)."""
        for _attempt in range(GET_STREAM_RETRIES):
            headers = self._headers()
            headers["accept"] = "text/event-stream"
            try:
                async with self._client.stream(
                    "GET", self._config.url, headers=headers
                ) as response:
                    if response.status_code == 404 and self._session_id:
                        self._mark_closed("the server ended our session (HTTP 404)")
                        return
                    if response.status_code != 200:
                        return  # 405: the server offers no stream; nothing to listen to
                    async for item in sse_messages(response):
                        self._receive(item)
            except httpx.ConnectError as exc:  # the server is gone: let the supervisor reconnect
                self._mark_closed(f"server unreachable: {exc}")
                return
            except httpx.HTTPError:
                log.debug("GET stream dropped", extra={"server": self.server})
            if self.closed.is_set():
                return
            await asyncio.sleep(GET_STREAM_RETRY_SECONDS)

    async def close(self) -> None:
        was_open = not self.closed.is_set()
        self._mark_closed("closed by toolman")
        if self._get_task is not None:
            self._get_task.cancel()
            await asyncio.gather(self._get_task, return_exceptions=True)
        if was_open and self._session_id:
            with contextlib.suppress(httpx.HTTPError):
                await self._client.delete(self._config.url, headers=self._headers(), timeout=2.0)
