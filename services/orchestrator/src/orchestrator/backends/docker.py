"""The Docker backend: each task is a toolman container that owns a network namespace and
an agent container that joins it (`network_mode=container:<toolman>`), so the agent
reaches its sidecar on `localhost:3000` as it does in a Kubernetes pod.

A launch, in order (each step safe to repeat after a crash, see `launch`):
  1. the workspace volume; the toolman container, created; the agent container, created
     (the volume takes its owner and contents from the agent image's /workspace);
  2. the repository and files into the workspace, the prompt into the agent, the task's
     toolman config into the sidecar (root-owned, read-only) — all through the engine's
     archive API, so the orchestrator needs nothing but the engine's socket;
  3. toolman started; its `/ready` polled on its address in `network`;
  4. the agent started.
Both run as a non-root user with every capability dropped and no-new-privileges, with
the limits given, labelled with the task id (and the orchestrator instance), so a
restarted orchestrator finds them again.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import aclosing, suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO, ParamSpec, TypeVar

import docker
import httpx
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.models.containers import Container

from orchestrator.backends import workspace
from orchestrator.backends.base import (
    PROMPT_PATH,
    TOOLMAN_PORT,
    TOOLMAN_URL,
    WORKSPACE,
    AgentState,
    BackendUnavailable,
    Launch,
    LaunchCancelled,
    LaunchError,
    LaunchTimings,
    Observation,
)
from orchestrator.backends.threads import iterate_in_thread
from orchestrator.tasks.model import LogStream
from orchestrator.waiting import wait_at_most

T = TypeVar("T")
P = ParamSpec("P")
LABEL = "io.5dlabs.orchestrator"
LABEL_TASK = f"{LABEL}.task"
LABEL_ROLE = f"{LABEL}.role"
LABEL_INSTANCE = f"{LABEL}.instance"
TOOLMAN_CONFIG_DIR = "/etc/toolman"
EVENT_POLL_SECONDS = 5.0  # waits re-check the engine this often even without an event


@dataclass(frozen=True)
class DockerOptions:
    agent_image: str
    toolman_image: str
    network: str = "bridge"
    user: str = "10001:10001"
    instance: str = "default"
    name_prefix: str = "orchestrator"
    toolman_env: Mapping[str, str] = field(default_factory=dict, repr=False)
    toolman_cpu: float | None = None
    toolman_memory_bytes: int | None = None
    pids_limit: int = 1024
    ready_timeout_seconds: float = 60.0
    max_workspace_bytes: int = 1 << 30
    environment: Mapping[str, str] | None = field(default=None, repr=False)  # DOCKER_HOST...


class DockerBackend:
    name = "docker"

    def __init__(self, options: DockerOptions, http: httpx.AsyncClient) -> None:
        self.options = options
        self.http = http
        self._client: docker.DockerClient | None = None
        self._client_lock = threading.Lock()
        self._exits: dict[str, asyncio.Event] = {}
        self._watcher: asyncio.Task[None] | None = None

    # -- the engine connection ------------------------------------------------------------

    def _docker(self) -> docker.DockerClient:
        with self._client_lock:
            if self._client is None:
                try:
                    self._client = docker.from_env(
                        timeout=120, max_pool_size=64, environment=self.options.environment
                    )
                except DockerException as exc:
                    raise BackendUnavailable(f"the Docker engine does not answer: {exc}") from exc
            return self._client

    async def _call(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a blocking SDK call in a thread; a connection failure is BackendUnavailable."""

        def call() -> T:
            try:
                return function(*args, **kwargs)
            except (APIError, LaunchError):
                raise
            except DockerException as exc:
                raise BackendUnavailable(f"the Docker engine does not answer: {exc}") from exc
            except OSError as exc:  # requests' ConnectionError is one
                raise BackendUnavailable(f"the Docker engine does not answer: {exc}") from exc

        return await asyncio.to_thread(call)

    async def ping(self) -> None:
        await self._call(lambda: self._docker().ping())

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with suppress(asyncio.CancelledError):
                await self._watcher
        if self._client is not None:
            self._client.close()

    # -- names ----------------------------------------------------------------------------

    def _name(self, task_id: str, role: str) -> str:
        return f"{self.options.name_prefix}-{task_id}-{role}"

    def _labels(self, launch: Launch, role: str) -> dict[str, str]:
        labels = {f"{LABEL}.label.{k}": v for k, v in launch.labels.items()}
        return labels | {
            LABEL_TASK: launch.task_id,
            LABEL_ROLE: role,
            LABEL_INSTANCE: self.options.instance,
        }

    def _container(self, task_id: str, role: str) -> Container | None:
        try:
            return self._docker().containers.get(self._name(task_id, role))
        except NotFound:
            return None

    # -- launch ---------------------------------------------------------------------------

    async def launch(self, launch: Launch, cancel: asyncio.Event) -> LaunchTimings:
        began = time.monotonic()
        existing = await self._call(self._container, launch.task_id, "agent")
        if existing is not None and _started(existing):
            return LaunchTimings()  # it ran already: adopt it, never start it twice
        await self.cleanup(launch.task_id)  # leftovers of a launch that stopped half-way
        files = await asyncio.to_thread(
            workspace.cloned_archive,
            launch.repository,
            launch.files,
            max_bytes=self.options.max_workspace_bytes,
        )
        with files:
            toolman, agent = await self._call(self._create_pair, launch, files)
        prepared = time.monotonic()
        await self._call(toolman.start)
        await self._until_ready(toolman, cancel)
        ready = time.monotonic()
        if cancel.is_set():
            raise LaunchCancelled("cancelled before the agent started")
        try:
            await self._call(agent.start)
        except APIError as exc:
            raise LaunchError(f"the agent container did not start: {_explain(exc)}") from exc
        return LaunchTimings(prepared - began, ready - prepared, time.monotonic() - ready)

    def _create_pair(self, launch: Launch, files: BinaryIO) -> tuple[Container, Container]:
        client, options = self._docker(), self.options
        for image in (options.toolman_image, options.agent_image):
            try:
                client.images.get(image)
            except ImageNotFound:
                raise LaunchError(
                    f"image {image} is not on the Docker engine; build it "
                    "(`nox -s build_all -- --claude-image`) or pull it, or set "
                    "agent.image / toolman.image in the orchestrator's config"
                ) from None
        volume = self._name(launch.task_id, "workspace")
        client.volumes.create(volume, labels=self._labels(launch, "workspace"))
        mounts = {volume: {"bind": WORKSPACE, "mode": "rw"}}
        hardening: dict[str, Any] = {
            "user": options.user,
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges:true"],
            "pids_limit": options.pids_limit,
        }
        try:
            toolman = client.containers.create(
                options.toolman_image,
                name=self._name(launch.task_id, "toolman"),
                environment={**options.toolman_env, "AGENT_NAME": launch.agent_name},
                labels=self._labels(launch, "toolman"),
                network=options.network,
                volumes=mounts,
                **_limits(options.toolman_cpu, options.toolman_memory_bytes),
                **hardening,
            )
            env = {
                **launch.env,
                "MCP_TOOLMAN_SERVER_URL": TOOLMAN_URL,
                "TASK_ID": launch.task_id,
                "AGENT_NAME": launch.agent_name,
            }
            agent = client.containers.create(
                options.agent_image,
                command=["direct", "--task-file", PROMPT_PATH, "--", *launch.agent_args],
                name=self._name(launch.task_id, "agent"),
                environment=env,
                labels=self._labels(launch, "agent"),
                network_mode=f"container:{toolman.id}",
                volumes=mounts,
                working_dir=WORKSPACE,
                **_limits(launch.cpu, launch.memory_bytes),
                **hardening,
            )
            config = json.dumps(launch.toolman_config, indent=2).encode()
            toolman.put_archive(
                TOOLMAN_CONFIG_DIR.rsplit("/", 1)[0],
                workspace.single_file(
                    "toolman/toolman.json", config, uid=0, dir_mode=0o755, file_mode=0o444
                ),
            )
            agent.put_archive(WORKSPACE, files)
            uid = int(options.user.split(":")[0])
            agent.put_archive(
                "/",
                workspace.single_file(
                    PROMPT_PATH.lstrip("/"),
                    launch.prompt.encode(),
                    uid=uid,
                    dir_mode=0o700,
                    file_mode=0o400,
                ),
            )
        except APIError as exc:
            if exc.status_code is not None and exc.status_code >= 500 and _engine_down(exc):
                raise
            raise LaunchError(
                f"the task's containers could not be created: {_explain(exc)}"
            ) from exc
        return toolman, agent

    async def _until_ready(self, toolman: Container, cancel: asyncio.Event) -> None:
        """Poll toolman's /ready on its address; fail fast (with its log) if it exits."""
        deadline = time.monotonic() + self.options.ready_timeout_seconds
        address = ""
        checked = 0.0
        while True:
            if cancel.is_set():
                raise LaunchCancelled("cancelled before the agent started")
            now = time.monotonic()
            if not address or now - checked > 0.5:
                await self._call(toolman.reload)
                checked = now
                if toolman.status not in ("running", "created"):
                    tail = await self._call(toolman.logs, tail=20)
                    raise LaunchError(
                        f"toolman exited before it was ready (exit code "
                        f"{toolman.attrs['State'].get('ExitCode')}); its last lines:\n"
                        + tail.decode(errors="replace").strip()
                    )
                networks = toolman.attrs["NetworkSettings"].get("Networks") or {}
                address = (networks.get(self.options.network) or {}).get("IPAddress", "")
            if address:
                with suppress(httpx.HTTPError):
                    response = await self.http.get(
                        f"http://{address}:{TOOLMAN_PORT}/ready", timeout=2.0
                    )
                    if response.status_code == 200:
                        return
            if now > deadline:
                raise LaunchError(
                    f"toolman was not ready within {self.options.ready_timeout_seconds:g} s "
                    f"(toolman.ready_timeout_seconds); "
                    + ("it has no address" if not address else f"polled http://{address}:3000")
                    + f" on network {self.options.network!r} — the orchestrator must be "
                    "able to reach that network"
                )
            await asyncio.sleep(0.05)

    # -- watching -------------------------------------------------------------------------

    async def observe(self, task_id: str) -> Observation:
        agent = await self._call(self._container, task_id, "agent")
        if agent is None:
            return Observation(AgentState.ABSENT)
        state = agent.attrs["State"]
        started = _timestamp(state.get("StartedAt"))
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
        filters = {
            "type": "container",
            "event": ["die"],
            "label": [f"{LABEL_ROLE}=agent", f"{LABEL_INSTANCE}={self.options.instance}"],
        }
        while True:
            try:
                events = iterate_in_thread(
                    lambda: self._docker().events(decode=True, filters=filters),
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
        for role in ("agent", "toolman"):
            container = await self._call(self._container, task_id, role)
            if container is not None and container.status in ("running", "restarting"):
                with suppress(NotFound):
                    await self._call(container.stop, timeout=max(1, round(grace_seconds)))

    async def logs(self, task_id: str, stream: LogStream, *, follow: bool) -> AsyncIterator[bytes]:
        container = await self._call(self._container, task_id, stream.value)
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
            client = self._docker()
            for role in ("agent", "toolman"):
                with suppress(NotFound):
                    client.api.remove_container(self._name(task_id, role), force=True, v=False)
            with suppress(NotFound):
                client.volumes.get(self._name(task_id, "workspace")).remove(force=True)

        await self._call(remove)

    async def task_ids(self) -> set[str]:
        def listed() -> set[str]:
            found = self._docker().containers.list(
                all=True,
                filters={"label": [LABEL_TASK, f"{LABEL_INSTANCE}={self.options.instance}"]},
            )
            return {c.labels[LABEL_TASK] for c in found}

        return await self._call(listed)


def _limits(cpu: float | None, memory: int | None) -> dict[str, Any]:
    limits: dict[str, Any] = {}
    if cpu is not None:
        limits["nano_cpus"] = int(cpu * 1e9)
    if memory is not None:
        limits["mem_limit"] = memory
        limits["memswap_limit"] = memory  # no swap beyond the limit, as in Kubernetes
    return limits


def _started(container: Container) -> bool:
    return _timestamp(container.attrs["State"].get("StartedAt")) is not None


def _timestamp(value: str | None) -> float | None:
    """The engine's RFC 3339 time (nanoseconds, `Z`); None for its zero time."""
    if not value or value.startswith("0001-"):
        return None
    head, _, rest = value.rstrip("Z").partition(".")
    fraction = float(f"0.{rest[:6]}") if rest else 0.0
    return datetime.fromisoformat(head + "+00:00").timestamp() + fraction


def _explain(exc: APIError) -> str:
    return str(exc.explanation or exc).strip()


def _engine_down(exc: APIError) -> bool:
    return "connection refused" in _explain(exc).lower()
