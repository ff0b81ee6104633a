"""image: build the service's image for each target platform from the exact wheel of the
wheel stage, label it (OCI), tag it and smoke-test it — through the engine (docker SDK,
per platform) or buildx (one bake for every image of the run, staged in the registry)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from buildkit import reference
from buildkit.config import Service
from buildkit.docker_engine import BuildFailed
from buildkit.engine_build import PlatformImage, build_platforms
from buildkit.errors import StageFailed
from buildkit.model import Artifact, Outcome, Status
from buildkit.stages.context import Context
from buildkit.stages.wheel import sha256_of
from buildkit.tags import compute_tags, image_version
from buildkit.ui import human_size
from buildkit.wheelhouse import prepare_context

OCI = "org.opencontainers.image"


def image_refs(service: Service, ctx: Context) -> list[str]:
    repo = reference.repository(ctx.options.registry, service.image)
    tags = compute_tags(ctx.options.tag, ctx.git.commit, ctx.project.tag_rules)
    return [repo.ref(reference.check_tag(tag)) for tag in tags]


def created_time(ctx: Context) -> str:
    """SOURCE_DATE_EPOCH, else the commit time of a clean tree (rebuilds stay identical)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    if epoch.isdigit():
        return datetime.fromtimestamp(int(epoch), UTC).isoformat(timespec="seconds")
    if ctx.git.commit_time and not ctx.git.dirty:
        return ctx.git.commit_time
    return datetime.now(UTC).isoformat(timespec="seconds")


def oci_labels(service: Service, ctx: Context, wheel_sha256: str) -> dict[str, str]:
    return {
        f"{OCI}.title": service.image,
        f"{OCI}.description": service.description,
        f"{OCI}.version": image_version(ctx.options.tag, ctx.git.version),
        f"{OCI}.revision": ctx.git.commit,
        f"{OCI}.created": created_time(ctx),
        f"{OCI}.source": ctx.project.source_url,
        f"{OCI}.licenses": ctx.project.licenses,
        f"{OCI}.url": ctx.project.url,
        "dev.buildkit.build-mode": "debug" if ctx.options.debug else "release",
        "dev.buildkit.wheel-sha256": wheel_sha256,
    }


def build_args(base: str, debug: bool, platform: str | None = None) -> dict[str, str]:
    args = {
        "BASE_IMAGE": base,
        "PYTHONDEVMODE": "1" if debug else "",
        "LOG_LEVEL": "debug" if debug else "info",
        "DEBUG": "1" if debug else "",
    }
    if platform is not None:  # buildx sets these itself; the engine's builder does not
        args["TARGETOS"], args["TARGETARCH"] = platform.split("/", 1)
    return args


def checked_wheel(service: Service, ctx: Context) -> tuple[Path, str]:
    artifact = ctx.artifact_of(f"{service.name}:wheel", "wheel")
    wheel = ctx.root / artifact.name
    if not wheel.is_file() or sha256_of(wheel) != artifact.sha256:
        raise StageFailed(
            f"{artifact.name} is missing or changed since the wheel stage built "
            "it; rebuild it (run the wheel stage again)"
        )
    return wheel, artifact.sha256 or ""


def target_platforms(ctx: Context) -> tuple[str, ...]:
    if ctx.options.platforms:
        return ctx.options.platforms
    return (ctx.require_engine().platform(),)


def make_context(service: Service, ctx: Context, platforms: tuple[str, ...]) -> tuple[Path, str]:
    """build/image-context/<service>/ for `platforms`, and the wheel's sha256."""
    wheel, sha = checked_wheel(service, ctx)
    context_dir = ctx.build_dir / "image-context" / service.name
    prepare_context(
        context=context_dir,
        dockerfile=service.dockerfile,
        dockerignore=service.dockerfile.parent / ".dockerignore",
        wheel=wheel,
        platforms=platforms,
        cache_root=ctx.build_dir / "wheelhouse",
        offline=ctx.options.offline,
        runner=ctx.runner,
        mtime=int(datetime.fromisoformat(created_time(ctx)).timestamp()),
    )
    return context_dir, sha


def run(service: Service, ctx: Context) -> Outcome:
    if ctx.options.image_backend == "buildx":
        from buildkit.stages.image_buildx import run_buildx

        outcome: Outcome = run_buildx(service, ctx)
        return outcome
    engine = ctx.require_engine()
    platforms = target_platforms(ctx)
    context_dir, wheel_sha = make_context(service, ctx, platforms)
    refs = image_refs(service, ctx)
    labels = oci_labels(service, ctx, wheel_sha)
    try:
        images, local = build_platforms(
            engine,
            service,
            context=context_dir,
            platforms=platforms,
            refs=refs,
            base=ctx.options.base_image,
            buildargs=lambda base, platform: build_args(base, ctx.options.debug, platform),
            labels=labels,
            nocache=ctx.options.no_cache,
            version=ctx.git.version,
            smoke_timeout=ctx.project.smoke_timeout,
            on_line=ctx.runner.on_output,
        )
    except BuildFailed as exc:
        return Outcome(
            Status.FAILED,
            exc.message,
            command=f"docker build {context_dir}",
            output_tail=exc.output,
        )
    artifact = Artifact(
        kind="image",
        name=refs[0],
        size=local.size,
        details={
            "id": local.id,
            "tags": refs,
            "backend": "engine",
            "platforms": [image.to_json() for image in images],
            "base_image": ctx.options.base_image,
            "build_seconds": round(sum(i.build_seconds for i in images), 2),
            "emulated_seconds": round(sum(i.smoke_seconds for i in images if i.emulated), 2),
            "labels": labels,
        },
    )
    return Outcome(
        Status.OK,
        artifacts=(artifact,),
        command=f"docker build {context_dir}",
        summary=summary_of(images),
    )


def summary_of(images: list[PlatformImage]) -> str:
    return "; ".join(f"{i.platform} {human_size(i.size)}, {i.smoke}" for i in images)
