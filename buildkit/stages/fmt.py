"""fmt: `ruff format --check`; with --fix it rewrites the files instead."""

from __future__ import annotations

from buildkit.config import Service
from buildkit.model import Outcome, Status
from buildkit.stages.context import Context, tool


def run(service: Service, ctx: Context) -> Outcome:
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
