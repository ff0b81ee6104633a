"""The buildx half of the image stage. The first image step of a run builds every image
of the run, for every platform, in one `docker buildx bake`; when pushing, each image is
staged in the registry under a `staging-<commit>` tag (the push stage moves the real
tags only after verification). Every step then smoke-tests its own image, pulled by
digest for each platform."""

from __future__ import annotations

from dataclasses import dataclass

from buildkit import buildx, reference
from buildkit.config import CLAUDE_TARGET, Service
from buildkit.errors import BuildkitError, UsageError
from buildkit.model import Artifact, Outcome, Status
from buildkit.smoke import smoke_test
from buildkit.stages.context import Context
from buildkit.stages.image import (
    build_args,
    image_refs,
    make_context,
    oci_labels,
    target_platforms,
)

BAKE = "buildx-bake"


@dataclass(frozen=True)
class Baked:
    refs: tuple[str, ...]
    staging_ref: str
    digest: str  # of the staged image (an index for several platforms); "" when loaded
    labels: dict[str, str]


def target_name(service: Service) -> str:
    return service.image.replace(".", "-")


def image_targets(ctx: Context) -> list[str]:
    """Every image of the run: the services', and claude-code's with --claude-image."""
    claude = [CLAUDE_TARGET] if ctx.options.claude_image and ctx.project.claude else []
    return [*ctx.options.services, *claude]


def bake_all(ctx: Context, platforms: tuple[str, ...]) -> dict[str, Baked]:
    targets, baked = [], {}
    for name in image_targets(ctx):
        service = ctx.project.target(name)
        context_dir, wheel_sha = make_context(service, ctx, platforms)
        repo = reference.repository(ctx.options.registry, service.image)
        refs = tuple(image_refs(service, ctx))
        staging = repo.ref(f"staging-{ctx.git.short or 'nogit'}")
        labels = oci_labels(service, ctx, wheel_sha)
        cache = repo.ref("buildcache") if ctx.project.buildx_cache else ""
        targets.append(buildx.BakeTarget(
            name=target_name(service), context=context_dir, platforms=platforms,
            tags=(staging,) if ctx.options.push else refs, labels=labels,
            args=build_args(ctx.options.base_image, ctx.options.debug), cache_ref=cache,
        ))  # fmt: skip
        baked[name] = Baked(refs, staging, "", labels)
    request = buildx.BakeRequest(
        targets=tuple(targets),
        push=ctx.options.push,
        load=not ctx.options.push,
        no_cache=ctx.options.no_cache,
        builder=ctx.options.builder,
    )
    digests = buildx.bake(request, ctx.build_dir / "buildx", ctx.runner)
    return {
        name: Baked(
            item.refs,
            item.staging_ref,
            digests[target_name(ctx.project.target(name))],
            item.labels,
        )
        for name, item in baked.items()
    }


def bake_once(ctx: Context, platforms: tuple[str, ...]) -> dict[str, Baked]:
    """The first caller bakes for everyone; a failure is every step's failure."""
    with ctx.shared.lock:
        if BAKE not in ctx.shared.once:
            try:
                ctx.shared.once[BAKE] = bake_all(ctx, platforms)
            except BuildkitError as exc:
                ctx.shared.once[BAKE] = exc
        done = ctx.shared.once[BAKE]
    if isinstance(done, BuildkitError):
        raise done
    assert isinstance(done, dict)
    return done


def run_buildx(service: Service, ctx: Context) -> Outcome:
    platforms = target_platforms(ctx)
    if len(platforms) > 1 and not ctx.options.push:
        raise UsageError(
            "buildx cannot load a multi-platform image into the engine",
            hint="add -p to push it, build one --platform, or use --image-backend engine",
        )
    baked = bake_once(ctx, platforms)[service.name]
    engine = ctx.require_engine()
    image = (
        f"{baked.staging_ref.rsplit(':', 1)[0]}@{baked.digest}" if baked.digest else baked.refs[0]
    )
    smoked = []
    for platform in platforms:
        if platform != engine.platform():
            engine.check_emulation(platform, ctx.options.base_image)
        summary = smoke_test(
            engine,
            service,
            image,
            version=ctx.version_of(service),
            timeout=ctx.project.smoke_timeout,
            platform=platform,
            on_line=ctx.runner.on_output,
        )
        smoked.append({"platform": platform, "smoke": summary})
    artifact = Artifact(
        kind="image",
        name=baked.refs[0],
        details={
            "tags": list(baked.refs),
            "backend": "buildx",
            "staged": {"ref": baked.staging_ref, "digest": baked.digest} if baked.digest else {},
            "platforms": smoked,
            "labels": baked.labels,
        },
    )
    return Outcome(
        Status.OK,
        artifacts=(artifact,),
        command="docker buildx bake",
        summary="; ".join(f"{s['platform']} {s['smoke']}" for s in smoked),
    )
