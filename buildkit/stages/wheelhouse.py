"""wheelhouse: fetch every dependency of the service's wheel as wheels for each target
platform into build/wheelhouse/<platform>/, so later image builds (and --offline runs)
need no package index. `python -m buildkit wheelhouse` runs it on its own."""

from __future__ import annotations

from buildkit.checks.locks import installed_lock
from buildkit.config import CLAUDE_TARGET
from buildkit.deps import claude_code
from buildkit.deps.wheelhouse import fetch_dependencies, platform_slug
from buildkit.model import Outcome, Status, Step
from buildkit.stages.context import Context
from buildkit.stages.protocol import Stage
from buildkit.stages.wheel import checked_wheel, sibling_wheels


def run(step: Step, ctx: Context) -> Outcome:
    service = ctx.target(step)
    if service.name == CLAUDE_TARGET and ctx.project.claude is not None:
        tarballs = [
            claude_code.fetch(ctx.project.claude, platform, ctx.build_dir / "claude-code",
                              ctx.options.offline, ctx.runner).name
            for platform in ctx.options.platforms
        ]  # fmt: skip
        return Outcome(Status.OK, summary="Claude Code: " + ", ".join(tarballs))
    wheel, _ = checked_wheel(service.name, ctx)
    siblings = sibling_wheels(service, ctx)
    counts = []
    for platform in ctx.options.platforms:
        fetched = fetch_dependencies(
            wheel,
            platform=platform,
            cache=ctx.build_dir / "wheelhouse" / platform_slug(platform),
            offline=ctx.options.offline,
            runner=ctx.runner,
            siblings=siblings,
            constraints=installed_lock(ctx.root, service.name),
        )
        counts.append(f"{fetched} new for {platform}")
    return Outcome(Status.OK, summary="dependency wheels: " + ", ".join(counts))


STAGE = Stage("wheelhouse", run, needs=("wheel",), sibling_wheels=True, claude=True)
