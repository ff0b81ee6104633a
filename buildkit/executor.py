"""Runs a plan as a graph: a step starts once every step it needs has succeeded, up to
`jobs` steps at a time, each in its own thread with its own output buffer and log.

A failure stops the run (unless keep_going): steps not started are skipped, and running
ones are cancelled — their commands killed, process group and all. With keep_going every
step runs that does not depend on a failed one. Before a step runs, its key (the hash of
all its inputs) is looked up: a recorded success whose artifacts still exist is `cached`.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Protocol

from buildkit.cache.store import StepCache
from buildkit.errors import BuildkitError, StageFailed
from buildkit.model import Artifact, Outcome, Result, Status, Step
from buildkit.proc import Cancelled, Runner
from buildkit.stages.context import Context, StageRunner

KeyFunction = Callable[[Step, Context], "str | None"]
# A recorded success as it stands for this run (artifacts checked, images tagged as this
# run asks), or None when something it produced is gone.
Validator = Callable[[Step, Result, Context], "Result | None"]


class Events(Protocol):
    """What the executor tells its observer (the terminal UI, or a test)."""

    def planned(self, steps: Sequence[Step]) -> None: ...
    def started(self, step: Step) -> None: ...
    def command(self, step: Step, command: str) -> None: ...
    def output(self, step: Step, line: str) -> None: ...
    def finished(self, step: Step, result: Result) -> None: ...


@dataclass
class Executor:
    steps: Sequence[Step]
    ctx: Context
    runners: Mapping[str, StageRunner]
    events: Events
    jobs: int = 1
    cache: StepCache | None = None
    key_of: KeyFunction | None = None
    validators: Mapping[str, Validator] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.skipped_on_purpose = frozenset(step.id for step in self.steps if step.skip)

    def run(self) -> list[Result]:
        self.events.planned(self.steps)
        results: dict[str, Result] = {}
        pending = list(self.steps)
        running: dict[Future[Result], Runner] = {}
        stopped_by: str | None = None
        with ThreadPoolExecutor(max_workers=max(1, self.jobs), thread_name_prefix="step") as pool:
            while pending or running:
                for step in list(pending):
                    verdict = self.verdict(step, results, stopped_by)
                    if verdict is None:  # waits for a need still running
                        continue
                    if isinstance(verdict, Outcome):
                        results[step.id] = Result.of(step, verdict, 0.0)
                        self.events.finished(step, results[step.id])
                    elif len(running) < max(1, self.jobs):
                        runner = self.runner_for(step)
                        needs = {need: results[need] for need in step.needs}
                        ctx = replace(self.ctx, runner=runner, needs=needs)
                        running[pool.submit(self.execute, step, ctx)] = runner
                    else:
                        continue
                    pending.remove(step)
                if not running:
                    break
                try:
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                except KeyboardInterrupt:  # Ctrl-C: stop what runs instead of waiting for it
                    for runner in running.values():
                        runner.cancel()
                    raise
                for future in done:
                    running.pop(future)
                    result = future.result()
                    results[result.id] = result
                    if result.status is Status.FAILED and not self.ctx.options.keep_going:
                        stopped_by = stopped_by or result.id
                        for runner in running.values():
                            runner.cancel()
        return [results[step.id] for step in self.steps]

    def verdict(
        self, step: Step, results: Mapping[str, Result], stopped_by: str | None
    ) -> Outcome | bool | None:
        """An Outcome decided without running, True to run now, None to wait."""
        if step.skip:
            return Outcome(Status.SKIPPED, step.skip)
        if stopped_by:
            return Outcome(
                Status.SKIPPED,
                f"not run: stopped after {stopped_by} failed (--keep-going runs the rest)",
            )
        if any(need not in results for need in step.needs):
            return None
        blocked = [need for need in step.needs if not self.satisfied(results[need])]
        if blocked:
            return Outcome(Status.SKIPPED, f"not run: needs {', '.join(blocked)}")
        if step.stage not in self.runners:
            return Outcome(
                Status.SKIPPED,
                f"not available: buildkit has no {step.stage} stage "
                f"for {step.target} yet; nothing was built or pushed",
            )
        return True

    def satisfied(self, result: Result) -> bool:
        """A need is met when it succeeded, or was skipped on purpose (e.g. --skip-tests)."""
        return result.status in (Status.OK, Status.CACHED) or result.id in self.skipped_on_purpose

    def runner_for(self, step: Step) -> Runner:
        return Runner(
            on_command=lambda command: self.events.command(step, command),
            on_output=lambda line: self.events.output(step, line),
            timeout=self.ctx.runner.timeout,
        )

    def execute(self, step: Step, ctx: Context) -> Result:
        self.events.started(step)
        log = Log(ctx.runner)
        started = time.monotonic()
        try:
            key = self.key_of(step, ctx) if self.key_of and self.cache else None
            cached = self.lookup(step, ctx, key)
            outcome = cached or self.runners[step.stage](step, replace(ctx, step_key=key or ""))
        except Cancelled as exc:
            outcome = Outcome(
                Status.SKIPPED,
                "cancelled: the run stopped at the first failure (--keep-going runs the rest)",
                command=exc.command,
            )
        except StageFailed as exc:
            outcome = Outcome(
                Status.FAILED, exc.message, command=exc.command, output_tail=exc.output
            )
        except BuildkitError as exc:
            outcome = Outcome(Status.FAILED, str(exc), error_code=exc.exit_code)
        except Exception as exc:
            outcome = Outcome(
                Status.FAILED, f"internal error: {exc!r}", output_tail=traceback.format_exc(limit=8)
            )
        else:
            if key and self.cache and outcome.status is Status.OK:
                self.cache.store(step, key, Result.of(step, outcome, time.monotonic() - started))
        outcome = log.attach(outcome, ctx, step)
        result = Result.of(step, outcome, time.monotonic() - started)
        self.events.finished(step, result)
        return result

    def lookup(self, step: Step, ctx: Context, key: str | None) -> Outcome | None:
        if not key or self.cache is None or ctx.options.no_cache:
            return None
        recorded = self.cache.load(step, key)
        if recorded is None:
            return None
        validate = self.validators.get(step.stage)
        if validate is not None:
            revalidated = validate(step, recorded, ctx)
            if revalidated is None:
                return None  # an artifact is gone: build it again
            recorded = revalidated
        return Outcome(
            Status.CACHED,
            f"inputs unchanged (key {key[:12]})",
            artifacts=recorded.artifacts,
            summary=recorded.summary,
        )


class Log:
    """Everything a step's commands printed, kept whole for build/logs/<target>-<stage>.log."""

    def __init__(self, runner: Runner) -> None:
        self.lines: list[str] = []
        on_command, on_output = runner.on_command, runner.on_output

        def command(text: str) -> None:
            self.lines.append(f"$ {text}")
            on_command(text)

        def output(line: str) -> None:
            self.lines.append(line)
            on_output(line)

        runner.on_command, runner.on_output = command, output

    def attach(self, outcome: Outcome, ctx: Context, step: Step) -> Outcome:
        path = ctx.build_dir / "logs" / f"{step.target}-{step.stage}.log"
        if not self.lines:
            path.unlink(missing_ok=True)  # an earlier run's log would describe other work
            return outcome
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(self.lines) + "\n", encoding="utf-8")
        return replace(outcome, artifacts=(*outcome.artifacts, Artifact("log", ctx.relative(path))))
