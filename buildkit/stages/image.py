"""image: build the service's image for each target platform from the exact wheel of the
wheel stage, label it (OCI), tag it and smoke-test it — through the engine (docker SDK,
per platform) or buildx (one bake for every image of the run, staged in the registry)."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from buildkit import claude_code, reference
from buildkit.config import CLAUDE_TARGET, Service
from buildkit.docker_engine import BuildFailed
from buildkit.engine_build import (
    KEY_LABEL,
    PlatformImage,
    build_platforms,
    find_by_key,
    put_in_place,
)
from buildkit.model import Artifact, Outcome, Result, Status
from buildkit.stages.context import Context
from buildkit.stages.wheel import checked_wheel, sibling_wheels
from buildkit.tags import compute_tags, image_version
from buildkit.ui import human_size
from buildkit.wheelhouse import platform_slug, prepare_context

OCI = "org.opencontainers.image"


def image_refs(service: Service, ctx: Context) -> list[str]:
    repo = reference.repository(ctx.options.registry, service.image)
    tags = compute_tags(ctx.options.tag, ctx.git.commit, ctx.project.tag_rules)
    return [repo.ref(reference.check_tag(tag)) for tag in tags]


def created_time(service: Service, ctx: Context) -> str:
    """SOURCE_DATE_EPOCH, else the commit time of clean sources (rebuilds stay identical)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    if epoch.isdigit():
        return datetime.fromtimestamp(int(epoch), UTC).isoformat(timespec="seconds")
    if ctx.git.commit_time and not ctx.git.is_dirty(service.path):
        return ctx.git.commit_time
    return datetime.now(UTC).isoformat(timespec="seconds")


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


def target_platforms(ctx: Context) -> tuple[str, ...]:
    if ctx.options.platforms:
        return ctx.options.platforms
    return (ctx.require_engine().platform(),)


def make_context(service: Service, ctx: Context, platforms: tuple[str, ...]) -> tuple[Path, str]:
    """build/image-context/<service>/ for `platforms`, and the wheel's sha256."""
    wheel, sha = checked_wheel(service.wheel_owner, ctx)
    context_dir = ctx.build_dir / "image-context" / service.name
    mtime = int(datetime.fromisoformat(created_time(service, ctx)).timestamp())
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
    )
    if service.name == CLAUDE_TARGET and ctx.project.claude is not None:
        claude_code.prepare(context_dir, ctx.project.claude, platforms,
                            cache=ctx.build_dir / "claude-code", offline=ctx.options.offline,
                            runner=ctx.runner, mtime=mtime)  # fmt: skip
    return context_dir, sha


def run(service: Service, ctx: Context) -> Outcome:
    if ctx.options.image_backend == "buildx":
        # Imported here: image_buildx builds on this module's helpers.
        from buildkit.stages.image_buildx import run_buildx

        outcome: Outcome = run_buildx(service, ctx)
        return outcome
    engine = ctx.require_engine()
    platforms = target_platforms(ctx)
    refs = image_refs(service, ctx)
    wheel_sha = ctx.artifact_of(f"{service.wheel_owner}:wheel", "wheel").sha256 or ""
    labels = oci_labels(service, ctx, wheel_sha)
    if ctx.step_key:
        labels[KEY_LABEL] = ctx.step_key
    if ctx.step_key and not ctx.options.no_cache:
        reused = find_by_key(engine, labels, platforms, refs)
        in_place = put_in_place(engine, reused, refs) if reused is not None else None
        if reused is not None and in_place is not None:
            found = engine.image(str(in_place["id"]))
            found_labels = dict(found.labels) if found else {}
            return reused_outcome(reused, in_place, refs, ctx.step_key, found_labels)
    context_dir, _ = make_context(service, ctx, platforms)
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
            version=ctx.version_of(service),
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


def reused_outcome(
    images: list[dict[str, Any]],
    local: dict[str, Any],
    refs: list[str],
    key: str,
    labels: dict[str, str],
) -> Outcome:
    artifact = Artifact(
        kind="image",
        name=refs[0],
        size=int(local["size"]),
        details={
            "id": local["id"],
            "tags": refs,
            "backend": "engine",
            "platforms": images,
            "reused_by_label": f"{KEY_LABEL}={key}",
            "labels": labels,
        },
    )
    return Outcome(
        Status.CACHED,
        f"found images built from the same inputs ({KEY_LABEL}={key[:12]}…)",
        artifacts=(artifact,),
        summary=f"reused {', '.join(image['platform'] for image in images)}",
    )


def still_valid(service: Service, result: Result, ctx: Context) -> Result | None:
    """A cached image counts only while the engine still has it. It gets this run's tags
    (the key leaves tags out: they do not change the image) and the result says so."""
    image = next((a for a in result.artifacts if a.kind == "image"), None)
    if image is None or image.details.get("backend") != "engine":
        return None
    refs = image_refs(service, ctx)
    platforms = [
        {**entry, "ref": f"{refs[0]}-{platform_slug(str(entry['platform']))}"}
        for entry in image.details["platforms"]
    ]
    local = put_in_place(ctx.require_engine(), platforms, refs)
    if local is None:
        return None
    retagged = replace(
        image,
        name=refs[0],
        details={**image.details, "tags": refs, "platforms": platforms, "id": local["id"]},
    )
    others = tuple(a for a in result.artifacts if a is not image)
    return replace(result, artifacts=(retagged, *others))


def summary_of(images: list[PlatformImage]) -> str:
    return "; ".join(f"{i.platform} {human_size(i.size)}, {i.smoke}" for i in images)
