"""The two sides of the backend conformance suite, behind one protocol, so a scenario is
written once and run against both:

    DockerSide      the orchestrator's app (real SQLite store, real Docker backend) on
                    the REAL engine; its tasks run the stand-in images (stand_in_images.py):
                    a real agent process whose output and exit code the task's prompt
                    scripts, beside a real sidecar container answering /ready
    KubernetesSide  the controller's app against kmock's emulator over real HTTP
                    (k8s_emulator.py): no kubelet or Job controller exists there, so the
                    side plays them from the same script: the Pod's agent container
                    running, then terminated with the exit code; the Job's condition;
                    the log the kubelet would serve

What an agent does is an `Agent` script: on Docker it is the prompt the stand-in agent
reads (its tool calls go to the stand-in toolman, which writes toolman's audit lines),
on Kubernetes what the side writes into the Pod and the Job and serves as the agent's
and toolman's logs. Either way the
scenario sees only the task API.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio
import httpx
from conftest import eventually
from k8s_emulator import NAMESPACE, Cluster, now
from lightkube.resources.batch_v1 import Job
from stand_in_images import engine, signal_agent

from orchestrator.backends.docker.options import LABEL_TASK
from orchestrator.backends.kubernetes.api import NOT_FOUND, Failure, status_of
from orchestrator.backends.kubernetes.job import TOOLMAN

WAIT = 30.0  # bound of every wait on a task (a real container start included)


Call = tuple[str, str, str | None]  # a tool call: tool, toolman's decision, its outcome


@dataclass(frozen=True)
class Agent:
    """What the task's agent does: call tools through its toolman (`calls`), print `say`,
    (with `hold`) wait to be told to finish, exit with `exit`."""

    say: str = "working\n"
    exit: int = 0
    hold: bool = True
    calls: tuple[Call, ...] = ()

    def prompt(self) -> str:
        script = {"say": self.say, "exit": self.exit, "hold": self.hold, "calls": self.calls}
        return json.dumps(script)

    def audit_log(self, agent_name: str) -> str:
        """toolman's audit lines for `calls` (its logger, its fields), as toolman's log."""
        lines = [
            {"logger": "toolman.audit", "agent": agent_name, "kind": "tool", "name": name,
             "decision": decision, "outcome": outcome}
            for name, decision, outcome in self.calls
        ]  # fmt: skip
        return "".join(json.dumps(line) + "\n" for line in lines)


class Side(Protocol):
    """One backend as a scenario drives it: the task API, and what happens outside it."""

    name: str
    http: httpx.AsyncClient

    async def agent_starts(self, task_id: str, agent: Agent) -> None:
        """Until the task's agent runs (Docker: the engine starts it by itself)."""

    async def agent_finishes(self, task_id: str, agent: Agent) -> None:
        """The held agent exits with its code."""

    async def deadline_passes(self, task_id: str) -> None:
        """The task's timeout_seconds are up (Docker: the orchestrator's own clock)."""

    async def agent_is_stopped(self, task_id: str) -> bool:
        """Nothing of the task runs any more."""


async def task_where(
    http: httpx.AsyncClient, task_id: str, wanted: set[str], what: str
) -> dict[str, Any]:
    """The task once its phase is one of `wanted` (bounded by WAIT)."""

    async def check() -> dict[str, Any] | None:
        body: dict[str, Any] = (await http.get(f"/api/v1/tasks/{task_id}")).json()
        return body if body["phase"] in wanted else None

    return await eventually(check, timeout=WAIT, what=f"task {task_id} to be {what}")


@dataclass
class DockerSide:
    name: str
    http: httpx.AsyncClient

    async def agent_starts(self, task_id: str, agent: Agent) -> None:
        pass  # the real engine starts the stand-in agent once its toolman is ready

    async def agent_finishes(self, task_id: str, agent: Agent) -> None:
        await anyio.to_thread.run_sync(signal_agent, task_id, "SIGUSR1")

    async def deadline_passes(self, task_id: str) -> None:
        pass  # the orchestrator stops the agent when its timeout_seconds are up

    async def agent_is_stopped(self, task_id: str) -> bool:
        observed = await self.http.get(f"/api/v1/tasks/{task_id}")
        running = await anyio.to_thread.run_sync(running_containers, task_id)
        return bool(observed.json()["finished_at"]) and not running


def running_containers(task_id: str) -> list[str]:
    with engine() as client:
        selector: dict[str, str | list[str] | bool] = {"label": f"{LABEL_TASK}={task_id}"}
        return [str(c.name) for c in client.containers.list(filters=selector)]


@dataclass
class KubernetesSide:
    name: str
    http: httpx.AsyncClient
    k8s: Cluster
    started: dict[str, str] = field(default_factory=dict)  # the agent's startedAt, per task

    async def agent_starts(self, task_id: str, agent: Agent) -> None:
        task = await task_where(self.http, task_id, {"starting"}, "starting (its Job made)")
        self.k8s.serve_log(task_id, agent.say)  # what the kubelet would read from them
        self.k8s.serve_log(task_id, agent.audit_log(task["spec"]["agent"]["name"]), TOOLMAN)
        self.started[task_id] = now()
        await self.k8s.run_pod(task_id, {"running": {"startedAt": self.started[task_id]}})

    async def agent_finishes(self, task_id: str, agent: Agent) -> None:
        started = self.started[task_id]  # a kubelet keeps it when the container ends
        ended = {"terminated": {"exitCode": agent.exit, "startedAt": started, "finishedAt": now()}}
        await self.k8s.run_pod(task_id, ended)
        if agent.exit == 0:
            await self.k8s.job_condition(task_id, "Complete")
        else:  # the podFailurePolicy's FailJob on the agent's non-zero exit
            await self.k8s.job_condition(task_id, "Failed", "PodFailurePolicy")

    async def deadline_passes(self, task_id: str) -> None:
        await self.k8s.job_condition(task_id, "Failed", "DeadlineExceeded")

    async def agent_is_stopped(self, task_id: str) -> bool:
        """The Job is deleted (a cancel), or it has ended: then the Job controller has
        killed its Pod (a deadline), which the emulator leaves to the test to believe."""
        try:
            job = await self.k8s.client.get(Job, task_id, namespace=NAMESPACE)
        except Failure as exc:
            if status_of(exc) == NOT_FOUND:
                return True
            raise
        conditions = (job.status.conditions if job.status else None) or []
        return any(c.type in ("Complete", "Failed") and c.status == "True" for c in conditions)
