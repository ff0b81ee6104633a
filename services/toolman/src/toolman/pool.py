"""A pool of identical stdio processes for one server that declares itself stateless.

``"instances": N`` on a stdio server starts N copies, each supervised exactly
like a single server (its own restarts and backoff). To the rest of toolman
the pool is one server: ready while any copy is, its lists taken from the
first ready copy. A copy whose tool, prompt or resource lists differ from that
reference is taken out of rotation (and says so in the log) until they agree
again. Each call goes to the copy in rotation with the fewest calls in flight.
Only for servers that keep no state between calls: two calls of one client may
reach two processes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from toolman.config import SupervisorOptions
from toolman.downstream import ProgressHandler
from toolman.downstream.base import Related
from toolman.errors import DownstreamUnavailable
from toolman.servers import StdioServer
from toolman.supervisor import Catalog, State, Supervisor

log = logging.getLogger("toolman.supervisor")


def _lists(catalog: Catalog) -> tuple[Any, ...]:
    return (catalog.tools, catalog.prompts, catalog.resources, catalog.templates)


class Pool(Supervisor):
    def __init__(
        self,
        config: StdioServer,
        options: SupervisorOptions,
        on_change: Callable[[], None],
        on_updated: Callable[[str, str], None] | None = None,
    ) -> None:
        super().__init__(config, options, on_change, on_updated)
        single = replace(config, instances=1)
        self.members = [
            Supervisor(single, options, self._member_changed, on_updated)
            for _ in range(config.instances)
        ]
        self.in_flight = [0] * len(self.members)
        self.rotation: list[int] = []  # indexes of the ready members that agree
        self._warned: set[int] = set()

    @property
    def pid(self) -> int | None:
        return next((m.pid for m in self.members if m.pid is not None), None)

    @property
    def pids(self) -> list[int | None]:
        return [member.pid for member in self.members]

    def start(self) -> None:
        for member in self.members:
            member.start()
        self._task = asyncio.create_task(self._first_attempts(), name=f"pool-{self.name}")

    async def _first_attempts(self) -> None:
        await asyncio.gather(*(m.first_attempt.wait() for m in self.members))
        self.first_attempt.set()

    async def stop(self) -> None:
        self.state = State.STOPPED
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await asyncio.gather(*(member.stop() for member in self.members))
        self.catalog = None

    def _member_changed(self) -> None:
        ready = [
            (index, member.catalog)
            for index, member in enumerate(self.members)
            if member.state is State.READY and member.catalog is not None
        ]
        reference = ready[0][1] if ready else None
        rotation = []
        for index, catalog in ready:
            if reference is not None and _lists(catalog) == _lists(reference):
                rotation.append(index)
                self._warned.discard(index)
            elif index not in self._warned:
                self._warned.add(index)
                log.warning(
                    "pool member out of rotation: its lists differ from the first ready member's",
                    extra={"server": self.name, "pid": self.members[index].pid},
                )
        self.rotation = rotation
        self.restarts = sum(member.restarts for member in self.members)
        self.protocol = next((self.members[i].protocol for i in rotation), self.protocol)
        if reference is not None:
            self.state, self.last_error = State.READY, None
            self.catalog, self.last_tools = reference, reference.tools
        elif self.state is not State.STOPPED:
            starting = any(m.state is State.STARTING for m in self.members)
            self.state = State.STARTING if starting else State.DOWN
            self.last_error = next((m.last_error for m in self.members if m.last_error), None)
            self.catalog = None
        self._on_change()

    async def call(
        self,
        method: str,
        params: dict[str, Any],
        on_progress: ProgressHandler | None = None,
        related: Related | None = None,
    ) -> dict[str, Any]:
        if not self.rotation:
            raise DownstreamUnavailable(self.name, self.last_error or self.state.value)
        index = min(self.rotation, key=lambda i: self.in_flight[i])
        self.in_flight[index] += 1
        try:
            return await self.members[index].call(method, params, on_progress, related)
        finally:
            self.in_flight[index] -= 1
