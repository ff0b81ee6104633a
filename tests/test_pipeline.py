"""The pipeline's planning, ordering, failure and exit-code logic, with stages swapped
at their seam (the runner mapping) for functions that record and answer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from buildkit import pipeline
from buildkit.config import Project, load_project
from buildkit.deps.envs import Envs
from buildkit.errors import DockerError, RegistryError, StageFailed
from buildkit.gitinfo import GitInfo
from buildkit.model import Outcome, Result, Status, Step
from buildkit.options import Options
from buildkit.proc import Runner
from buildkit.stages.context import Context
from tests.helpers import ROOT


class Recorder:
    def __init__(self) -> None:
        self.events: list[str] = []

    def planned(self, steps: Sequence[Step]) -> None:
        self.events.append(f"plan {len(steps)}")

    def started(self, step: Step) -> None:
        self.events.append(f"start {step.id}")

    def command(self, step: Step, command: str) -> None:
        self.events.append(f"command {step.id}")

    def output(self, step: Step, line: str) -> None:
        self.events.append(f"output {step.id}")

    def finished(self, step: Step, result: Result) -> None:
        self.events.append(f"finish {step.id} {result.status}")


@pytest.fixture
def project() -> Project:
    return load_project(ROOT)


def options(tmp_path: Path, **overrides: object) -> Options:
    base: dict[str, object] = {"tag": "latest", "registry": "r", "report": tmp_path / "r.json"}
    base.update(overrides)
    return Options(**base)  # type: ignore[arg-type]


def context(project: Project, opts: Options, tmp_path: Path) -> Context:
    git = GitInfo(commit="a" * 40, dirty=False, tag="v1.0.0", distance=0, version="1.0.0")
    moved = Project(**{**project.__dict__, "root": tmp_path})
    return Context(moved, opts, git, Envs(tmp_path / "build"), Runner())


def answering(
    failing: set[str] | None = None, calls: list[str] | None = None
) -> dict[str, pipeline.StageRunner]:
    failing = failing or set()

    def make(stage: str) -> pipeline.StageRunner:
        def run(step: Step, ctx: Context) -> Outcome:
            step_id = step.id
            if calls is not None:
                calls.append(step_id)
            ctx.runner.call(["true"])
            if step_id in failing:
                return Outcome(Status.FAILED, "broken", command="pytest", output_tail="E assert")
            return Outcome(Status.OK, summary="fine")

        return run

    return {stage: make(stage) for stage in ("test", "lint", "fmt", "wheel")}


def test_plan_runs_stage_by_stage_like_the_script(project: Project, tmp_path: Path) -> None:
    steps = pipeline.plan(project, options(tmp_path, no_docker=True))
    assert [step.id for step in steps[:4]] == [
        "orchestrator:test",
        "toolman:test",
        "mcp_wrapper:test",
        "orchestrator:lint",
    ]
    assert [step.stage for step in steps][-3:] == ["image"] * 3
    assert all(step.skip == "--no-docker" for step in steps if step.stage == "image")
    assert not any(step.stage == "push" for step in steps)


def test_plan_orders_wheel_before_image_before_push(project: Project, tmp_path: Path) -> None:
    steps = pipeline.plan(project, options(tmp_path, push=True, services=("toolman",)))
    ids = [step.id for step in steps]
    assert ids == [
        "toolman:test",
        "toolman:lint",
        "toolman:fmt",
        "toolman:wheel",
        "toolman:image",
        "toolman:push",
    ]
    by_id = {step.id: step for step in steps}
    assert by_id["toolman:image"].needs == ("toolman:wheel",)
    # A service whose checks failed is never published.
    assert by_id["toolman:push"].needs == (
        "toolman:image",
        "toolman:test",
        "toolman:lint",
        "toolman:fmt",
    )


def test_skip_tests_and_claude_image_are_planned(project: Project, tmp_path: Path) -> None:
    steps = pipeline.plan(project, options(tmp_path, skip_tests=True, claude_image=True))
    assert all(step.skip == "--skip-tests" for step in steps if step.stage == "test")
    assert "claude-code:image" in [step.id for step in steps]


@pytest.mark.parametrize("backend", ["buildx", "engine"])
def test_the_claude_image_brings_its_wheel_and_checks_when_its_service_is_not_selected(
    project: Project, tmp_path: Path, backend: str
) -> None:
    """`nox -s toolman -- --claude-image -p`: the claude-code image installs mcp-wrapper's
    wheel, so that wheel is built (it used to be missing: "mcp_wrapper:wheel produced no
    wheel"), and its push waits for mcp-wrapper's checks; no mcp-wrapper image."""
    opts = options(
        tmp_path, push=True, claude_image=True, services=("toolman",), image_backend=backend
    )
    by_id = {step.id: step for step in pipeline.plan(project, opts)}
    assert [s for s in by_id if s.startswith("mcp_wrapper:")] == [
        "mcp_wrapper:test",
        "mcp_wrapper:lint",
        "mcp_wrapper:fmt",
        "mcp_wrapper:wheel",
    ]
    image = by_id["images:bake"] if backend == "buildx" else by_id["claude-code:image"]
    assert "mcp_wrapper:wheel" in image.needs
    assert by_id["claude-code:push"].needs == (
        "claude-code:image",
        "mcp_wrapper:test",
        "mcp_wrapper:lint",
        "mcp_wrapper:fmt",
    )
    assert by_id["toolman:push"].needs == (
        "toolman:image",
        "toolman:test",
        "toolman:lint",
        "toolman:fmt",
    )
    local = pipeline.plan(project, replace(opts, push=False))
    assert [s.id for s in local if s.target == "mcp_wrapper"] == ["mcp_wrapper:wheel"]
    no_docker = pipeline.plan(project, replace(opts, push=False, no_docker=True))
    assert not [s.id for s in no_docker if s.target == "mcp_wrapper"]


def test_all_ok_is_exit_zero(project: Project, tmp_path: Path) -> None:
    opts = options(tmp_path, stages=("test", "lint"))
    recorder = Recorder()
    results = pipeline.run(
        pipeline.plan(project, opts), context(project, opts, tmp_path), answering(), recorder
    )
    assert [r.status for r in results] == [Status.OK] * 6
    assert pipeline.exit_code(results) == 0
    assert recorder.events[0] == "plan 6"
    assert "command toolman:lint" in recorder.events
    log = tmp_path / "build" / "logs" / "toolman-lint.log"
    assert log.read_text().startswith("$ true")


def test_first_failure_stops_the_rest(project: Project, tmp_path: Path) -> None:
    opts = options(tmp_path, stages=("test", "lint"))
    calls: list[str] = []
    results = pipeline.run(
        pipeline.plan(project, opts),
        context(project, opts, tmp_path),
        answering({"toolman:test"}, calls),
        Recorder(),
    )
    assert calls == ["orchestrator:test", "toolman:test"]
    by_id = {r.id: r for r in results}
    assert by_id["toolman:test"].status is Status.FAILED
    assert by_id["toolman:test"].command == "pytest"
    assert by_id["mcp_wrapper:test"].status is Status.SKIPPED
    assert "stopped after toolman:test failed" in by_id["mcp_wrapper:test"].reason
    assert pipeline.exit_code(results) == 1


def test_keep_going_runs_everything_that_does_not_depend_on_the_failure(
    project: Project, tmp_path: Path
) -> None:
    opts = options(tmp_path, keep_going=True, stages=("test", "wheel", "image"))
    calls: list[str] = []
    results = pipeline.run(
        pipeline.plan(project, opts),
        context(project, opts, tmp_path),
        answering({"toolman:wheel"}, calls),
        Recorder(),
    )
    by_id = {r.id: r for r in results}
    assert "mcp_wrapper:wheel" in calls
    assert by_id["toolman:image"].status is Status.SKIPPED
    assert by_id["toolman:image"].reason == "not run: needs toolman:wheel"
    assert pipeline.exit_code(results) == 1


def test_stage_errors_become_failed_results(project: Project, tmp_path: Path) -> None:
    def raises_stage_failed(step: Step, ctx: Context) -> Outcome:
        raise StageFailed("installing failed", command="uv pip install x", output="boom")

    def raises_bug(step: Step, ctx: Context) -> Outcome:
        raise KeyError("oops")

    opts = options(tmp_path, keep_going=True, stages=("test", "lint"), services=("toolman",))
    results = pipeline.run(
        pipeline.plan(project, opts),
        context(project, opts, tmp_path),
        {"test": raises_stage_failed, "lint": raises_bug},
        Recorder(),
    )
    assert results[0].status is Status.FAILED
    assert results[0].command == "uv pip install x"
    assert results[0].output_tail == "boom"
    assert results[1].status is Status.FAILED
    assert results[1].reason == "internal error: KeyError('oops')"
    assert "Traceback" in results[1].output_tail


def test_a_stage_without_an_implementation_is_reported_not_faked(
    project: Project, tmp_path: Path
) -> None:
    opts = options(tmp_path, stages=("wheel", "image"), services=("toolman",))
    results = pipeline.run(
        pipeline.plan(project, opts), context(project, opts, tmp_path), answering(), Recorder()
    )
    image = results[-1]
    assert image.id == "toolman:image"
    assert image.status is Status.SKIPPED
    assert image.reason.startswith("not available")
    assert "nothing was built or pushed" in image.reason


def test_the_claude_image_is_planned_from_the_wrappers_wheel_and_checks(
    project: Project, tmp_path: Path
) -> None:
    opts = options(tmp_path, push=True, claude_image=True, services=("mcp_wrapper",))
    steps = {step.id: step for step in pipeline.plan(project, opts)}
    assert steps["claude-code:image"].needs == ("mcp_wrapper:wheel",)
    assert steps["claude-code:push"].needs == (
        "claude-code:image",
        "mcp_wrapper:test",
        "mcp_wrapper:lint",
        "mcp_wrapper:fmt",
    )
    claude = project.target("claude-code")
    assert (claude.image, claude.script, claude.port, claude.wheel_owner) == (
        "claude-code",
        "claude-agent",
        8080,
        "mcp_wrapper",
    )
    assert "claude-code:image" not in {s.id for s in pipeline.plan(project, options(tmp_path))}


def test_the_exit_code_names_the_error_class_when_every_failure_shares_it(
    project: Project, tmp_path: Path
) -> None:
    """A refused push exits 7 and an engine error 6, so a CI script can tell them from a
    failed test (1); failures of different kinds give 1."""
    opts = options(tmp_path, keep_going=True, stages=("test", "lint"))
    runners = answering()

    def refused(step: Step, ctx: Context) -> Outcome:
        raise RegistryError(f"{step.target}: the registry refused the push")

    def broken_engine(step: Step, ctx: Context) -> Outcome:
        raise DockerError(f"{step.target}: the engine went away")

    steps = pipeline.plan(project, opts)
    ctx = context(project, opts, tmp_path)
    only_registry = pipeline.run(steps, ctx, {**runners, "lint": refused}, Recorder())
    assert [r.error_code for r in only_registry if r.status is Status.FAILED] == [7, 7, 7]
    assert pipeline.exit_code(only_registry) == 7
    both = pipeline.run(steps, ctx, {"test": broken_engine, "lint": refused}, Recorder())
    assert pipeline.exit_code(both) == 1
    with_a_failed_test = pipeline.run(
        steps, ctx, {**answering({"toolman:test"}), "lint": refused}, Recorder()
    )
    assert pipeline.exit_code(with_a_failed_test) == 1
    assert Result.from_json(only_registry[-1].to_json()).error_code == 7
