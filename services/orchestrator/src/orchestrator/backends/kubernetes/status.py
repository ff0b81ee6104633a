"""What a TaskRun's status says, read from its Job and the Job's Pod.

The Job's conditions decide the end (`Complete`; `Failed`, or the `FailureTarget` that
comes first, with `DeadlineExceeded` for the task's timeout); before that, the Pod's
agent container says whether the agent runs. The exit code is the agent container's.
Pure functions of the objects: the controller reads them from the API and writes the
result through the status subresource, so a restarted controller computes the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Pod

from orchestrator.backends.kubernetes.job import AGENT
from orchestrator.tasks.model import Phase

FAILED_CONDITIONS = ("FailureTarget", "Failed")


@dataclass(frozen=True)
class TaskRunStatus:
    phase: Phase
    reason: str | None = None
    exit_code: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    job_name: str | None = None
    tool_calls: Mapping[str, Any] | None = None  # ToolCalls, as JSON

    def fields(self) -> dict[str, object]:
        """What it says, as the status subresource keeps it (camelCase, RFC 3339 times)."""
        status: dict[str, object] = {"phase": self.phase.value}
        for key, value in (
            ("reason", self.reason),
            ("exitCode", self.exit_code),
            ("jobName", self.job_name),
            ("startedAt", _time(self.started_at)),
            ("finishedAt", _time(self.finished_at)),
            ("toolCalls", self.tool_calls),
        ):
            if value is not None:
                status[key] = value
        return status

    def patch(self) -> dict[str, object]:
        """The status subresource's merge patch, with the `Succeeded` condition."""
        status = self.fields()
        done = "True" if self.phase is Phase.SUCCEEDED else "False"
        status["conditions"] = [{
            "type": "Succeeded",
            "status": done if self.phase.finished else "Unknown",
            "reason": self.phase.value.title().replace("_", ""),
            "message": self.reason or self.phase.value,
        }]  # fmt: skip
        return {"status": status}


def _time(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def observe(job: Job, pods: Sequence[Pod]) -> TaskRunStatus:
    name = job.metadata.name if job.metadata else None
    started, exit_code = _agent(pods)
    conditions = (
        [c for c in (job.status.conditions or []) if c.status == "True"] if job.status else []
    )
    by_type = {c.type: c for c in conditions}
    if "Complete" in by_type:
        finished = by_type["Complete"].lastTransitionTime
        return TaskRunStatus(Phase.SUCCEEDED, None, exit_code or 0, started, finished, name)
    for kind in FAILED_CONDITIONS:
        if kind in by_type:
            condition = by_type[kind]
            finished = condition.lastTransitionTime
            if condition.reason == "DeadlineExceeded":
                reason = "the task ran past its timeout_seconds (the Job's deadline)"
                return TaskRunStatus(Phase.TIMED_OUT, reason, exit_code, started, finished, name)
            reason = (
                f"the agent exited with code {exit_code}"
                if exit_code is not None
                else f"the Job failed: {condition.reason}: {condition.message or ''}".strip(": ")
            )
            return TaskRunStatus(Phase.FAILED, reason, exit_code, started, finished, name)
    if started is not None:
        return TaskRunStatus(Phase.RUNNING, None, None, started, None, name)
    return TaskRunStatus(Phase.STARTING, None, None, None, None, name)


def newest_first(pods: Sequence[Pod]) -> list[Pod]:
    """A Job's pods, the one it made last first (a disruption makes another)."""

    def created(pod: Pod) -> datetime:
        moment = pod.metadata.creationTimestamp if pod.metadata else None
        return moment or datetime.min.replace(tzinfo=UTC)

    return sorted(pods, key=created, reverse=True)


def _agent(pods: Sequence[Pod]) -> tuple[datetime | None, int | None]:
    """When the newest pod's agent container started, and its exit code if it exited."""
    for pod in newest_first(pods):
        for status in (pod.status.containerStatuses or []) if pod.status else []:
            if status.name != AGENT or status.state is None:
                continue
            if status.state.terminated is not None:
                return status.state.terminated.startedAt, status.state.terminated.exitCode
            if status.state.running is not None:
                return status.state.running.startedAt, None
    return None, None
