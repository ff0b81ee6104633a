"""The step graph: needs are honoured, independent steps really run at once, a failure
cancels what is running (killing its processes) and skips what is pending, and
--keep-going runs everything that does not depend on a failure. Stages are swapped at
their seam for small functions; the subprocesses they start are real."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from buildkit.config import Project, load_project
from buildkit.deps.envs import Envs
from buildkit.executor import Executor
from buildkit.gitinfo import GitInfo
from buildkit.model import Outcome, Result, Status, Step
from buildkit.options import Options
from buildkit.proc import Runner
from buildkit.stages.context import Context, StageRunner
from tests.helpers import ROOT


class Timeline:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.spans: dict[str, tuple[float, float]] = {}
        self.order: list[str] = []

    def planned(self, steps: Sequence[Step]) -> None:
        pass

    def started(self, step: Step) -> None:
        with self.lock:
            self.spans[step.id] = (time.monotonic(), 0.0)

    def command(self, step: Step, command: str) -> None:
        pass

    def output(self, step: Step, line: str) -> None:
        pass

    def finished(self, step: Step, result: Result) -> None:
        with self.lock:
            if step.id in self.spans:
                self.spans[step.id] = (self.spans[step.id][0], time.monotonic())
            self.order.append(step.id)


@pytest.fixture
def project() -> Project:
    return load_project(ROOT)


def context(project: Project, tmp_path: Path, **options: object) -> Context:
    opts = Options(tag="latest", registry="r", report=tmp_path / "r.json", **options)  # type: ignore[arg-type]
    git = GitInfo(commit="a" * 40, dirty=False, tag="v1.0.0", distance=0, version="1.0.0")
    moved = Project(**{**project.__dict__, "root": tmp_path})
    return Context(moved, opts, git, Envs(tmp_path / "build"), Runner())


def ok(step: Step, ctx: Context) -> Outcome:
    return Outcome(Status.OK)


def test_needs_are_honoured(project: Project, tmp_path: Path) -> None:
    steps = [
        Step("toolman", "wheel"),
        Step("toolman", "image", ("toolman:wheel",)),
        Step("toolman", "push", ("toolman:image",)),
    ]
    timeline = Timeline()
    runners: dict[str, StageRunner] = {"wheel": ok, "image": ok, "push": ok}
    Executor(steps, context(project, tmp_path), runners, timeline, jobs=3).run()
    spans = timeline.spans
    assert spans["toolman:wheel"][1] <= spans["toolman:image"][0]
    assert spans["toolman:image"][1] <= spans["toolman:push"][0]


def test_independent_steps_run_at_the_same_time(project: Project, tmp_path: Path) -> None:
    both_running = threading.Barrier(2, timeout=10)

    def meets_the_other(step: Step, ctx: Context) -> Outcome:
        both_running.wait()  # raises BrokenBarrierError unless the two overlap
        return Outcome(Status.OK)

    steps = [Step("toolman", "test"), Step("mcp_wrapper", "test")]
    results = Executor(
        steps, context(project, tmp_path), {"test": meets_the_other}, Timeline(), jobs=2
    ).run()
    assert [r.status for r in results] == [Status.OK, Status.OK]


def test_one_job_runs_one_step_at_a_time(project: Project, tmp_path: Path) -> None:
    running, peak = [0], [0]
    lock = threading.Lock()

    def counted(step: Step, ctx: Context) -> Outcome:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return Outcome(Status.OK)

    steps = [Step(name, "test") for name in ("orchestrator", "toolman", "mcp_wrapper")]
    Executor(steps, context(project, tmp_path), {"test": counted}, Timeline(), jobs=1).run()
    assert peak[0] == 1


def test_a_failure_cancels_running_steps_and_skips_pending_ones(
    project: Project, tmp_path: Path
) -> None:
    pid_file = tmp_path / "sleeper.pid"
    started = threading.Event()

    def sleeps(step: Step, ctx: Context) -> Outcome:
        started.set()
        ctx.runner.call(["sh", "-c", f"echo $$ > {pid_file}; exec sleep 60"])
        return Outcome(Status.OK)

    def fails(step: Step, ctx: Context) -> Outcome:
        assert started.wait(10)
        deadline = time.monotonic() + 10
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        return Outcome(Status.FAILED, "broken")

    steps = [Step("orchestrator", "test"), Step("toolman", "lint"), Step("mcp_wrapper", "fmt")]
    began = time.monotonic()
    results = Executor(
        steps,
        context(project, tmp_path),
        {"test": sleeps, "lint": fails, "fmt": ok},
        Timeline(),
        jobs=2,
    ).run()
    assert time.monotonic() - began < 20  # the 60 s sleep was not waited for
    by_id = {r.id: r for r in results}
    assert by_id["toolman:lint"].status is Status.FAILED
    assert by_id["orchestrator:test"].status is Status.SKIPPED
    assert by_id["orchestrator:test"].reason.startswith("cancelled")
    assert by_id["mcp_wrapper:fmt"].reason.startswith("not run: stopped after toolman:lint")
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the sleeper is gone, not orphaned


def test_keep_going_runs_all_that_does_not_depend_on_the_failure(
    project: Project, tmp_path: Path
) -> None:
    def wheel(step: Step, ctx: Context) -> Outcome:
        return Outcome(Status.FAILED if step.target == "toolman" else Status.OK)

    steps = [Step(n, "wheel") for n in ("toolman", "mcp_wrapper")]
    steps += [Step(n, "image", (f"{n}:wheel",)) for n in ("toolman", "mcp_wrapper")]
    results = Executor(
        steps,
        context(project, tmp_path, keep_going=True),
        {"wheel": wheel, "image": ok},
        Timeline(),
        jobs=2,
    ).run()
    by_id = {r.id: r for r in results}
    assert by_id["mcp_wrapper:image"].status is Status.OK
    assert by_id["toolman:image"].status is Status.SKIPPED
    assert by_id["toolman:image"].reason == "not run: needs toolman:wheel"


def test_a_step_skipped_on_purpose_does_not_block(project: Project, tmp_path: Path) -> None:
    steps = [
        Step("toolman", "test", skip="--skip-tests"),
        Step("toolman", "push", ("toolman:test",)),
    ]
    results = Executor(steps, context(project, tmp_path), {"push": ok}, Timeline()).run()
    assert [r.status for r in results] == [Status.SKIPPED, Status.OK]
