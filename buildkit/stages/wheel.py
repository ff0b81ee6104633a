"""wheel: sdist + wheel into dist/, then proof that the wheel installs and its script runs.

The version is pinned from git (SETUPTOOLS_SCM_PRETEND_VERSION), so the wheel's version
is exactly the one buildkit reports. The proof installs the wheel alone into a fresh
environment, `build/wheel-check/<service>`, and runs `<script> --version` there.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

from buildkit.cache import keys
from buildkit.cache.keys import Hasher
from buildkit.config import Service
from buildkit.deps.envs import env_script, uv_binary
from buildkit.errors import StageFailed
from buildkit.model import Artifact, Outcome, Result, Status, Step
from buildkit.stages.context import Context
from buildkit.stages.inputs import add_files, sibling_wheel_digests
from buildkit.stages.protocol import Stage


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def checked_wheel(owner: str, ctx: Context) -> tuple[Path, str]:
    """The wheel `owner`'s wheel step built (a needed step), and its sha256, proven unchanged."""
    artifact = ctx.artifact_of(f"{owner}:wheel", "wheel")
    wheel = ctx.root / artifact.name
    if not wheel.is_file() or sha256_of(wheel) != artifact.sha256:
        raise StageFailed(
            f"{artifact.name} is missing or changed since the wheel stage built "
            "it; rebuild it (run the wheel stage again)"
        )
    return wheel, artifact.sha256 or ""


def sibling_wheels(service: Service, ctx: Context) -> list[Path]:
    """The wheel files of the services `service` requires, to go on the same pip or uv
    command line as its own wheel: the resolver then takes those names from these files
    and never asks an index for them."""
    return [checked_wheel(sibling.name, ctx)[0] for sibling in ctx.siblings(service)]


def run(step: Step, ctx: Context) -> Outcome:
    service = ctx.target(step)
    version = ctx.version_of(service)
    out_dir = ctx.build_dir / "wheel-out" / service.name
    shutil.rmtree(out_dir, ignore_errors=True)
    argv = [uv_binary(), "build", "--python", sys.executable, "--out-dir", str(out_dir)]
    if ctx.options.offline:
        argv.append("--offline")
    built = ctx.runner.call(
        [*argv, ctx.relative(service.path)],
        cwd=ctx.root,
        env={"SETUPTOOLS_SCM_PRETEND_VERSION": version},
    )
    if not built.ok:
        return Outcome(
            Status.FAILED,
            "building the sdist and wheel failed",
            command=built.command,
            output_tail=built.tail(),
        )
    wheels = sorted(out_dir.glob("*.whl"))
    sdists = sorted(out_dir.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        return Outcome(
            Status.FAILED,
            f"expected one wheel and one sdist in {out_dir}, "
            f"found {[p.name for p in wheels + sdists]}",
            command=built.command,
        )
    ctx.dist_dir.mkdir(exist_ok=True)
    artifacts = tuple(publish(path, ctx) for path in (sdists[0], wheels[0]))
    wheel = ctx.dist_dir / wheels[0].name

    check_env = ctx.build_dir / "wheel-check" / service.name
    ctx.envs.fresh_env(check_env, [*sibling_wheels(service, ctx), wheel], ctx.runner)
    answer = ctx.runner.call([str(env_script(check_env, service.script)), "--version"])
    if not answer.ok or version not in answer.output:
        return Outcome(
            Status.FAILED,
            f"`{service.script} --version` from the installed wheel did not report {version}",
            artifacts,
            answer.command,
            answer.tail(),
        )
    return Outcome(
        Status.OK,
        artifacts=artifacts,
        command=built.command,
        summary=f"installs; {service.script} --version ok",
    )


def publish(path: Path, ctx: Context) -> Artifact:
    target = ctx.dist_dir / path.name
    shutil.move(path, target)
    return Artifact(
        kind="wheel" if path.suffix == ".whl" else "sdist",
        name=ctx.relative(target),
        size=target.stat().st_size,
        sha256=sha256_of(target),
    )


def still_valid(step: Step, result: Result, ctx: Context) -> Result | None:
    """A cached wheel counts only while dist/ still holds it, unchanged, and its proof env
    (which the end-to-end tests use) still has the console script."""
    for artifact in result.artifacts:
        if artifact.kind in ("wheel", "sdist"):
            path = ctx.root / artifact.name
            if not path.is_file() or sha256_of(path) != artifact.sha256:
                return None
    service = ctx.target(step)
    proof = env_script(ctx.build_dir / "wheel-check" / service.name, service.script)
    return result if proof.exists() else None


def key_inputs(key: Hasher, step: Step, ctx: Context) -> bool:
    service = ctx.target(step)
    add_files(key, service, ctx)
    version = keys.tool_version((uv_binary(), "--version"))
    key.add("version", [ctx.version_of(service), version])
    key.add("siblings", sibling_wheel_digests(service, ctx))
    return True


STAGE = Stage("wheel", run, sibling_wheels=True, key_inputs=key_inputs, still_valid=still_valid)
