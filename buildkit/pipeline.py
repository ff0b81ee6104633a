"""plan (pure): every (target, stage) step of a run and what each needs, then `run` hands
the plan to the executor, and `exit_code` reduces the results.

Needs: an image needs its wheel; a push needs its image and the service's test, lint and
fmt (a service whose checks failed is never published); tests, lint and fmt need nothing.
With the buildx backend every image step needs every wheel (one bake builds them all).
A service that requires sibling services (`requires`) also needs their wheels for its
wheel check, wheelhouse and image; a sibling that was not selected gets a wheel step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from buildkit.cache import StepCache
from buildkit.config import CLAUDE_TARGET, Project
from buildkit.executor import Events, Executor, Validator
from buildkit.keys import step_key
from buildkit.model import STAGES, Result, Status, Step
from buildkit.options import Options
from buildkit.stages.context import Context, StageRunner

NEEDS = {
    "wheelhouse": ("wheel",),
    "image": ("wheel",),
    "push": ("image", "test", "lint", "fmt"),
}
# The claude-code image is a target of the image, push and wheelhouse stages.
CLAUDE_STAGES = ("wheelhouse", "image", "push")
# Stages that install a service's wheel, so need the wheels of the siblings it requires.
SIBLING_WHEEL_STAGES = ("wheel", "wheelhouse", "image")

__all__ = ["Events", "StageRunner", "exit_code", "plan", "run"]


def plan(project: Project, options: Options) -> list[Step]:
    """Every step of the run, in the order build-all.sh ran them (stage by stage)."""
    steps: list[Step] = []
    names = options.services or project.service_names
    for stage in STAGES:
        if stage not in options.stages or (stage == "push" and not options.push):
            continue
        targets = list(names)
        if stage == "wheel":  # the wheels of required siblings that were not selected too
            wanted = [sib for name in names for sib in project.siblings_of(name)]
            targets = [sib for sib in dict.fromkeys(wanted) if sib not in names] + targets
        if stage in CLAUDE_STAGES and options.claude_image and project.claude is not None:
            targets.append(CLAUDE_TARGET)
        planned = {step.id for step in steps} | {f"{target}:{stage}" for target in targets}
        for target in targets:
            # The claude-code image is built from its service's wheel and published only
            # when that service's checks passed; its own image comes before its push.
            owner = project.target(target).wheel_owner
            needs = tuple(
                need_id
                for need in NEEDS.get(stage, ())
                if (need_id := f"{target if need == 'image' else owner}:{need}") in planned
            )
            if stage in SIBLING_WHEEL_STAGES:
                siblings = project.siblings_of(target)
                needs += tuple(f"{sib}:wheel" for sib in siblings if f"{sib}:wheel" in planned)
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
    *,
    jobs: int = 1,
    cache: StepCache | None = None,
    validators: Mapping[str, Validator] | None = None,
) -> list[Result]:
    executor = Executor(
        steps,
        ctx,
        runners,
        events,
        jobs=jobs,
        cache=cache,
        key_of=step_key if cache else None,
        validators=validators or {},
    )
    return executor.run()


def exit_code(results: Sequence[Result]) -> int:
    """0; or the code of the error class behind every failure (6 Docker, 7 registry, …)
    when they all share one, so a script can tell a refused push from a failed test; else 1."""
    codes = {result.error_code for result in results if result.status is Status.FAILED}
    if not codes:
        return 0
    return codes.pop() if len(codes) == 1 else 1
