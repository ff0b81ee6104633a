"""plan (pure): every (target, stage) step of a run and what each needs, then `run` hands
the plan to the executor, and `exit_code` reduces the results.

What each stage needs is declared by the stage (buildkit.stages.STAGES): an image needs
its wheel; a push needs its image and the service's test, lint and fmt (a service whose
checks failed is never published); tests, lint and fmt need nothing. A service that
requires sibling services (`requires`) also needs their wheels for its wheel check,
wheelhouse and image; a sibling that was not selected gets a wheel step, and so does the
service whose wheel the claude-code image installs (with --push, its checks too: the
image's push waits for them). With a backend that bakes (buildx), one `images:bake` step
needs every wheel and each image step needs only that bake.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from buildkit.cache.store import StepCache
from buildkit.config import Project
from buildkit.executor import Events, Executor
from buildkit.model import STAGES as STAGE_ORDER
from buildkit.model import Result, Status, Step
from buildkit.options import Options, image_targets, service_targets
from buildkit.stages import STAGES, step_key
from buildkit.stages.context import Context, StageRunner
from buildkit.stages.image.backend import backend_of
from buildkit.stages.image.buildx import BAKE_STEP, BAKE_TARGET

__all__ = ["RUNNERS", "Events", "StageRunner", "exit_code", "plan", "run"]

# The other services' stages a push waits for (besides its own image): their checks.
PUSH_CHECKS = tuple(need for need in STAGES["push"].needs if need not in ("image", "wheel"))


def plan(project: Project, options: Options) -> list[Step]:
    """Every step of the run, in the order build-all.sh ran them (stage by stage)."""
    steps: list[Step] = []
    names = service_targets(project, options)
    images = image_targets(project, options)
    owners = wheel_owners_outside(project, options, images, names)
    pushing = options.push and "push" in options.stages
    for name in STAGE_ORDER:
        stage = STAGES[name]
        if name not in options.stages or (name == "push" and not options.push):
            continue
        targets = list(images if stage.claude else names)
        if name == "wheel":  # the wheels of required siblings that were not selected too
            wanted = [
                sib for target in (*owners, *names)
                for sib in (*project.siblings_of(target), target)
            ]  # fmt: skip
            targets = [sib for sib in dict.fromkeys(wanted) if sib not in names] + targets
        elif pushing and name in PUSH_CHECKS:  # what their image's push waits for
            targets = [*owners, *targets]
        skip = skip_reason(name, options)
        bake = name == "image" and options.builds_images and backend_of(options).bakes
        if bake:  # one step builds every image; it waits for every wheel
            every_wheel = tuple(step.id for step in steps if step.stage == "wheel")
            steps.append(Step(BAKE_TARGET, "bake", every_wheel, skip))
        planned = {step.id for step in steps} | {f"{target}:{name}" for target in targets}
        for target in targets:
            needs = (BAKE_STEP,) if bake else needs_of(project, stage.needs, target, planned)
            if stage.sibling_wheels and not bake:
                siblings = (f"{sib}:wheel" for sib in project.siblings_of(target))
                needs += tuple(need for need in siblings if need in planned)
            steps.append(Step(target, name, needs, skip))
    return steps


def wheel_owners_outside(
    project: Project, options: Options, images: Sequence[str], names: Sequence[str]
) -> list[str]:
    """The services whose wheel a planned image installs although they were not selected
    (the claude-code image's: mcp-wrapper's). They get a wheel step, and with --push the
    checks their image's push needs."""
    if not options.builds_images:
        return []
    owners = (project.target(target).wheel_owner for target in images)
    return [owner for owner in dict.fromkeys(owners) if owner not in names]


def needs_of(
    project: Project, stages: tuple[str, ...], target: str, planned: set[str]
) -> tuple[str, ...]:
    """The planned steps `target` waits for: its own image; the other stages of the service
    whose wheel it installs (for the claude-code image: mcp-wrapper's)."""
    owner = project.target(target).wheel_owner
    ids = (f"{target if need == 'image' else owner}:{need}" for need in stages)
    return tuple(need for need in ids if need in planned)


def skip_reason(stage: str, options: Options) -> str | None:
    if stage == "test" and options.skip_tests:
        return "--skip-tests"
    if stage in ("image", "push") and options.no_docker:
        return "--no-docker"
    return None


# What runs each stage's steps: the registered stages (tests swap this seam).
RUNNERS: dict[str, StageRunner] = {name: stage.run for name, stage in STAGES.items()}


def run(
    steps: Sequence[Step],
    ctx: Context,
    runners: Mapping[str, StageRunner],
    events: Events,
    *,
    jobs: int = 1,
    cache: StepCache | None = None,
) -> list[Result]:
    executor = Executor(
        steps,
        ctx,
        runners,
        events,
        jobs=jobs,
        cache=cache,
        key_of=step_key if cache else None,
        validators={n: s.still_valid for n, s in STAGES.items() if s.still_valid},
    )
    return executor.run()


def exit_code(results: Sequence[Result]) -> int:
    """0; or the code of the error class behind every failure (6 Docker, 7 registry, …)
    when they all share one, so a script can tell a refused push from a failed test; else 1."""
    codes = {result.error_code for result in results if result.status is Status.FAILED}
    if not codes:
        return 0
    return codes.pop() if len(codes) == 1 else 1
