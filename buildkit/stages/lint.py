"""lint: ruff check and mypy --strict, the role `clippy -D warnings` played."""

from __future__ import annotations

from buildkit.config import Service
from buildkit.envs import env_python
from buildkit.model import Outcome, Status
from buildkit.stages.context import Context, tool


def run(service: Service, ctx: Context) -> Outcome:
    env = ctx.service_env(service)
    ruff = ctx.runner.call(
        [tool("ruff"), "check", "--no-fix", ctx.relative(service.path)], cwd=ctx.root
    )
    targets = [ctx.relative(service.src_package_dir)]
    if service.tests_dir.is_dir():
        targets.append(ctx.relative(service.tests_dir))
    mypy = ctx.runner.call(
        [
            tool("mypy"),
            "--config-file", "pyproject.toml",
            "--python-executable", str(env_python(env)),
            "--cache-dir", ctx.relative(ctx.build_dir / "mypy-cache" / service.name),
            *targets,
        ],
        cwd=ctx.root,
    )  # fmt: skip
    failed = [(name, result) for name, result in (("ruff", ruff), ("mypy", mypy)) if not result.ok]
    if not failed:
        return Outcome(Status.OK, summary="ruff, mypy clean")
    return Outcome(
        Status.FAILED,
        reason=f"{' and '.join(name for name, _ in failed)} reported problems",
        command=" && ".join(result.command for _, result in failed),
        output_tail="\n".join(result.tail() for _, result in failed),
        summary=", ".join(f"{name} failed" for name, _ in failed),
    )
