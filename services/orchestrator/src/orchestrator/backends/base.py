"""The seam between the controller and an engine that runs containers.

A backend turns one `Launch` into an agent container beside a toolman sidecar that
owns the network namespace, reports what became of it, streams its logs, stops it
and removes it. It keeps no state of its own: everything it needs to find a task's
containers again (after a restart of the orchestrator) is in the engine, labelled with
the task id. The Docker backend is docker.py; a Kubernetes backend fits the same calls
(launch = a Job with toolman as a native sidecar, observe = the Job's Pod).

Errors: `BackendUnavailable` means the engine cannot be reached now (the controller
waits and tries again: nothing is lost); `LaunchError` means this task cannot run as
asked (the task fails with the message, which says what to change).
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from orchestrator.tasks.model import LogStream, Repository

TOOLMAN_PORT = 3000
TOOLMAN_URL = f"http://localhost:{TOOLMAN_PORT}/mcp"
WORKSPACE = "/workspace"
PROMPT_PATH = "/task/prompt"


class BackendError(Exception):
    """Base of the backend errors; the message is for a person."""


class BackendUnavailable(BackendError):
    """The engine does not answer; try again later."""


class LaunchError(BackendError):
    """This task cannot be started as asked; the message says why and what to change."""


class LaunchCancelled(BackendError):
    """The launch saw its cancel event at a safe point and stopped; the agent never ran."""


@dataclass(frozen=True)
class WorkspaceEntry:
    path: str
    data: bytes = field(repr=False)
    executable: bool = False


@dataclass(frozen=True)
class Launch:
    """Everything a backend needs to start one task."""

    task_id: str
    agent_name: str
    prompt: str = field(repr=False)
    files: tuple[WorkspaceEntry, ...] = ()
    repository: Repository | None = None
    # (username, password) for an http(s) repository; given to the clone on its stdin.
    repository_credentials: tuple[str, str] | None = field(default=None, repr=False)
    toolman_config: Mapping[str, Any] = field(default_factory=dict)
    # The agent's environment: the task's values and its resolved secrets.
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    agent_args: tuple[str, ...] = ()
    cpu: float | None = None
    memory_bytes: int | None = None
    labels: Mapping[str, str] = field(default_factory=dict)


class AgentState(enum.StrEnum):
    ABSENT = "absent"  # never created, or removed
    CREATED = "created"  # created, never started
    RUNNING = "running"
    EXITED = "exited"


@dataclass(frozen=True)
class Observation:
    agent: AgentState
    exit_code: int | None = None
    started_at: float | None = None  # when the agent container started (epoch seconds)
    detail: str = ""  # what the engine adds, e.g. "killed: out of memory"


@dataclass(frozen=True)
class LaunchTimings:
    """Where the time of a launch went (seconds), for the metrics and the benchmark."""

    prepare: float = 0.0  # workspace, containers created
    toolman_ready: float = 0.0  # toolman started until /ready answered
    agent_start: float = 0.0  # the agent container started


class ExecutionBackend(Protocol):
    name: str

    async def ping(self) -> None:
        """Return when the engine answers; BackendUnavailable otherwise."""

    async def launch(self, launch: Launch, cancel: asyncio.Event) -> LaunchTimings:
        """Create and start the pair; return once the agent runs. Idempotent: an agent
        that already started is adopted, never started again; leftovers of a launch that
        did not get that far are removed first. `cancel` is checked where stopping is
        safe (never in the middle of an engine call): LaunchCancelled, agent not started."""

    async def observe(self, task_id: str) -> Observation:
        """What became of the task's agent, without waiting."""

    async def wait(self, task_id: str, timeout: float) -> Observation:
        """Until the agent is no longer running, or `timeout` seconds passed."""

    async def stop(self, task_id: str, grace_seconds: float) -> None:
        """Stop the agent, then the sidecar (SIGTERM, then SIGKILL after the grace)."""

    def logs(self, task_id: str, stream: LogStream, *, follow: bool) -> AsyncIterator[bytes]:
        """The container's output (stdout and stderr); with `follow`, until it stops."""

    async def cleanup(self, task_id: str) -> None:
        """Remove every container and volume of the task."""

    async def task_ids(self) -> set[str]:
        """The tasks that have anything in the engine."""

    async def close(self) -> None:
        """Release connections and threads."""
