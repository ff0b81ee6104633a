"""The Docker backend: one task is a toolman container that owns a network namespace and
an agent container that joins it, so the agent reaches its sidecar on `localhost:3000`
as it does in a Kubernetes pod (pair.py makes them).

A launch is safe to repeat after a crash: an agent that ever started is adopted, never
started again; leftovers of a launch that did not get that far are removed first. Exits
are seen through the engine's event stream (with a poll as a safety net); everything
the backend needs to find a task again is in the engine, labelled (options.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import aclosing, suppress

import httpx
from docker.errors import APIError, DockerException, NotFound
from docker.models.containers import Container

from orchestrator.backends import workspace
from orchestrator.backends.base import (
    AgentState,
    BackendUnavailable,
    Launch,
    LaunchCancelled,
    LaunchError,
    LaunchTimings,
    Observation,
)
from orchestrator.backends.docker.engine import Engine, explain, timestamp
from orchestrator.backends.docker.options import (
    LABEL_ROLE,
    LABEL_TASK,
    ROLES,
    DockerOptions,
)
from orchestrator.backends.docker.pair import create_pair, until_ready
from orchestrator.backends.threads import iterate_in_thread
from orchestrator.tasks.model import LogStream
from orchestrator.waiting import wait_at_most

EVENT_POLL_SECONDS = 5.0  # waits re-check the engine this often even without an event


class DockerBackend:
    name = "docker"

    def __init__(self, options: DockerOptions, http: httpx.AsyncClient) -> None:
        self.options = options
        self.http = http
        self.engine = Engine(options.environment)
        self._exits: dict[str, asyncio.Event] = {}
        self._watcher: asyncio.Task[None] | None = None

    async def ping(self) -> None:
        await self.engine.ping()

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with suppress(asyncio.CancelledError):
                await self._watcher
        self.engine.close()

    def _container(self, task_id: str, role: str) -> Container | None:
        try:
            return self.engine.client().containers.get(self.options.name(task_id, role))
        except NotFound:
            return None

    # -- launch ---------------------------------------------------------------------------

    async def launch(self, launch: Launch, cancel: asyncio.Event) -> LaunchTimings:
        began = time.monotonic()
        existing = await self.engine.call(self._container, launch.task_id, "agent")
        if existing is not None and timestamp(existing.attrs["State"].get("StartedAt")):
            return LaunchTimings()  # it ran already: adopt it, never start it twice
        await self.cleanup(launch.task_id)  # leftovers of a launch that stopped half-way
        files = await workspace.cloned_archive(
            launch.repository,
            launch.files,
            max_bytes=self.options.max_workspace_bytes,
            clone_timeout=self.options.clone_timeout_seconds,
            cancel=cancel,
            credentials=launch.repository_credentials,
            uid=self.options.uid,
        )
        with files:
            toolman, agent = await self.engine.call(
                lambda: create_pair(self.engine.client(), self.options, launch, files)
            )
        prepared = time.monotonic()
        await self.engine.call(toolman.start)
        await until_ready(self.engine, self.http, self.options, toolman, cancel)
        ready = time.monotonic()
        if cancel.is_set():
            raise LaunchCancelled("cancelled before the agent started")
        try:
            await self.engine.call(agent.start)
        except APIError as exc:
            raise LaunchError(f"the agent container did not start: {explain(exc)}") from exc
        return LaunchTimings(prepared - began, ready - prepared, time.monotonic() - ready)

    # -- watching -------------------------------------------------------------------------

    async def observe(self, task_id: str) -> Observation:
        agent = await self.engine.call(self._container, task_id, "agent")
        if agent is None:
            return Observation(AgentState.ABSENT)
        state = agent.attrs["State"]
        started = timestamp(state.get("StartedAt"))
        if agent.status == "created":
            return Observation(AgentState.CREATED)
        if agent.status in ("running", "restarting", "paused"):
            return Observation(AgentState.RUNNING, started_at=started)
        detail = "killed: out of memory (raise resources.memory)" if state.get("OOMKilled") else ""
        return Observation(AgentState.EXITED, state.get("ExitCode"), started, detail)

    async def wait(self, task_id: str, timeout: float) -> Observation:
        self._ensure_watcher()
        exited = self._exits.setdefault(task_id, asyncio.Event())
        deadline = time.monotonic() + timeout
        try:
            while True:
                exited.clear()
                observed = await self.observe(task_id)
                left = deadline - time.monotonic()
                if observed.agent is not AgentState.RUNNING or left <= 0:
                    return observed
                await wait_at_most(exited, min(left, EVENT_POLL_SECONDS))
        finally:
            self._exits.pop(task_id, None)

    def _ensure_watcher(self) -> None:
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.get_running_loop().create_task(self._watch_exits())

    async def _watch_exits(self) -> None:
        """Wake the waits of tasks whose agent died (the engine's event stream)."""
        filters: dict[str, str | list[str] | bool] = {"type": "container", "event": ["die"]}
        filters |= self.options.selector(f"{LABEL_ROLE}=agent")
        while True:
            try:
                events = iterate_in_thread(
                    lambda: self.engine.client().events(decode=True, filters=filters),
                    name="docker-events",
                )
                async for event in events:
                    task_id = event.get("Actor", {}).get("Attributes", {}).get(LABEL_TASK)
                    if task_id in self._exits:
                        self._exits[task_id].set()
            except (DockerException, OSError, BackendUnavailable):
                pass  # the engine went away: waits poll until it is back
            await asyncio.sleep(EVENT_POLL_SECONDS)

    # -- stopping, logs, cleanup ----------------------------------------------------------

    async def stop(self, task_id: str, grace_seconds: float) -> None:
        for role in ROLES:
            container = await self.engine.call(self._container, task_id, role)
            if container is not None and container.status in ("running", "restarting"):
                with suppress(NotFound):
                    await self.engine.call(container.stop, timeout=max(1, round(grace_seconds)))

    async def logs(self, task_id: str, stream: LogStream, *, follow: bool) -> AsyncIterator[bytes]:
        container = await self.engine.call(self._container, task_id, stream.value)
        if container is None:
            return
        chunks = iterate_in_thread(
            lambda: container.logs(stream=True, follow=follow, stdout=True, stderr=True),
            name=f"logs-{task_id[:8]}-{stream.value}",
        )
        async with aclosing(chunks):
            async for chunk in chunks:
                yield chunk

    async def cleanup(self, task_id: str) -> None:
        def remove() -> None:
            client = self.engine.client()
            for role in ROLES:
                with suppress(NotFound):
                    name = self.options.name(task_id, role)
                    client.api.remove_container(name, force=True, v=False)
            with suppress(NotFound):
                client.volumes.get(self.options.name(task_id, "workspace")).remove(force=True)

        await self.engine.call(remove)

    async def task_ids(self) -> set[str]:
        def listed() -> set[str]:
            selector = self.options.selector(LABEL_TASK)
            found = self.engine.client().containers.list(all=True, filters=selector)
            volumes = self.engine.client().volumes.list(filters=selector)
            return {c.labels[LABEL_TASK] for c in found} | {
                v.attrs["Labels"][LABEL_TASK] for v in volumes
            }

        return await self.engine.call(listed)
