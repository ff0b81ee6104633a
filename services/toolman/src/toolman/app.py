"""The HTTP application: an app factory so tests and the CLI build the same thing.

``/mcp`` goes straight to the raw ASGI endpoint (the hot path); ``/health``,
``/ready`` and ``/metrics`` are small Starlette routes. The lifespan starts the
gateway (downstream servers, reload watcher) and stops it, reaping every child
process, on shutdown. Starlette rather than FastAPI: FastAPI's import of
pydantic alone costs ~12 MB of resident memory in a sidecar that runs next to
every agent, for three routes that need no validation.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from toolman import __version__
from toolman.asgi import Receive, Scope, Send
from toolman.config import Config
from toolman.gateway import Gateway
from toolman.reload import ConfigWatcher
from toolman.settings import Settings
from toolman.transport import McpEndpoint

MCP_PATHS = frozenset({"/mcp", "/mcp/"})


class ToolmanApp:
    """Routes /mcp to the MCP endpoint and everything else (and lifespan) to Starlette."""

    def __init__(self, gateway: Gateway, api: Starlette) -> None:
        self.gateway = gateway
        self.api = api
        self.mcp = McpEndpoint(gateway)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in MCP_PATHS:
            await self.mcp(scope, receive, send)
        else:
            await self.api(scope, receive, send)


def create_app(
    settings: Settings | None = None,
    config: Config | None = None,
    *,
    config_path: Path | None = None,
) -> ToolmanApp:
    """The app; with ``config_path`` the file is watched and reloaded (and on SIGHUP)."""
    settings = settings or Settings()
    gateway = Gateway(config or Config(), settings)
    watcher = ConfigWatcher(config_path, gateway) if config_path is not None else None

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await gateway.start()
        if watcher is not None:
            watcher.start()
        # Start-up objects live forever: keep the collector from rescanning them,
        # which trims the latency tail of the hot path.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            if watcher is not None:
                await watcher.stop()
            await gateway.stop()

    async def health(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "service": "toolman", "version": __version__})

    async def ready(_request: Request) -> JSONResponse:
        status = gateway.status()
        return JSONResponse(status, status_code=200 if status["ready"] else 503)

    async def metrics(_request: Request) -> PlainTextResponse:
        return PlainTextResponse(
            gateway.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    api = Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/ready", ready, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    return ToolmanApp(gateway, api)
