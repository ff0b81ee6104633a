"""Step keys: the hash of everything a step's result depends on, and nothing else.

    test   the service's files as git sees them (tracked, and untracked-not-ignored, with
           content), its environment's exact packages, --debug, BUILDKIT_REQUIRE_ALL, and
           the files of the sibling services it requires (installed editable beside it)
    lint   the files, the environment, the siblings' files, ruff's and mypy's versions
           and their configuration
    fmt    the files, ruff's version and configuration, --fix
    wheel  the files, the service's version, uv's version, the siblings' wheels (sha256:
           its install check installs them)
    image  the wheel and the siblings' wheels (sha256), Dockerfile and .dockerignore, each
           platform's base image id, the labels (but `created`), --debug, the backend
    push   the image ids, the tags, the registry
Python's and buildkit's versions go into every key. A step without a key is never cached.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from buildkit import __version__, tomlcompat
from buildkit.config import Service
from buildkit.envs import env_python, uv_binary
from buildkit.gitinfo import source_files
from buildkit.model import Step
from buildkit.proc import Runner
from buildkit.stages.context import Context, tool


class Hasher:
    def __init__(self) -> None:
        self._digest = hashlib.sha256()

    def add(self, name: str, value: object) -> None:
        encoded = json.dumps(value, sort_keys=True, default=str).encode()
        self._digest.update(f"{name}={len(encoded)}:".encode() + encoded + b"\n")

    def files(self, root: Path, paths: Iterable[Path]) -> None:
        for path in sorted(paths):
            content = path.read_bytes() if path.is_file() else b"<missing>"
            self.add(
                f"file {path.relative_to(root).as_posix()}", hashlib.sha256(content).hexdigest()
            )

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


@functools.cache
def tool_version(argv: tuple[str, ...]) -> str:
    result = Runner().call(argv, timeout=60)
    return result.output.strip() if result.ok else f"unavailable ({result.returncode})"


def environment_packages(env_dir: Path) -> str:
    result = Runner().call(
        [uv_binary(), "pip", "freeze", "--python", str(env_python(env_dir))], timeout=120
    )
    return result.output if result.ok else f"unreadable ({result.returncode})"


def tool_config(root: Path, *tables: str) -> dict[str, Any]:
    with (root / "pyproject.toml").open("rb") as handle:
        tools = tomlcompat.load(handle).get("tool", {})
    return {table: tools.get(table) for table in tables}


def step_key(step: Step, service: Service, ctx: Context) -> str | None:
    if step.stage not in ("test", "lint", "fmt", "wheel", "image", "push"):
        return None
    if step.stage == "image" and ctx.options.image_backend == "buildx":
        return None  # buildx keeps its own cache; its staged push is not a local artifact
    key = Hasher()
    key.add("step", [step.stage, step.target, __version__, sys.version])
    if step.stage in ("test", "lint", "fmt", "wheel"):
        key.files(ctx.root, source_files(ctx.root, service.path))
    if step.stage in ("test", "lint"):
        key.add("env", environment_packages(ctx.service_env(service)))
        for sibling in ctx.siblings(service):
            key.files(ctx.root, source_files(ctx.root, sibling.path))
    if step.stage == "test":
        key.add("options", [ctx.options.debug, ctx.require_all])
    if step.stage == "lint":
        key.add(
            "tools",
            [tool_version((tool("ruff"), "--version")), tool_version((tool("mypy"), "--version"))],
        )
        key.add("config", tool_config(ctx.root, "ruff", "mypy"))
    if step.stage == "fmt":
        key.add("tools", tool_version((tool("ruff"), "--version")))
        key.add("config", tool_config(ctx.root, "ruff"))
        key.add("fix", ctx.options.fix)
    if step.stage == "wheel":
        key.add("version", [ctx.version_of(service), tool_version((uv_binary(), "--version"))])
        key.add("siblings", sibling_wheel_digests(service, ctx))
    if step.stage == "image":
        add_image_inputs(key, service, ctx)
    if step.stage == "push":
        image = ctx.artifact_of(f"{service.name}:image", "image")
        key.add(
            "image",
            [
                image.details.get("id"),
                image.details.get("platforms"),
                image.details.get("tags"),
                ctx.options.registry,
            ],
        )
    return key.hexdigest()


def add_image_inputs(key: Hasher, service: Service, ctx: Context) -> None:
    from buildkit.engine_build import CREATED_LABEL, base_identity
    from buildkit.stages.image import oci_labels, target_platforms

    wheel = ctx.artifact_of(f"{service.wheel_owner}:wheel", "wheel")
    platforms = target_platforms(ctx)
    key.add("wheel", wheel.sha256)
    key.add("siblings", sibling_wheel_digests(service, ctx))
    key.files(ctx.root, [service.dockerfile, service.dockerfile.parent / ".dockerignore"])
    key.add("platforms", platforms)
    key.add("base", base_identity(ctx.require_engine(), ctx.options.base_image, platforms))
    labels = oci_labels(service, ctx, wheel.sha256 or "")
    labels.pop(CREATED_LABEL, None)
    key.add("labels", labels)
    key.add("options", [ctx.options.debug, ctx.options.image_backend])


def sibling_wheel_digests(service: Service, ctx: Context) -> dict[str, str | None]:
    return {
        sibling.name: ctx.artifact_of(f"{sibling.name}:wheel", "wheel").sha256
        for sibling in ctx.siblings(service)
    }
