"""A remote downstream MCP server over Streamable HTTP (toolman as the client).

Each message is one POST; the answer comes back as JSON or as an SSE stream
that may carry progress notifications first. The server's session id and the
negotiated protocol version are sent on every later request. A GET stream, when
the server offers one, brings its ``list_changed`` notifications. A refused
connection, a broken exchange or a 404 for our session closes the connection,
and the supervisor reconnects with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson

from toolman.downstream.base import Connection, Message, NotificationHandler
from toolman.downstream.httpclient import ClientError, ConnectFailed, HttpClient, Response
from toolman.errors import INTERNAL_ERROR, TransportClosed
from toolman.servers import HttpServer

log = logging.getLogger("toolman.downstream")

GET_STREAM_RETRIES = 5
GET_STREAM_RETRY_SECONDS = 1.0


async def sse_messages(response: Response) -> AsyncIterator[object]:
    """The JSON payloads of the ``message`` events of an SSE body."""
    data: list[str] = []
    event = "message"
    async for line in response.lines():
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
    def __init__(self, config: HttpServer, on_notification: NotificationHandler) -> None:
        super().__init__(config.name, on_notification)
        self._config = config
        self._client = HttpClient(config.url)
        self._session_id: str | None = None
        self._version: str | None = None
        self._get_task: asyncio.Task[None] | None = None

    def _headers(self, accept: str = "application/json, text/event-stream") -> dict[str, str]:
        headers = dict(self._config.headers)
        headers["accept"] = accept
        headers["content-type"] = "application/json"
        if self._session_id:
            headers["mcp-session-id"] = self._session_id
        if self._version:
            headers["mcp-protocol-version"] = self._version
        return headers

    def _post_headers(self, message: Message) -> dict[str, str]:
        """The headers of the POST that carries ``message``."""
        return self._headers()

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
            headers = self._post_headers(message)
            response = await self._client.request("POST", headers, orjson.dumps(message))
            try:
                await self._read_answer(message, response)
            finally:
                response.close()  # a no-op once the body was read completely
        except ClientError as exc:
            self._mark_closed(f"HTTP exchange failed: {exc}")
            raise TransportClosed(self.close_reason) from None

    async def _read_answer(self, message: Message, response: Response) -> None:
        is_request = "id" in message and "method" in message
        if message.get("method") == "initialize" and "mcp-session-id" in response.headers:
            self._session_id = response.headers["mcp-session-id"]
        if response.status == 404 and self._session_id:
            self._mark_closed("the server ended our session (HTTP 404)")
            raise TransportClosed(self.close_reason)
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            async for item in sse_messages(response):
                self._receive(item, message.get("id"))
                if (
                    isinstance(item, dict)
                    and "method" not in item
                    and item.get("id") == message.get("id")
                ):
                    return  # the answer: the rest of the stream is not needed
            return
        body = await response.read()
        if response.status == 202 or not body:
            if response.status >= 400 and is_request:
                self._fail(message, f"HTTP {response.status} without a JSON-RPC answer")
            return
        try:
            answer = orjson.loads(body)
        except orjson.JSONDecodeError:
            if is_request:
                self._fail(message, f"HTTP {response.status} with a non-JSON body")
            return
        if isinstance(answer, dict) and answer.get("id") is None and "error" in answer:
            answer = {**answer, "id": message.get("id")}  # errors sent before the id was read
        self._receive(answer)

    def _fail(self, message: Message, reason: str) -> None:
        error = {"code": INTERNAL_ERROR, "message": reason}
        self._receive({"jsonrpc": "2.0", "id": message["id"], "error": error})

    async def _get_stream(self) -> None:
        """Listen for server-initiated notifications; optional for the server (405)."""
        await self._follow(lambda: self._client.request("GET", self._headers("text/event-stream")))

    async def _follow(self, open_stream: Callable[[], Awaitable[Response]]) -> None:
        """Feed a long-lived SSE stream's messages in, opened again when it drops.

        A server that refuses the stream (405, any error) is fine: nothing to listen to.
        One that cannot be reached any more is down (the supervisor reconnects).
        """
        for _attempt in range(GET_STREAM_RETRIES):
            try:
                response = await open_stream()
                try:
                    if response.status == 404 and self._session_id:
                        self._mark_closed("the server ended our session (HTTP 404)")
                        return
                    kind = response.headers.get("content-type", "")
                    if response.status != 200 or not kind.startswith("text/event-stream"):
                        return
                    async for item in sse_messages(response):
                        self._receive(item)
                finally:
                    response.close()
            except ConnectFailed as exc:
                self._mark_closed(f"server unreachable: {exc}")
                return
            except ClientError:
                log.debug("stream dropped", extra={"server": self.server})
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
            with contextlib.suppress(ClientError, TimeoutError):
                async with asyncio.timeout(2.0):
                    response = await self._client.request("DELETE", self._headers())
                    await response.read()
        self._client.close()
