"""lint: ruff check and mypy --strict, the role `clippy -D warnings` played."""

from __future__ import annotations

from buildkit.cache import keys
from buildkit.cache.keys import Hasher
from buildkit.deps.envs import env_python
from buildkit.model import Outcome, Status, Step
from buildkit.stages.context import Context, tool
from buildkit.stages.inputs import add_environment, add_files
from buildkit.stages.protocol import Stage


def run(step: Step, ctx: Context) -> Outcome:
    service = ctx.target(step)
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


def key_inputs(key: Hasher, step: Step, ctx: Context) -> bool:
    service = ctx.target(step)
    add_files(key, service, ctx)
    add_environment(key, service, ctx)
    versions = [keys.tool_version((tool(name), "--version")) for name in ("ruff", "mypy")]
    key.add("tools", versions)
    key.add("config", keys.tool_config(ctx.root, "ruff", "mypy"))
    return True


STAGE = Stage("lint", run, key_inputs=key_inputs)
