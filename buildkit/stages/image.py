"""image: build the service's image with the docker SDK from the exact wheel of the wheel
stage, tag it, label it (OCI), and smoke-test it."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

from buildkit import reference
from buildkit.config import Service
from buildkit.docker_engine import BuildFailed, Engine
from buildkit.errors import DockerError, StageFailed
from buildkit.model import Artifact, Outcome, Status
from buildkit.smoke import smoke_test
from buildkit.stages.context import Context
from buildkit.stages.wheel import sha256_of
from buildkit.tags import compute_tags, image_version
from buildkit.ui import human_size
from buildkit.wheelhouse import platform_slug, prepare_context

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


def oci_labels(service: Service, ctx: Context) -> dict[str, str]:
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
    }


def build_args(wheel_name: str, wheel_sha: str, base: str, debug: bool) -> dict[str, str]:
    return {
        "BASE_IMAGE": base,
        "SERVICE_WHEEL": wheel_name,
        "SERVICE_WHEEL_SHA256": wheel_sha,
        "PYTHONDEVMODE": "1" if debug else "",
        "LOG_LEVEL": "debug" if debug else "info",
        "DEBUG": "1" if debug else "",
    }


def ensure_base(engine: Engine, base: str, platform: str) -> None:
    found = engine.image(base)
    if found is not None and found.platform == platform:
        return
    try:
        engine.pull(base, platform=platform)
    except DockerError as exc:
        raise DockerError(
            f"base image {base!r} for {platform} is not available: {exc.message}",
            hint="pull it (`docker pull ...`), make it locally (`bash ci/prepare-machine.sh` "
            "does), or choose another with base_image / BUILDKIT_BASE_IMAGE",
        ) from exc


def run(service: Service, ctx: Context) -> Outcome:
    engine = ctx.require_engine()
    wheel_artifact = ctx.artifact_of(f"{service.name}:wheel", "wheel")
    wheel = ctx.root / wheel_artifact.name
    if not wheel.is_file() or sha256_of(wheel) != wheel_artifact.sha256:
        raise StageFailed(
            f"{wheel_artifact.name} is missing or changed since the wheel stage "
            "built it; rebuild it (run the wheel stage again)"
        )
    refs = image_refs(service, ctx)
    platform = engine.platform()
    base = ctx.options.base_image
    ensure_base(engine, base, platform)
    context_dir = ctx.build_dir / "image-context" / service.name / platform_slug(platform)
    prepare_context(
        context=context_dir,
        dockerfile=service.dockerfile,
        dockerignore=service.dockerfile.parent / ".dockerignore",
        wheel=wheel,
        platform=platform,
        cache=ctx.build_dir / "wheelhouse" / platform_slug(platform),
        offline=ctx.options.offline,
        runner=ctx.runner,
    )
    started = time.monotonic()
    try:
        image_id = engine.build(
            context=context_dir,
            tag=refs[0],
            buildargs=build_args(wheel.name, wheel_artifact.sha256 or "", base, ctx.options.debug),
            labels=oci_labels(service, ctx),
            nocache=ctx.options.no_cache,
            platform=platform,
            pull=False,
            on_line=ctx.runner.on_output,
        )
    except BuildFailed as exc:
        return Outcome(
            Status.FAILED,
            exc.message,
            command=docker_build_command(context_dir),
            output_tail=exc.output,
        )
    build_seconds = time.monotonic() - started
    for ref in refs[1:]:
        engine.tag(image_id, ref)
    info = engine.image(image_id)
    if info is None:
        raise DockerError(f"the engine lost image {image_id} right after building it")
    smoke = smoke_test(
        engine,
        service,
        refs[0],
        version=ctx.git.version,
        timeout=ctx.project.smoke_timeout,
        on_line=ctx.runner.on_output,
    )
    artifact = Artifact(
        kind="image",
        name=refs[0],
        size=info.size,
        details={
            "id": image_id,
            "tags": refs,
            "platform": platform,
            "base_image": base,
            "build_seconds": round(build_seconds, 2),
            "labels": dict(info.labels),
        },
    )
    return Outcome(
        Status.OK,
        artifacts=(artifact,),
        command=docker_build_command(context_dir),
        summary=f"{human_size(info.size)}, built in {build_seconds:.1f}s, {smoke}",
    )


def docker_build_command(context: object) -> str:
    return f"docker build {context} (through the docker SDK)"
