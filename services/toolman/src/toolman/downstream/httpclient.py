"""A small asyncio HTTP/1.1 client for remote MCP servers: keep-alive, JSON and SSE bodies.

Why not httpx: measured on the gateway's hot path, one httpx request costs
about 1.5 ms of CPU (its pool, anyio streams and a failing ``import sniffio``
per request), more than everything else toolman does per call together. MCP
needs little of HTTP: POST/GET/DELETE, keep-alive, Content-Length or chunked
bodies, TLS. Anything fancier (proxies, redirects, HTTP/2) is out of scope and
fails clearly.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Mapping
from urllib.parse import urlsplit

MAX_HEAD = 64 * 1024
MAX_BODY = 64 * 1024 * 1024
MAX_IDLE = 32
# Servers close idle keep-alive connections (uvicorn after 5 s): reuse younger ones only.
IDLE_SECONDS = 4.0


class ClientError(Exception):
    """The exchange failed at the HTTP or socket level."""


class ConnectFailed(ClientError):
    """Nobody accepted the connection: the server is down or unreachable."""


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.reused = False
        self.idle_since = 0.0

    def close(self) -> None:
        self.writer.close()


class Response:
    """Status and headers at once; the body is read with ``read()`` or ``lines()``."""

    def __init__(
        self, client: HttpClient, conn: _Connection, status: int, headers: dict[str, str]
    ) -> None:
        self._client = client
        self._conn: _Connection | None = conn
        self.status = status
        self.headers = headers
        self._chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        length = headers.get("content-length")
        self._length = int(length) if length is not None and length.isdigit() else None
        self._keep = headers.get("connection", "").lower() != "close"

    async def _chunks(self) -> AsyncIterator[bytes]:
        conn = self._conn
        assert conn is not None
        reader = conn.reader
        if self._chunked:
            while True:
                size_line = await reader.readuntil(b"\r\n")
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while (await reader.readuntil(b"\r\n")) != b"\r\n":
                        pass  # trailers
                    return
                yield await reader.readexactly(size)
                await reader.readexactly(2)
        elif self._length is not None:
            if self._length > MAX_BODY:
                raise ClientError(f"response body of {self._length} bytes is too large")
            if self._length:
                yield await reader.readexactly(self._length)
        else:
            self._keep = False  # delimited by the server closing the connection
            while chunk := await reader.read(65536):
                yield chunk

    async def read(self) -> bytes:
        parts: list[bytes] = []
        size = 0
        try:
            async for chunk in self._chunks():
                size += len(chunk)
                if size > MAX_BODY:
                    raise ClientError("response body too large")
                parts.append(chunk)
        except (OSError, EOFError, ValueError, asyncio.LimitOverrunError) as exc:
            self.close()
            raise ClientError(f"reading the response failed: {exc!r}") from None
        self._release()
        return b"".join(parts)

    async def lines(self) -> AsyncIterator[str]:
        """The body as text lines (for SSE), as they arrive."""
        pending = b""
        try:
            async for chunk in self._chunks():
                pending += chunk
                *complete, pending = pending.split(b"\n")
                for line in complete:
                    yield line.rstrip(b"\r").decode("utf-8", "replace")
        except (OSError, EOFError, ValueError, asyncio.LimitOverrunError) as exc:
            self.close()
            raise ClientError(f"reading the stream failed: {exc!r}") from None
        if pending:
            yield pending.rstrip(b"\r").decode("utf-8", "replace")
        self._release()

    def _release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._client._give_back(conn, reusable=self._keep)

    def close(self) -> None:
        """Abandon the body: the connection cannot be reused."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


class HttpClient:
    """Requests to one MCP endpoint URL over a small pool of keep-alive connections."""

    def __init__(self, url: str, *, connect_timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        default_port = self.port == (443 if parts.scheme == "https" else 80)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.authority = host if default_port else f"{host}:{self.port}"
        self._ssl = ssl.create_default_context() if parts.scheme == "https" else None
        self._connect_timeout = connect_timeout
        self._idle: list[_Connection] = []

    async def _connect(self) -> _Connection:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, ssl=self._ssl, limit=MAX_HEAD),
                self._connect_timeout,
            )
        except (OSError, TimeoutError) as exc:
            raise ConnectFailed(f"cannot connect to {self.authority}: {exc!r}") from None
        return _Connection(reader, writer)

    def _give_back(self, conn: _Connection, *, reusable: bool) -> None:
        if reusable and len(self._idle) < MAX_IDLE and not conn.writer.is_closing():
            conn.reused = True
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        else:
            conn.close()

    def _pooled(self) -> _Connection | None:
        """A pooled connection that still looks alive, or None."""
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if (
                now - conn.idle_since < IDLE_SECONDS
                and not conn.reader.at_eof()
                and not conn.writer.is_closing()
            ):
                return conn
            conn.close()
        return None

    async def request(self, method: str, headers: Mapping[str, str], body: bytes = b"") -> Response:
        """Send one request; if a pooled connection turns out closed, retry on a fresh one."""
        conn = self._pooled() or await self._connect()
        try:
            return await self._exchange(conn, method, headers, body)
        except (OSError, EOFError, asyncio.LimitOverrunError, ValueError) as exc:
            conn.close()
            if not conn.reused:
                raise ClientError(f"{method} {self.target} failed: {exc!r}") from None
        # The server closed the kept-alive connection before reading the request.
        conn = await self._connect()
        try:
            return await self._exchange(conn, method, headers, body)
        except (OSError, EOFError, asyncio.LimitOverrunError, ValueError) as exc:
            conn.close()
            raise ClientError(f"{method} {self.target} failed: {exc!r}") from None

    async def _exchange(
        self, conn: _Connection, method: str, headers: Mapping[str, str], body: bytes
    ) -> Response:
        lines = [f"{method} {self.target} HTTP/1.1", f"host: {self.authority}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if body or method in ("POST", "PUT"):
            lines.append(f"content-length: {len(body)}")
        conn.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        head = await conn.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
        version, _, rest = status_line.partition(" ")
        if not version.startswith("HTTP/1."):
            raise ValueError(f"not an HTTP/1.x answer: {status_line!r}")
        parsed: dict[str, str] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            parsed[name.strip().lower()] = value.strip()
        return Response(self, conn, int(rest[:3]), parsed)

    def close(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()
