"""What an image is made from, whichever backend builds it: its references (tags), its OCI
labels and creation time, its build arguments, its platforms, and its build context
(build/image-context/<target>/: the exact wheel and its dependencies installed per
platform, the directories its user owns, plus Claude Code for the claude-code image)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from buildkit.checks.locks import installed_lock
from buildkit.config import CLAUDE_TARGET, Service, config_table
from buildkit.deps import claude_code
from buildkit.deps.image_root import TREES_ARG, add_user_dirs, check_dockerfile, seal_trees
from buildkit.deps.wheelhouse import prepare_context
from buildkit.registry import reference
from buildkit.stages.context import Context
from buildkit.stages.wheel import checked_wheel, sibling_wheels
from buildkit.tags import compute_tags, image_version

OCI = "org.opencontainers.image"


def image_refs(service: Service, ctx: Context) -> list[str]:
    repo = reference.repository(ctx.options.registry, service.image)
    tags = compute_tags(ctx.options.tag, ctx.git.commit, ctx.project.tag_rules)
    return [repo.ref(reference.check_tag(tag)) for tag in tags]


def created_time(service: Service, ctx: Context) -> str:
    """SOURCE_DATE_EPOCH, else the commit time of clean sources (rebuilds stay identical)."""
    epoch = ctx.env.get("SOURCE_DATE_EPOCH", "")
    if epoch.isdigit():
        return datetime.fromtimestamp(int(epoch), UTC).isoformat(timespec="seconds")
    if ctx.git.commit_time and not ctx.git.is_dirty(service.path):
        return ctx.git.commit_time
    return datetime.now(UTC).isoformat(timespec="seconds")


def source_date_epoch(service: Service, ctx: Context) -> int:
    """The time every timestamp of the image gets: `created_time` in seconds."""
    return int(datetime.fromisoformat(created_time(service, ctx)).timestamp())


def oci_labels(service: Service, ctx: Context, wheel_sha256: str) -> dict[str, str]:
    return {
        f"{OCI}.title": service.image,
        f"{OCI}.description": service.description,
        f"{OCI}.version": image_version(ctx.options.tag, ctx.version_of(service)),
        f"{OCI}.revision": ctx.git.commit,
        f"{OCI}.created": created_time(service, ctx),
        f"{OCI}.source": ctx.project.source_url,
        f"{OCI}.licenses": ctx.project.licenses,
        f"{OCI}.url": ctx.project.url,
        "dev.buildkit.build-mode": "debug" if ctx.options.debug else "release",
        "dev.buildkit.wheel-sha256": wheel_sha256,
    } | claude_labels(service, ctx)


def claude_labels(service: Service, ctx: Context) -> dict[str, str]:
    if service.name != CLAUDE_TARGET or ctx.project.claude is None:
        return {}
    return {"dev.buildkit.claude-code-version": ctx.project.claude.version}


def build_args(base: str, debug: bool, trees: str, platform: str | None = None) -> dict[str, str]:
    args = {
        "BASE_IMAGE": base,
        TREES_ARG: trees,  # where the context's root-shaped trees are (ImageContext)
        "PYTHONDEVMODE": "1" if debug else "",
        "LOG_LEVEL": "debug" if debug else "info",
        "DEBUG": "1" if debug else "",
    }
    if platform is not None:  # buildx sets these itself; the engine's builder does not
        args["TARGETOS"], args["TARGETARCH"] = platform.split("/", 1)
    return args


def target_platforms(ctx: Context) -> tuple[str, ...]:
    if ctx.options.platforms:
        return ctx.options.platforms
    return (ctx.require_engine().platform(),)


def install_dir(service: Service, ctx: Context) -> str:
    """Where the image has its wheel's install tree: `opt/<image of the wheel's service>`
    (the claude-code image has mcp-wrapper's at opt/mcp-wrapper), as its Dockerfile says."""
    return f"opt/{ctx.project.target(service.wheel_owner).image}"


@dataclass(frozen=True)
class ImageContext:
    """A prepared build context: its directory, the sha256 of the wheel installed in it, and
    the name of the directory below it that holds the root-shaped trees the Dockerfile
    copies (`trees-<digest>`, build argument IMAGE_TREES: buildkit.deps.image_root)."""

    path: Path
    wheel_sha256: str
    trees: str


def context_path(service: Service, ctx: Context) -> Path:
    return ctx.build_dir / "image-context" / service.name


def make_context(service: Service, ctx: Context, platforms: tuple[str, ...]) -> ImageContext:
    """build/image-context/<service>/ for `platforms`."""
    check_dockerfile(service.dockerfile, service.user_dirs, config_table(service.name))
    wheel, sha = checked_wheel(service.wheel_owner, ctx)
    context_dir = context_path(service, ctx)
    mtime = source_date_epoch(service, ctx)
    prepare_context(
        context=context_dir,
        dockerfile=service.dockerfile,
        dockerignore=service.dockerfile.parent / ".dockerignore",
        wheel=wheel,
        siblings=sibling_wheels(service, ctx),
        platforms=platforms,
        cache_root=ctx.build_dir / "wheelhouse",
        offline=ctx.options.offline,
        runner=ctx.runner,
        mtime=mtime,
        install_dir=install_dir(service, ctx),
        constraints=installed_lock(ctx.root, service.wheel_owner),
    )
    if service.name == CLAUDE_TARGET and ctx.project.claude is not None:
        claude_code.prepare(context_dir, ctx.project.claude, platforms,
                            cache=ctx.build_dir / "claude-code", offline=ctx.options.offline,
                            runner=ctx.runner, mtime=mtime)  # fmt: skip
    add_user_dirs(context_dir, service.user_dirs, mtime)
    return ImageContext(context_dir, sha, seal_trees(context_dir, mtime))
