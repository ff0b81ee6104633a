"""The build context of an image: its Dockerfile and a wheelhouse with the service's wheel
and every dependency as a wheel for the image's platform, so nothing in the build needs
the network (and no `RUN pip` has to download anything under emulation).

Dependencies are fetched with pip's --platform options, reusing a per-platform cache
under build/wheelhouse/ (which is all --offline uses).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from buildkit.errors import StageFailed, UsageError
from buildkit.proc import Runner

PYTHON_VERSION = "3.11"
ARCHES = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}
# Debian bookworm (python:3.11-slim's base) has glibc 2.36: accept every manylinux up to it.
GLIBC_MINORS = range(36, 16, -1)


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


def prepare_context(
    *,
    context: Path,
    dockerfile: Path,
    dockerignore: Path | None,
    wheel: Path,
    platform: str,
    cache: Path,
    offline: bool,
    runner: Runner,
) -> Path:
    """Fill `context` with Dockerfile, .dockerignore and wheels/; return the wheels dir."""
    if not dockerfile.is_file():
        raise UsageError(
            f"Dockerfile {dockerfile} does not exist",
            hint="check `dockerfile` for this service in [tool.buildkit.services]",
        )
    shutil.rmtree(context, ignore_errors=True)
    wheels = context / "wheels"
    wheels.mkdir(parents=True)
    shutil.copy2(dockerfile, context / "Dockerfile")
    if dockerignore is not None and dockerignore.is_file():
        shutil.copy2(dockerignore, context / ".dockerignore")
    shutil.copy2(wheel, wheels / wheel.name)
    fetch_dependencies(
        wheels / wheel.name,
        platform=platform,
        dest=wheels,
        cache=cache,
        offline=offline,
        runner=runner,
    )
    return wheels


def fetch_dependencies(
    wheel: Path, *, platform: str, dest: Path, cache: Path, offline: bool, runner: Runner
) -> list[Path]:
    """Every dependency of `wheel` as a `platform` wheel into `dest`, through `cache`."""
    cache.mkdir(parents=True, exist_ok=True)
    dest.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable, "-m", "pip", "download", "--disable-pip-version-check",
        "--dest", str(dest), "--find-links", str(cache), "--find-links", str(wheel.parent),
        "--only-binary=:all:", "--python-version", PYTHON_VERSION,
        "--implementation", "cp", "--abi", "cp" + PYTHON_VERSION.replace(".", ""),
    ]  # fmt: skip
    for tag in wheel_platform_tags(platform):
        argv += ["--platform", tag]
    if offline:
        argv.append("--no-index")
    result = runner.call([*argv, str(wheel)])
    if not result.ok:
        raise StageFailed(
            f"fetching {wheel.name}'s dependencies as {platform} wheels failed"
            + (" (offline: only build/wheelhouse is searched)" if offline else ""),
            command=result.command,
            output=result.tail(),
        )
    fetched = [path for path in dest.glob("*.whl") if path.name != wheel.name]
    for path in fetched:
        if not (cache / path.name).exists():
            shutil.copy2(path, cache / path.name)
    return fetched
