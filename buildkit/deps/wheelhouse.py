"""The build context of an image, made on the host so the build itself runs nothing:

    build/image-context/<service>/
        Dockerfile, .dockerignore
        linux-amd64/opt/<image>/   the exact wheel and its dependencies (at the versions
        linux-arm64/opt/<image>/   the service's lock pins), installed for that platform
                                   (pip --target with --platform)

(buildkit.deps.image_root then adds the user's directories and moves the trees into
trees-<digest>/.)

Dependencies are fetched as wheels for each platform with pip's --platform options into
a cache, build/wheelhouse/<platform>/, which is all an --offline run reads. Because
nothing is installed inside the build, a linux/arm64 image needs no emulated `RUN pip`
(emulation is only needed to *run* it, e.g. for the smoke test).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from buildkit.errors import StageFailed, UsageError
from buildkit.proc import CallResult, Runner

PYTHON_VERSION = "3.11"
ARCHES = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}
# Debian bookworm (python:3.11-slim's base) has glibc 2.36: accept every manylinux up to it.
GLIBC_MINORS = range(36, 16, -1)
PORTABLE_SHEBANG = "#!/usr/bin/env python3\n"


def wheel_platform_tags(platform: str) -> list[str]:
    try:
        arch = ARCHES[platform]
    except KeyError:
        raise UsageError(
            f"no wheel platform is known for {platform!r}",
            hint=f"use one of {', '.join(ARCHES)}",
        ) from None
    return [f"manylinux_2_{minor}_{arch}" for minor in GLIBC_MINORS] + [f"manylinux2014_{arch}"]


def platform_slug(platform: str) -> str:
    return platform.replace("/", "-")


def pip_platform_args(platform: str) -> list[str]:
    args = ["--only-binary=:all:", "--python-version", PYTHON_VERSION, "--implementation", "cp",
            "--abi", "cp" + PYTHON_VERSION.replace(".", "")]  # fmt: skip
    for tag in wheel_platform_tags(platform):
        args += ["--platform", tag]
    return args


def pip(runner: Runner, args: Sequence[str]) -> CallResult:
    return runner.call([sys.executable, "-m", "pip", *args, "--disable-pip-version-check"])


def fetch_dependencies(
    wheel: Path,
    *,
    platform: str,
    cache: Path,
    offline: bool,
    runner: Runner,
    siblings: Sequence[Path] = (),
    constraints: Path | None = None,
) -> int:
    """Every dependency of `wheel` as a `platform` wheel into `cache`; the number fetched.

    `siblings` are the wheel files of the repository's services that `wheel` requires: on
    the same command line, pip takes those names from them and never looks them up.
    `constraints` (the service's lock file) pins the version of each dependency it names."""
    cache.mkdir(parents=True, exist_ok=True)
    own = {path.name for path in (*siblings, wheel)}  # the repository's wheels: never cached
    # Each download gets a directory of its own, moved into the cache after: steps that run
    # at once never see each other's half-written files (pip copies what it finds there).
    with tempfile.TemporaryDirectory(prefix=".download-", dir=cache) as scratch:
        args = ["download", "--dest", scratch, "--find-links", str(cache),
                *pip_platform_args(platform), *constraint_args(constraints),
                *map(str, siblings), str(wheel)]  # fmt: skip
        if offline:
            args.insert(1, "--no-index")
        result = pip(runner, args)
        if not result.ok:
            raise StageFailed(
                f"fetching {wheel.name}'s dependencies as {platform} wheels failed"
                + (" (offline: only build/wheelhouse is searched)" if offline else "")
                + stale_lock_hint(constraints),
                command=result.command,
                output=result.tail(),
            )
        fetched = 0
        for found in Path(scratch).glob("*.whl"):
            target = cache / found.name
            if found.name not in own and not target.exists():
                os.replace(found, target)
                fetched += 1
    return fetched


def constraint_args(constraints: Path | None) -> list[str]:
    return ["--constraint", str(constraints)] if constraints is not None else []


def stale_lock_hint(constraints: Path | None) -> str:
    if constraints is None:
        return ""
    return (
        f" (at the versions {constraints.parent.name}/{constraints.name} pins: offline,"
        " `python -m buildkit wheelhouse` fetches them first; if the service's requirements"
        " changed, `nox -s lock` renews the pins)"
    )


def install_for_platform(
    wheel: Path,
    *,
    platform: str,
    target: Path,
    cache: Path,
    offline: bool,
    runner: Runner,
    mtime: int = 0,
    siblings: Sequence[Path] = (),
    constraints: Path | None = None,
) -> None:
    """Install `wheel` (with the sibling wheel files it requires) and its dependencies for
    `platform` into `target`, from the cache; with `constraints` (the service's lock file),
    each dependency it names at the version it pins, so the image holds what the lock says
    (and what pip-audit audits: buildkit.checks.audit).

    The tree is reproducible: bytecode is compiled with source hashes instead of times
    (`unchecked-hash`: the image never changes underneath it) and file names relative to
    the tree, no file records the host path, and every file gets `mtime`, so the same
    commit gives identical layers in any clone.
    """
    fetch_dependencies(wheel, platform=platform, cache=cache, offline=offline, runner=runner,
                       siblings=siblings, constraints=constraints)  # fmt: skip
    shutil.rmtree(target, ignore_errors=True)
    result = pip(runner, ["install", "--no-index", "--find-links", str(cache), "--target",
                          str(target), "--no-warn-script-location", "--no-compile",
                          *pip_platform_args(platform), *constraint_args(constraints),
                          *map(str, siblings), str(wheel)])  # fmt: skip
    if not result.ok:
        raise StageFailed(
            f"installing {wheel.name} for {platform} failed" + stale_lock_hint(constraints),
            command=result.command,
            output=result.tail(),
        )
    for script in (target / "bin").glob("*"):
        # pip wrote this interpreter's path; the image has python3 on its PATH instead.
        lines = script.read_text(encoding="utf-8").splitlines(keepends=True)
        if lines and lines[0].startswith("#!"):
            script.write_text(PORTABLE_SHEBANG + "".join(lines[1:]), encoding="utf-8")
    if f"{sys.version_info.major}.{sys.version_info.minor}" == PYTHON_VERSION:
        # Bytecode of another Python version would never be used: only compile for ours.
        compiled = runner.call(
            [
                sys.executable,
                "-m",
                "compileall",
                "-q",
                "-j",
                "0",
                "--invalidation-mode",
                "unchecked-hash",
                "-s",  # file names in the bytecode relative to the tree: not this clone's path
                str(target),
                str(target),
            ]
        )
        if not compiled.ok:
            raise StageFailed(
                f"compiling bytecode for {platform} failed",
                command=compiled.command,
                output=compiled.tail(),
            )
    drop_direct_urls(target)
    for path in (target, *target.rglob("*")):
        os.utime(path, (mtime, mtime), follow_symlinks=False)


def drop_direct_urls(target: Path) -> None:
    """pip records where it installed a wheel file from (`direct_url.json`: a path on this
    machine, different in every clone); the image has no use for it, so it goes, and its
    line in RECORD with it."""
    for direct_url in target.glob("*.dist-info/direct_url.json"):
        record = direct_url.parent / "RECORD"
        name = f"{direct_url.parent.name}/direct_url.json,"
        if record.is_file():
            lines = record.read_text(encoding="utf-8").splitlines(keepends=True)
            record.write_text("".join(x for x in lines if not x.startswith(name)), "utf-8")
        direct_url.unlink()


def prepare_context(
    *,
    context: Path,
    dockerfile: Path,
    dockerignore: Path | None,
    wheel: Path,
    siblings: Sequence[Path] = (),
    platforms: Sequence[str],
    cache_root: Path,
    offline: bool,
    runner: Runner,
    mtime: int = 0,
    install_dir: str = "",
    constraints: Path | None = None,
) -> None:
    """Fill `context` with the Dockerfile and one install tree per platform, at
    `<os>-<arch>/<install_dir>/`: the platform's directory is shaped like the image's root,
    so a Dockerfile copies it to `/` and every directory in the layer (`/opt` included)
    comes from the context with `mtime`, never with the time `COPY` created it."""
    if not dockerfile.is_file():
        raise UsageError(
            f"Dockerfile {dockerfile} does not exist",
            hint="check `dockerfile` for this service in [tool.buildkit.services]",
        )
    shutil.rmtree(context, ignore_errors=True)
    context.mkdir(parents=True)
    shutil.copy(dockerfile, context / "Dockerfile")
    os.utime(context / "Dockerfile", (mtime, mtime))  # not the checkout's time
    if dockerignore is not None and dockerignore.is_file():
        shutil.copy(dockerignore, context / ".dockerignore")
        os.utime(context / ".dockerignore", (mtime, mtime))
    for platform in platforms:
        install_for_platform(
            wheel,
            platform=platform,
            target=context / platform_slug(platform) / install_dir,
            cache=cache_root / platform_slug(platform),
            offline=offline,
            runner=runner,
            mtime=mtime,
            siblings=siblings,
            constraints=constraints,
        )
        parent = (context / platform_slug(platform) / install_dir).parent
        while parent != context:
            os.utime(parent, (mtime, mtime), follow_symlinks=False)
            parent = parent.parent
