"""plan (pure) -> run (effects) -> one Result per step -> exit code and report.

The pipeline never raises past a stage: a stage's error becomes a failed Result.
By default it stops at the first failure, like build-all.sh; with keep_going it runs
every step that does not depend on a failed one.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Protocol

from buildkit.config import Project, Service
from buildkit.errors import BuildkitError, StageFailed
from buildkit.model import STAGES, Artifact, Outcome, Result, Status, Step
from buildkit.options import Options
from buildkit.proc import Runner
from buildkit.stages.context import Context

NEEDS = {"wheelhouse": ("wheel",), "image": ("wheel",), "push": ("image",)}
CLAUDE_TARGET = "claude-code"
WRAPPER_SERVICE = "mcp_wrapper"
DONE = (Status.OK, Status.CACHED)

StageRunner = Callable[[Service, Context], Outcome]


class Events(Protocol):
    """What the pipeline tells its observer (the terminal UI, or a test)."""

    def planned(self, steps: Sequence[Step]) -> None: ...
    def started(self, step: Step) -> None: ...
    def command(self, step: Step, command: str) -> None: ...
    def output(self, step: Step, line: str) -> None: ...
    def finished(self, step: Step, result: Result) -> None: ...


def plan(project: Project, options: Options) -> list[Step]:
    """Every step of the run, in the order build-all.sh ran them (stage by stage)."""
    steps: list[Step] = []
    names = options.services or project.service_names
    for stage in STAGES:
        if stage not in options.stages or (stage == "push" and not options.push):
            continue
        targets = list(names)
        if stage == "image" and options.claude_image:
            targets.append(CLAUDE_TARGET)
        planned = {step.id for step in steps}
        for target in targets:
            # The Claude Code image carries mcp-wrapper: it needs the wrapper's wheel.
            owner = WRAPPER_SERVICE if target == CLAUDE_TARGET else target
            needs = tuple(
                need_id
                for need in NEEDS.get(stage, ())
                if (need_id := f"{owner}:{need}") in planned
            )
            if stage == "image" and options.image_backend == "buildx":
                # One bake builds every image: each image step waits for every wheel.
                needs = tuple(step.id for step in steps if step.stage == "wheel")
            steps.append(Step(target, stage, needs, skip_reason(stage, options)))
    return steps


def skip_reason(stage: str, options: Options) -> str | None:
    if stage == "test" and options.skip_tests:
        return "--skip-tests"
    if stage in ("image", "push") and options.no_docker:
        return "--no-docker"
    return None


def run(
    steps: Sequence[Step],
    ctx: Context,
    runners: Mapping[str, StageRunner],
    events: Events,
) -> list[Result]:
    events.planned(steps)
    results: dict[str, Result] = {}
    stopped_by: str | None = None
    for step in steps:
        blocked = [need for need in step.needs if results[need].status not in DONE]
        if step.skip:
            outcome = Outcome(Status.SKIPPED, step.skip)
        elif stopped_by:
            outcome = Outcome(
                Status.SKIPPED,
                f"not run: stopped after {stopped_by} failed (--keep-going runs the rest)",
            )
        elif blocked:
            outcome = Outcome(Status.SKIPPED, f"not run: needs {', '.join(blocked)}")
        elif step.stage not in runners or step.target == CLAUDE_TARGET:
            outcome = Outcome(
                Status.SKIPPED,
                f"not available: buildkit has no {step.stage} "
                f"stage for {step.target} yet; nothing was built or pushed",
            )
        else:
            needs = {need: results[need] for need in step.needs}
            results[step.id] = execute(step, replace(ctx, needs=needs), runners[step.stage], events)
            if results[step.id].status is Status.FAILED and not ctx.options.keep_going:
                stopped_by = step.id
            continue
        results[step.id] = Result.of(step, outcome, 0.0)
        events.finished(step, results[step.id])
    return [results[step.id] for step in steps]


def execute(step: Step, ctx: Context, stage: StageRunner, events: Events) -> Result:
    events.started(step)
    log: list[str] = []

    def on_command(command: str) -> None:
        log.append(f"$ {command}")
        events.command(step, command)

    def on_output(line: str) -> None:
        log.append(line)
        events.output(step, line)

    runner = Runner(on_command=on_command, on_output=on_output, timeout=ctx.runner.timeout)
    started = time.monotonic()
    try:
        outcome = stage(ctx.project.service(step.target), replace(ctx, runner=runner))
    except StageFailed as exc:
        outcome = Outcome(Status.FAILED, exc.message, command=exc.command, output_tail=exc.output)
    except BuildkitError as exc:
        outcome = Outcome(Status.FAILED, str(exc))
    except Exception as exc:
        outcome = Outcome(
            Status.FAILED, f"internal error: {exc!r}", output_tail=traceback.format_exc(limit=8)
        )
    if log:
        log_path = ctx.build_dir / "logs" / f"{step.target}-{step.stage}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text("\n".join(log) + "\n", encoding="utf-8")
        outcome = replace(
            outcome, artifacts=(*outcome.artifacts, Artifact("log", ctx.relative(log_path)))
        )
    result = Result.of(step, outcome, time.monotonic() - started)
    events.finished(step, result)
    return result


def exit_code(results: Sequence[Result]) -> int:
    return 1 if any(result.status is Status.FAILED for result in results) else 0
