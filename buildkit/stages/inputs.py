"""Key inputs several stages share: a service's files as git sees them, its environment's
exact packages, and the sibling services it requires (their files, their wheels)."""

from __future__ import annotations

from buildkit.cache import keys
from buildkit.cache.keys import Hasher
from buildkit.config import Service
from buildkit.gitinfo import source_files
from buildkit.stages.context import Context


def add_files(key: Hasher, service: Service, ctx: Context) -> None:
    """The service's files: tracked, and untracked-not-ignored, with their content."""
    key.files(ctx.root, source_files(ctx.root, service.path))


def add_environment(key: Hasher, service: Service, ctx: Context) -> None:
    """Its environment's exact packages, and the files of the siblings installed editable
    in it (a freeze names an editable install, not its content)."""
    key.add("env", keys.environment_packages(ctx.service_env(service)))
    for sibling in ctx.siblings(service):
        add_files(key, sibling, ctx)


def sibling_wheel_digests(service: Service, ctx: Context) -> dict[str, str | None]:
    """sha256 of each sibling's wheel (from the needed wheel steps)."""
    return {
        sibling.name: ctx.artifact_of(f"{sibling.name}:wheel", "wheel").sha256
        for sibling in ctx.siblings(service)
    }
