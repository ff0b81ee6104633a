"""Keeps one downstream server connected: start, handshake, catalog, restart with backoff.

A Supervisor owns at most one live Connection. While it is READY, calls go
through; otherwise they fail at once with DownstreamUnavailable. When the
connection ends (crash, kill -9, HTTP failure) the server's tools vanish, the
gateway is told (``on_change``), and a new connection is tried after a backoff
that doubles up to a maximum and resets after a stable run.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from toolman import __version__
from toolman.config import SupervisorOptions
from toolman.downstream import Connection, HttpConnection, ProgressHandler, StdioConnection
from toolman.downstream.base import Related
from toolman.downstream.modern import MODERN_VERSION, ModernHttpConnection, modern_capabilities
from toolman.errors import DownstreamUnavailable, RpcError, ToolmanError
from toolman.servers import HttpServer, ServerConfig, describe_failure

log = logging.getLogger("toolman.supervisor")

CLIENT_VERSION = "2025-11-25"
ACCEPTED_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
MAX_PAGES = 100
STABLE_RUN_SECONDS = 30.0


def relayable(connection: Connection) -> dict[str, Any]:
    """The client capabilities toolman can honour for this connection.

    Sampling and elicitation are relayed to the client of the call that asks
    (toolman.related), which only a remote server's per-request stream allows;
    a stdio server asking would get -32601, so it is not offered them.
    """
    if isinstance(connection, HttpConnection):
        return {"sampling": {}, "elicitation": {"form": {}}}
    return {}


class State(enum.Enum):
    STARTING = "starting"
    READY = "ready"
    DOWN = "down"
    STOPPED = "stopped"


@dataclass(frozen=True)
class Catalog:
    """What one server offers, as its own (unprefixed) JSON objects."""

    tools: tuple[dict[str, Any], ...] = ()
    resources: tuple[dict[str, Any], ...] = ()
    templates: tuple[dict[str, Any], ...] = ()
    prompts: tuple[dict[str, Any], ...] = ()
    capabilities: dict[str, Any] = field(default_factory=dict)


class Supervisor:
    def __init__(
        self,
        config: ServerConfig,
        options: SupervisorOptions,
        on_change: Callable[[], None],
        on_updated: Callable[[str, str], None] | None = None,
    ) -> None:
        self.config = config
        self._on_updated = on_updated  # (server, uri) of notifications/resources/updated
        self.name = config.name
        self._options = options
        self._on_change = on_change
        self.state = State.STARTING
        self.last_error: str | None = None
        self.restarts = 0
        self.catalog: Catalog | None = None  # None while not READY
        self.last_tools: tuple[dict[str, Any], ...] = ()  # kept while down: stable naming
        self.first_attempt = asyncio.Event()
        # The revision spoken to the server once ready; a remote server's server/discover
        # answer is kept across reconnects and asked again only after a failed start.
        self.protocol: str | None = None
        self._discovered: dict[str, Any] | None = None
        self._legacy = False  # a remote server known not to speak 2026-07-28
        self._connection: Connection | None = None
        self._starting: Connection | None = None
        self._closing: Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._refresh: asyncio.Task[None] | None = None
        self._dirty = False

    @property
    def pid(self) -> int | None:
        return self._connection.pid if self._connection and self.state is State.READY else None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"supervise-{self.name}")

    async def stop(self) -> None:
        self.state = State.STOPPED
        for task in (self._refresh, self._task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self.catalog = None

    async def call(
        self,
        method: str,
        params: dict[str, Any],
        on_progress: ProgressHandler | None = None,
        related: Related | None = None,
    ) -> dict[str, Any]:
        connection = self._connection
        if self.state is not State.READY or connection is None:
            raise DownstreamUnavailable(self.name, self.last_error or self.state.value)
        return await connection.request(
            method,
            params,
            timeout=self.config.timeout_seconds,
            on_progress=on_progress,
            related=related,
        )

    async def unavailable(self) -> dict[str, Any]:
        """The answer to a call while the server is not ready."""
        raise DownstreamUnavailable(self.name, self.last_error or self.state.value)

    async def _run(self) -> None:
        try:
            await self._loop()
        finally:
            # Cancelled by stop() or shutdown, possibly in the middle of a close:
            # whatever is open is closed and reaped here (close is idempotent).
            leftovers = {self._connection, self._starting, self._closing} - {None}
            self._connection = self._starting = self._closing = None
            for connection in leftovers:
                assert connection is not None
                await connection.close()

    async def _close(self, connection: Connection) -> None:
        self._closing = connection
        await connection.close()
        self._closing = None

    async def _loop(self) -> None:
        backoff = self._options.backoff_initial_seconds
        while True:
            connection = self._starting = self._connect()
            started = time.monotonic()
            try:
                async with asyncio.timeout(self.config.startup_timeout_seconds):
                    await connection.start()
                    if isinstance(connection, ModernHttpConnection):
                        connection = self._starting = await self._probe(connection)
                    catalog = await self._handshake(connection)
            except Exception as exc:  # any failure ends in a retry, never a dead supervisor
                if not isinstance(exc, ToolmanError | OSError | TimeoutError):
                    log.exception("unexpected error while starting", extra={"server": self.name})
                reason = describe_failure(exc, self.config)
                self._starting = None
                self._discovered, self._legacy = None, False  # ask again next time
                await self._close(connection)
                self._went_down(f"start failed: {reason}")
            else:
                self._connection, self.catalog, self.last_tools = connection, catalog, catalog.tools
                self._starting = None
                self.state, self.last_error = State.READY, None
                self.first_attempt.set()
                log.info("server ready", extra={"server": self.name, "pid": connection.pid})
                self._on_change()
                await connection.closed.wait()
                self._connection = None
                await self._close(connection)
                self._went_down(connection.close_reason)
                if time.monotonic() - started > STABLE_RUN_SECONDS:
                    backoff = self._options.backoff_initial_seconds
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._options.backoff_max_seconds)
            self.restarts += 1
            self.state = State.STARTING

    def _went_down(self, reason: str) -> None:
        was_ready = self.catalog is not None
        self.state, self.last_error, self.catalog = State.DOWN, reason, None
        self.first_attempt.set()
        log.warning("server down", extra={"server": self.name, "reason": reason})
        if was_ready:
            self._on_change()

    def _connect(self) -> Connection:
        if isinstance(self.config, HttpServer):
            if self.config.protocol == "auto" and not self._legacy:
                return ModernHttpConnection(self.config, self._notification)
            return HttpConnection(self.config, self._notification)
        return StdioConnection(self.config, self._notification)

    async def _probe(self, connection: ModernHttpConnection) -> Connection:
        """The connection to keep: this one if the server speaks 2026-07-28, else a session's."""
        if self._discovered is None:
            self._discovered = await connection.discover(self.config.startup_timeout_seconds)
        if self._discovered is not None:
            return connection
        log.info("server speaks no 2026-07-28: initialize", extra={"server": self.name})
        self._legacy = True
        await connection.close()
        assert isinstance(self.config, HttpServer)
        return HttpConnection(self.config, self._notification)

    async def _handshake(self, connection: Connection) -> Catalog:
        if isinstance(connection, ModernHttpConnection):
            assert self._discovered is not None
            self.protocol = MODERN_VERSION
            connection.after_discover()
            return await self._fetch(connection, modern_capabilities(self._discovered))
        timeout = self.config.startup_timeout_seconds
        result = await connection.request(
            "initialize",
            {
                "protocolVersion": CLIENT_VERSION,
                "capabilities": relayable(connection),
                "clientInfo": {"name": "toolman", "version": __version__},
            },
            timeout=timeout,
        )
        version = result.get("protocolVersion")
        if version not in ACCEPTED_VERSIONS:
            raise RpcError(-32602, f"server answered with unsupported protocol version {version!r}")
        self.protocol = version
        connection.after_initialize(result)
        await connection.notify("notifications/initialized")
        capabilities = result.get("capabilities")
        capabilities = capabilities if isinstance(capabilities, dict) else {}
        return await self._fetch(connection, capabilities)

    async def _fetch(self, connection: Connection, capabilities: dict[str, Any]) -> Catalog:
        async def listing(method: str, key: str, capability: str) -> tuple[dict[str, Any], ...]:
            if capability not in capabilities:
                return ()
            items: list[dict[str, Any]] = []
            cursor = None
            for _page in range(MAX_PAGES):
                params: dict[str, Any] = {"cursor": cursor} if cursor else {}
                result = await connection.request(
                    method, params, timeout=self.config.timeout_seconds
                )
                items.extend(item for item in result.get(key, []) if isinstance(item, dict))
                cursor = result.get("nextCursor")
                if not isinstance(cursor, str) or not cursor:
                    break
            return tuple(items)

        tools = await listing("tools/list", "tools", "tools")
        extras: list[tuple[dict[str, Any], ...]] = []
        for method, key, capability in (
            ("resources/list", "resources", "resources"),
            ("resources/templates/list", "resourceTemplates", "resources"),
            ("prompts/list", "prompts", "prompts"),
        ):
            try:
                extras.append(await listing(method, key, capability))
            except RpcError as exc:  # optional lists: a server may not implement all of them
                log.info(
                    "listing failed",
                    extra={"server": self.name, "method": method, "error": exc.message},
                )
                extras.append(())
        return Catalog(tools, extras[0], extras[1], extras[2], capabilities)

    def _notification(self, method: str, params: dict[str, Any]) -> None:
        if method.endswith("/list_changed") and self.state is State.READY:
            self._dirty = True  # a refresh already running fetches again when it ends
            if self._refresh is None or self._refresh.done():
                self._refresh = asyncio.create_task(self._refetch(), name=f"refresh-{self.name}")
        elif method == "notifications/resources/updated" and self._on_updated is not None:
            uri = params.get("uri")
            if isinstance(uri, str):
                self._on_updated(self.name, uri)
        elif method == "notifications/message":
            log.info("server log", extra={"server": self.name, "data": params.get("data")})

    async def _refetch(self) -> None:
        for _round in range(10):  # bounded: a server that never stops changing is re-read later
            connection = self._connection
            if not self._dirty or connection is None:
                return
            self._dirty = False
            try:
                capabilities = self.catalog.capabilities if self.catalog else {}
                catalog = await self._fetch(connection, capabilities)
            except ToolmanError as exc:
                log.warning("refresh failed", extra={"server": self.name, "error": str(exc)})
                return
            if self.state is State.READY:
                self.catalog, self.last_tools = catalog, catalog.tools
                self._on_change()
