"""Running the app under uvicorn, tuned for a sidecar's latency.

- uvloop and httptools when installed (they are dependencies on Linux).
- Corked writes: uvicorn writes a response's head and body separately; each
  write wakes the client, and on virtual machines each wake-up is a costly
  cross-CPU interrupt. Writes made in one event-loop turn are joined into one.
- Shutdown ends MCP sessions first, so open GET streams close at once instead
  of holding up uvicorn's graceful shutdown until its timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
from collections.abc import Iterator
from types import FrameType
from typing import Any

import uvicorn

from toolman import logs
from toolman.app import ToolmanApp
from toolman.settings import Settings


class CorkedTransport:
    """A transport proxy that sends everything written in one loop turn as one write."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._buffer: list[bytes] = []
        self._scheduled = False

    def write(self, data: bytes) -> None:
        if not data:
            return
        self._buffer.append(data)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        if self._buffer:
            data = b"".join(self._buffer)
            self._buffer.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:  # noqa: ANN401 - a transparent proxy
        return getattr(self._transport, name)


def _protocol_class() -> type[asyncio.Protocol] | None:
    if importlib.util.find_spec("httptools") is None:
        return None
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class CorkedHttpToolsProtocol(HttpToolsProtocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            corked = CorkedTransport(transport, self.loop)
            super().connection_made(corked)  # type: ignore[arg-type]

    return CorkedHttpToolsProtocol


def serve(app: ToolmanApp, settings: Settings) -> bool:
    """Serve until SIGTERM/SIGINT; False if the server could not start."""
    options: dict[str, Any] = {}
    if importlib.util.find_spec("uvloop") is not None:
        options["loop"] = "uvloop"
    protocol = _protocol_class()
    if protocol is not None:
        options["http"] = protocol

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            with super().capture_signals():
                try:
                    yield
                finally:
                    logs.flush()  # uvicorn re-raises SIGTERM next: the process ends at once

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            loop = app.gateway.loop
            if loop is not None and not loop.is_closed():
                loop.call_soon_threadsafe(app.gateway.sessions.end_all)
            super().handle_exit(sig, frame)

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        log_level=settings.log_level,
        access_log=False,
        proxy_headers=False,  # toolman never uses the client address
        lifespan="on",
        timeout_graceful_shutdown=5,
        **options,
    )
    server = Server(config)
    server.run()
    return bool(server.started)
