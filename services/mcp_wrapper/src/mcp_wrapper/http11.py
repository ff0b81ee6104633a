"""A small asyncio HTTP/1.1 client: exactly what the wrapper needs, nothing more.

Why not httpx: measured with hyperfine on the project's machines (CPython 3.11),
``import asyncio, json`` takes 55 ms and 19.7 MB RSS; adding ``import httpx``
costs +73 ms and +7.4 MB, adding ``h11`` +17 ms and +1.3 MB. The wrapper's
budget is 300 ms and 30 MB for the whole process, and it only talks to one
origin with three verbs, so a keep-alive pool over ``asyncio.open_connection``
with Content-Length / chunked / read-to-close bodies is all it takes.

Not supported, on purpose: redirects (an MCP endpoint that redirects is a
misconfiguration the user should see), proxies, compression, HTTP/2.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncGenerator, Mapping
from types import TracebackType

from mcp_wrapper.endpoint import Endpoint
from mcp_wrapper.errors import (
    ConnectionLost,
    UnreachableError,
    UpstreamProtocolError,
)

MAX_HEAD = 64 * 1024
MAX_BODY = 64 * 1024 * 1024
# Idle keep-alive connections are dropped before servers drop them (uvicorn: 5 s),
# so a request never races the server's close of a stale connection.
KEEPALIVE_IDLE = 4.0
MAX_IDLE_CONNECTIONS = 8


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = time.monotonic()

    def reusable(self) -> bool:
        # EOF already seen means the server closed it while it sat in the pool.
        fresh = time.monotonic() - self.idle_since < KEEPALIVE_IDLE
        return fresh and not self.reader.at_eof() and not self.writer.is_closing()

    def close(self) -> None:
        self.writer.close()


class Response:
    """Status and headers of one answer; the body is read (or streamed) on demand.

    Use as ``async with``: leaving returns a fully read keep-alive connection to
    the pool and closes anything else (a cancelled stream, a read-to-close body).
    """

    def __init__(
        self,
        client: HttpClient,
        conn: _Connection,
        status: int,
        reason: str,
        headers: dict[str, str],
        *,
        keep_alive: bool,
        has_body: bool,
    ) -> None:
        self._client = client
        self._conn: _Connection | None = conn
        self.status = status
        self.reason = reason
        self.headers = headers
        self._keep_alive = keep_alive
        self._chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        self._remaining: int | None = None
        self._done = not has_body
        if has_body and not self._chunked:
            length = headers.get("content-length")
            if length is None:
                self._keep_alive = False  # the body ends when the server closes
            elif length.strip().isdigit():
                self._remaining = int(length)
                self._done = self._remaining == 0
            else:
                raise UpstreamProtocolError(f"invalid Content-Length {length!r}")

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").partition(";")[0].strip().lower()

    async def __aenter__(self) -> Response:
        return self

    async def __aexit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.release()

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._done and self._keep_alive:
            self._client.return_to_pool(conn)
        else:
            conn.close()

    async def read(self, limit: int = MAX_BODY) -> bytes:
        body = bytearray()
        async for chunk in self.iter_bytes():
            body += chunk
            if len(body) > limit:
                raise UpstreamProtocolError(f"response body larger than {limit} bytes")
        return bytes(body)

    async def iter_bytes(self) -> AsyncGenerator[bytes, None]:
        conn = self._conn
        if conn is None or self._done:
            return
        reader = conn.reader
        try:
            if self._chunked:
                while size := await self._chunk_size(reader):
                    data = await reader.readexactly(size)
                    await reader.readuntil(b"\n")  # the CRLF after each chunk
                    yield data
                while (await reader.readuntil(b"\n")).strip():
                    pass  # trailers
            elif self._remaining is not None:
                while self._remaining > 0:
                    data = await reader.read(min(self._remaining, 65536))
                    if not data:
                        raise asyncio.IncompleteReadError(b"", self._remaining)
                    self._remaining -= len(data)
                    yield data
            else:
                while data := await reader.read(65536):
                    yield data
        except (asyncio.IncompleteReadError, ConnectionError, OSError) as exc:
            raise ConnectionLost(
                f"toolman closed the connection mid-response ({exc.__class__.__name__})",
                response_started=True,
            ) from exc
        except asyncio.LimitOverrunError as exc:
            raise UpstreamProtocolError("malformed chunked body from toolman") from exc
        self._done = True

    @staticmethod
    async def _chunk_size(reader: asyncio.StreamReader) -> int:
        line = await reader.readuntil(b"\n")
        try:
            return int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise UpstreamProtocolError(f"malformed chunk size {line[:40]!r}") from None


class HttpClient:
    """Keep-alive connections to one endpoint; one connection per in-flight request."""

    def __init__(self, endpoint: Endpoint, *, user_agent: str = "mcp-wrapper") -> None:
        self.endpoint = endpoint
        self._user_agent = user_agent
        self._idle: list[_Connection] = []
        self._ssl = ssl.create_default_context() if endpoint.scheme == "https" else None

    async def request(
        self,
        method: str,
        headers: Mapping[str, str],
        body: bytes = b"",
        *,
        retry_stale: bool = True,
    ) -> Response:
        """Send one request and read the status and headers.

        ``retry_stale``: if a reused keep-alive connection turns out dead before
        any byte of the answer arrived, send once more on a new connection.
        Callers pass False for requests that must never be sent twice.
        """
        head = self._head(method, headers, body)
        conn, reused = await self._acquire()
        try:
            return await self._exchange(conn, method, head + body)
        except ConnectionLost as exc:
            conn.close()
            if reused and retry_stale and not exc.response_started:
                conn = await self._connect()
                try:
                    return await self._exchange(conn, method, head + body)
                except BaseException:
                    conn.close()
                    raise
            raise
        except BaseException:
            conn.close()
            raise

    def return_to_pool(self, conn: _Connection) -> None:
        if len(self._idle) >= MAX_IDLE_CONNECTIONS:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        self._idle.append(conn)

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _head(self, method: str, headers: Mapping[str, str], body: bytes) -> bytes:
        lines = [
            f"{method} {self.endpoint.target} HTTP/1.1",
            f"Host: {self.endpoint.host_header}",
            f"User-Agent: {self._user_agent}",
        ]
        for name, value in headers.items():
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
                raise ValueError(f"header {name!r} contains a line break")
            lines.append(f"{name}: {value}")
        if body or method in ("POST", "PUT"):
            lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def _acquire(self) -> tuple[_Connection, bool]:
        while self._idle:
            conn = self._idle.pop()
            if conn.reusable():
                return conn, True
            conn.close()
        return await self._connect(), False

    async def _connect(self) -> _Connection:
        endpoint = self.endpoint
        try:
            reader, writer = await asyncio.open_connection(
                endpoint.host,
                endpoint.port,
                ssl=self._ssl,
                limit=MAX_HEAD,
                server_hostname=endpoint.host if self._ssl else None,
            )
        except OSError as exc:  # refused, unreachable, DNS (gaierror), TLS (SSLError)
            reason = exc.strerror or str(exc) or exc.__class__.__name__
            raise UnreachableError(
                f"cannot connect to toolman at {endpoint.display}: {reason}"
            ) from exc
        return _Connection(reader, writer)

    async def _exchange(self, conn: _Connection, method: str, data: bytes) -> Response:
        started = False
        try:
            conn.writer.write(data)
            await conn.writer.drain()
            while True:
                status_line = await conn.reader.readuntil(b"\n")
                started = True
                version, status, reason = _parse_status(status_line)
                headers = await _read_headers(conn.reader)
                if not 100 <= status < 200:
                    break  # 1xx answers are interim: the real one follows
        except (asyncio.IncompleteReadError, ConnectionError, OSError) as exc:
            what = "mid-response" if started else "before answering"
            raise ConnectionLost(
                f"toolman closed the connection {what} ({exc.__class__.__name__})",
                response_started=started,
            ) from exc
        except asyncio.LimitOverrunError as exc:
            raise UpstreamProtocolError("response head from toolman is too large") from exc
        tokens = {t.strip() for t in headers.get("connection", "").lower().split(",")}
        keep_alive = "keep-alive" in tokens if version == "HTTP/1.0" else "close" not in tokens
        has_body = method != "HEAD" and status not in (204, 304)
        return Response(
            self, conn, status, reason, headers, keep_alive=keep_alive, has_body=has_body
        )


def _parse_status(line: bytes) -> tuple[str, int, str]:
    parts = line.decode("latin-1").strip().split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise UpstreamProtocolError(f"not an HTTP/1.x answer: {line[:60]!r}")
    return parts[0], int(parts[1]), parts[2] if len(parts) > 2 else ""


async def _read_headers(reader: asyncio.StreamReader) -> dict[str, str]:
    headers: dict[str, str] = {}
    size = 0
    while line := (await reader.readuntil(b"\n")).rstrip(b"\r\n"):
        size += len(line)
        if size > MAX_HEAD:
            raise UpstreamProtocolError("response headers from toolman are too large")
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise UpstreamProtocolError(f"malformed header line {line[:60]!r}")
        key = name.strip().lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers
