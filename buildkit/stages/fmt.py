"""fmt: `ruff format --check`; with --fix it rewrites the files instead."""

from __future__ import annotations

from buildkit.cache import keys
from buildkit.cache.keys import Hasher
from buildkit.model import Outcome, Status, Step
from buildkit.stages.context import Context, tool
from buildkit.stages.inputs import add_files
from buildkit.stages.protocol import Stage


def run(step: Step, ctx: Context) -> Outcome:
    service = ctx.target(step)
    argv = [tool("ruff"), "format"]
    if not ctx.options.fix:
        argv.append("--check")
    result = ctx.runner.call([*argv, ctx.relative(service.path)], cwd=ctx.root)
    if result.ok:
        return Outcome(Status.OK, command=result.command, summary=last_line(result.output))
    return Outcome(
        Status.FAILED,
        reason="files need formatting; run `nox -s fmt -- --fix`",
        command=result.command,
        output_tail=result.tail(),
        summary=last_line(result.output),
    )


def last_line(output: str) -> str:
    lines = output.strip().splitlines()
    return lines[-1] if lines else ""


def key_inputs(key: Hasher, step: Step, ctx: Context) -> bool:
    add_files(key, ctx.target(step), ctx)
    key.add("tools", keys.tool_version((tool("ruff"), "--version")))
    key.add("config", keys.tool_config(ctx.root, "ruff"))
    key.add("fix", ctx.options.fix)
    return True


STAGE = Stage("fmt", run, key_inputs=key_inputs)
