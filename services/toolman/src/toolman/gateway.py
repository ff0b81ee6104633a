"""The running gateway: supervisors, catalog, sessions and the live config, and reloads.

Everything that changes what agents can see goes through ``_changed``: a
server came up or went down, its lists changed, or the config was swapped.
The catalog is rebuilt once per event-loop turn and every session whose view
changed is told with ``notifications/*/list_changed``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from toolman.auth import Authenticator
from toolman.catalog import KINDS, Catalog
from toolman.config import Config
from toolman.metrics import Gauge, Labels, Metrics
from toolman.pool import Pool
from toolman.relayed import Relayed
from toolman.servers import StdioServer
from toolman.sessions import Session, SessionStore
from toolman.settings import Settings
from toolman.supervisor import State, Supervisor
from toolman.suspended import Waiting

log = logging.getLogger("toolman.gateway")

SWEEP_SECONDS = 30.0


class Gateway:
    def __init__(self, config: Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.metrics = Metrics()
        self.catalog = Catalog()
        self.auth = Authenticator(config.tokens, settings.agent_name)
        self.sessions = SessionStore(
            idle_seconds=config.http.session_idle_seconds, limit=config.http.max_sessions
        )
        self.supervisors: dict[str, Supervisor] = {}
        self.relayed = Relayed(self)
        self.listeners: set[Session] = set()  # open 2026-07-28 subscriptions/listen streams
        self.waiting = Waiting()  # 2026-07-28 calls waiting for input_required answers
        self.started = asyncio.Event()
        self._rebuild_pending = False
        self._tasks: list[asyncio.Task[None]] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self.metrics.gauges += [
            Gauge("toolman_downstream_up", "1 when the downstream server is ready.", self._up),
            Gauge("toolman_sessions", "Open MCP sessions.", lambda: [((), len(self.sessions))]),
            Gauge(
                "toolman_downstream_restarts_total",
                "Downstream restarts and reconnects.",
                lambda: [((("server", n),), s.restarts) for n, s in self.supervisors.items()],
                kind="counter",
            ),
        ]

    def _up(self) -> list[tuple[Labels, float]]:
        return [
            ((("server", name),), 1.0 if s.state is State.READY else 0.0)
            for name, s in self.supervisors.items()
        ]

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        for server in self.config.servers.values():
            self._add(server.name)
        self._rebuild()
        self._tasks = [
            asyncio.create_task(self._first_attempts(), name="first-attempts"),
            asyncio.create_task(self._sweep(), name="session-sweep"),
        ]

    def _add(self, name: str) -> None:
        config, options = self.config.servers[name], self.config.supervisor
        supervisor: Supervisor
        if isinstance(config, StdioServer) and config.instances > 1:
            supervisor = Pool(config, options, self._changed, self.relayed.updated)
        else:
            supervisor = Supervisor(config, options, self._changed, self.relayed.updated)
        self.supervisors[name] = supervisor
        supervisor.start()

    async def _first_attempts(self) -> None:
        await asyncio.gather(*(s.first_attempt.wait() for s in self.supervisors.values()))
        self.started.set()
        log.info("startup complete", extra={"servers": self.status()["servers"]})

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            self.sessions.sweep()

    async def stop(self) -> None:
        self.sessions.end_all()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(s.stop() for s in self.supervisors.values()))

    async def apply(self, new: Config) -> None:
        """Swap in a validated config; keep sessions and every unchanged server running."""
        old, self.config = self.config, new
        self.auth = Authenticator(new.tokens, self.settings.agent_name)
        self.sessions.idle_seconds = new.http.session_idle_seconds
        self.sessions.limit = new.http.max_sessions
        stopping = [
            self.supervisors.pop(name)
            for name, server in old.servers.items()
            if new.servers.get(name) != server or new.supervisor != old.supervisor
        ]
        self._rebuild()  # removed servers vanish before their processes are reaped
        await asyncio.gather(*(s.stop() for s in stopping))
        for name in new.servers:
            if name not in self.supervisors:
                self._add(name)
        self._rebuild()
        log.info("config applied", extra={"servers": list(new.servers)})

    def _changed(self) -> None:
        if not self._rebuild_pending:
            self._rebuild_pending = True
            asyncio.get_running_loop().call_soon(self._rebuild)

    def _rebuild(self) -> None:
        self._rebuild_pending = False
        ordered = [
            self.supervisors[name] for name in self.config.servers if name in self.supervisors
        ]
        before = self.catalog.clashes
        self.catalog.rebuild(ordered, self.config.rules, self.config.separator)
        for clash in self.catalog.clashes:
            if clash not in before:
                log.error("config error: %s", clash, extra={"error": clash})
        for session in [*self.sessions, *self.listeners]:
            view = self.catalog.view(session.agent)
            for kind in KINDS:
                if session.shown.get(kind, view.fingerprints[kind]) != view.fingerprints[kind]:
                    session.shown[kind] = view.fingerprints[kind]
                    session.list_changed(kind)

    def why_hidden(self, agent: str, exposed: str) -> tuple[str | None, str]:
        """For a call not in the agent's view: which server, and why it is refused.

        ``server_unavailable`` means the agent may use the tool but its server is
        down: the caller answers "unavailable" (retry later), not "unknown tool".
        """
        original = self.catalog.tool_original(exposed)
        if original is None:
            return None, "unknown_tool"
        server, tool = original
        supervisor = self.supervisors.get(server)
        if supervisor is None:
            return None, "unknown_tool"
        decision = self.config.rules.decide(agent, server, tool, exposed)
        if decision.allowed and supervisor.state is not State.READY:
            return server, "server_unavailable"
        return server, decision.reason

    def status(self) -> dict[str, Any]:
        servers = {
            name: {
                "state": s.state.value,
                "transport": "http" if hasattr(s.config, "url") else "stdio",
                "pid": s.pid,
                "tools": len(s.catalog.tools) if s.catalog else 0,
                "restarts": s.restarts,
                "protocol": s.protocol,
                "last_error": s.last_error,
                **({"pids": s.pids} if isinstance(s, Pool) else {}),
            }
            for name, s in self.supervisors.items()
        }
        return {
            "ready": self.started.is_set(),
            "degraded": bool(self.catalog.clashes)
            or any(info["state"] != "ready" for info in servers.values()),
            "sessions": len(self.sessions),
            "servers": servers,
            "config_errors": list(self.catalog.clashes),
        }
