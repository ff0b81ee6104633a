"""The values the pipeline passes around: steps planned, results recorded."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

STAGES = ("test", "lint", "fmt", "wheel", "wheelhouse", "image", "push")
BUILD_ALL_STAGES = ("test", "lint", "fmt", "wheel", "image", "push")


class Status(StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"
    CACHED = "cached"


@dataclass(frozen=True)
class Artifact:
    kind: str  # wheel, sdist, image, junit, ...
    name: str  # a path relative to the project root, or an image reference
    size: int | None = None
    sha256: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Artifact:
        details = {k: v for k, v in data.items() if k not in ("kind", "name", "size", "sha256")}
        return cls(data["kind"], data["name"], data.get("size"), data.get("sha256"), details)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "name": self.name}
        if self.size is not None:
            data["size"] = self.size
        if self.sha256 is not None:
            data["sha256"] = self.sha256
        data.update(self.details)
        return data


@dataclass(frozen=True)
class Step:
    """One (target, stage) of a plan. `skip` is decided at plan time (e.g. --skip-tests)."""

    target: str
    stage: str
    needs: tuple[str, ...] = ()
    skip: str | None = None

    @property
    def id(self) -> str:
        return f"{self.target}:{self.stage}"


@dataclass(frozen=True)
class Outcome:
    """What a stage returns; the pipeline adds identity and timing to make a Result."""

    status: Status
    reason: str = ""
    artifacts: tuple[Artifact, ...] = ()
    command: str | None = None
    output_tail: str = ""
    summary: str = ""  # one short line for the table, e.g. "23 passed"
    error_code: int = 1  # of a failure: the exit code of the error class behind it


@dataclass(frozen=True)
class Result:
    target: str
    stage: str
    status: Status
    duration: float
    reason: str = ""
    artifacts: tuple[Artifact, ...] = ()
    command: str | None = None
    output_tail: str = ""
    summary: str = ""
    error_code: int = 1

    @property
    def id(self) -> str:
        return f"{self.target}:{self.stage}"

    @classmethod
    def of(cls, step: Step, outcome: Outcome, duration: float) -> Result:
        return cls(
            target=step.target,
            stage=step.stage,
            status=outcome.status,
            duration=duration,
            reason=outcome.reason,
            artifacts=outcome.artifacts,
            command=outcome.command,
            output_tail=outcome.output_tail,
            summary=outcome.summary,
            error_code=outcome.error_code,
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Result:
        return cls(
            target=data["service"],
            stage=data["stage"],
            status=Status(data["status"]),
            duration=float(data["duration"]),
            reason=data.get("reason", ""),
            artifacts=tuple(Artifact.from_json(a) for a in data.get("artifacts", [])),
            command=data.get("command"),
            output_tail=data.get("output_tail", ""),
            summary=data.get("summary", ""),
            error_code=int(data.get("exit_code", 1)),
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "service": self.target,
            "stage": self.stage,
            "status": str(self.status),
            "duration": round(self.duration, 3),
            "reason": self.reason,
            "summary": self.summary,
            "artifacts": [artifact.to_json() for artifact in self.artifacts],
        }
        if self.command:
            data["command"] = self.command
        if self.output_tail:
            data["output_tail"] = self.output_tail
        if self.status is Status.FAILED:
            data["exit_code"] = self.error_code
        return data
