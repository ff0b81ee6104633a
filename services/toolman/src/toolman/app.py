"""The HTTP application: an app factory so tests and the CLI build the same thing.

``/mcp`` goes straight to the raw ASGI endpoint (the hot path); ``/health``,
``/ready`` and ``/metrics`` are small FastAPI routes. The FastAPI lifespan
starts the gateway (downstream servers, reload watcher) and stops it, reaping
every child process, on shutdown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse

from toolman import __version__
from toolman.asgi import Receive, Scope, Send
from toolman.config import Config
from toolman.gateway import Gateway
from toolman.reload import ConfigWatcher
from toolman.settings import Settings
from toolman.transport import McpEndpoint

MCP_PATHS = frozenset({"/mcp", "/mcp/"})


class ToolmanApp:
    """Routes /mcp to the MCP endpoint and everything else (and lifespan) to FastAPI."""

    def __init__(self, gateway: Gateway, api: FastAPI) -> None:
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
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await gateway.start()
        if watcher is not None:
            watcher.start()
        try:
            yield
        finally:
            if watcher is not None:
                await watcher.stop()
            await gateway.stop()

    api = FastAPI(title="toolman", version=__version__, lifespan=lifespan, openapi_url=None)

    @api.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "service": "toolman", "version": __version__}

    @api.get("/ready")
    async def ready() -> JSONResponse:
        status = gateway.status()
        return JSONResponse(status, status_code=200 if status["ready"] else 503)

    @api.get("/metrics")
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(
            gateway.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    return ToolmanApp(gateway, api)
