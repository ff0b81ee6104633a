"""MCP sessions: one per ``initialize``, bound to the agent that opened it.

A session remembers its negotiated protocol version, what its agent was last
shown (to send ``list_changed`` only when that changes), its requests in
flight (for ``notifications/cancelled``) and an outbox for the optional GET
stream. Sessions end on DELETE, after an idle timeout, or to make room when
the store is full: the new session's agent gives up its own least recently
used idle session (no call in flight, no GET stream open) if it has one,
else the least recently used idle session of any agent ends; with none idle
the new session is refused, so one agent opening many sessions never cuts
another agent's calls or streams.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from toolman.related import Outstanding

OUTBOX_LIMIT = 256


@dataclass(eq=False)
class Session:
    id: str
    agent: str
    protocol_version: str
    last_seen: float = field(default_factory=time.monotonic)
    shown: dict[str, int] = field(default_factory=dict)  # kind -> fingerprint last listed
    in_flight: dict[object, asyncio.Task[Any]] = field(default_factory=dict)
    stream_open: bool = False
    pending: set[str] = field(default_factory=set)  # list_changed kinds owed to a future stream
    log_level: str | None = None  # set by logging/setLevel
    client_capabilities: dict[str, Any] = field(default_factory=dict)  # from initialize
    # A 2026-07-28 request or subscriptions/listen stream, never stored: its kinds of
    # list_changed, and the _meta (subscription id) stamped on what it is sent.
    modern: bool = False
    kinds: frozenset[str] = frozenset({"tools", "prompts", "resources"})
    stamp: dict[str, Any] | None = None
    asker: Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]] | None = None
    outstanding: Outstanding = field(default_factory=Outstanding)  # toolman's asks of the client
    # Made on first use: a 2026-07-28 request's session, thrown away after one call,
    # never needs them.
    _outbox: asyncio.Queue[dict[str, Any]] | None = field(default=None, init=False, repr=False)
    _ended: asyncio.Event | None = field(default=None, init=False, repr=False)

    @property
    def outbox(self) -> asyncio.Queue[dict[str, Any]]:
        """What the GET stream (or a subscriptions/listen stream) is to send."""
        if self._outbox is None:
            self._outbox = asyncio.Queue(OUTBOX_LIMIT)
        return self._outbox

    @property
    def ended(self) -> asyncio.Event:
        if self._ended is None:
            self._ended = asyncio.Event()
        return self._ended

    def notify(self, method: str, params: dict[str, Any]) -> None:
        """A notification for the GET stream; dropped while none is open or the outbox is full."""
        if self.stamp is not None:
            params = {**params, "_meta": self.stamp}
        if self.stream_open and not self.outbox.full():
            self.outbox.put_nowait({"jsonrpc": "2.0", "method": method, "params": params})

    def list_changed(self, kind: str) -> None:
        """Queue ``notifications/<kind>/list_changed``; coalesced while no stream is open."""
        if kind not in self.kinds:
            return
        if not self.stream_open:
            self.pending.add(kind)
            return
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": f"notifications/{kind}/list_changed"}
        if self.stamp is not None:
            message["params"] = {"_meta": self.stamp}
        if not self.outbox.full():
            self.outbox.put_nowait(message)

    def open_stream(self) -> None:
        self.stream_open = True
        for kind in sorted(self.pending):
            self.list_changed(kind)
        self.pending.clear()

    @property
    def busy(self) -> bool:
        """A call in flight or a GET stream open: never evicted to make room."""
        return bool(self.in_flight) or self.stream_open

    def end(self) -> None:
        self.ended.set()
        self.outstanding.cancel_all()
        for task in self.in_flight.values():
            task.cancel()


class SessionStore:
    def __init__(self, *, idle_seconds: float, limit: int) -> None:
        self.idle_seconds = idle_seconds
        self.limit = limit
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def __iter__(self) -> Iterator[Session]:
        return iter(list(self._sessions.values()))

    def create(self, agent: str, protocol_version: str) -> Session | None:
        """A new session, or None when the store is full and no session is idle."""
        self.sweep()
        while len(self._sessions) >= self.limit:
            victim = self._victim(agent)
            if victim is None:
                return None
            self.end(victim.id)
        session = Session(secrets.token_urlsafe(24), agent, protocol_version)
        self._sessions[session.id] = session
        return session

    def _victim(self, agent: str) -> Session | None:
        """The agent's least recently used idle session, else anyone's, else None."""
        oldest_idle = None
        for session in self._sessions.values():  # least recently used first
            if session.busy:
                continue
            if session.agent == agent:
                return session
            if oldest_idle is None:
                oldest_idle = session
        return oldest_idle

    def get(self, session_id: str) -> Session | None:
        session = self._sessions.get(session_id)
        if session is None:
            return None
        now = time.monotonic()
        if now - session.last_seen > self.idle_seconds and not session.stream_open:
            self.end(session_id)
            return None
        session.last_seen = now
        self._sessions.move_to_end(session_id)
        return session

    def end(self, session_id: str) -> bool:
        session = self._sessions.pop(session_id, None)
        if session is None:
            return False
        session.end()
        return True

    def sweep(self) -> None:
        deadline = time.monotonic() - self.idle_seconds
        for session_id, session in list(self._sessions.items()):
            if session.last_seen >= deadline:
                break  # ordered by last use: the rest are fresher
            if not session.stream_open:
                self.end(session_id)

    def end_all(self) -> None:
        for session_id in list(self._sessions):
            self.end(session_id)
