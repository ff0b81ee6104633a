"""The buildx image backend. One step, `images:bake`, builds every image of the run (the
claude-code image included) for every platform in one `docker buildx bake`; with --push
each image is staged in the registry under `staging-<commit>` (the push stage moves the
real tags only after verification), otherwise it is loaded into the engine. Then each
image step smoke-tests its own image on every platform, from the registry by digest.

The push credentials are the run's (ctx.credentials): checked against the registry before
anything is built, handed to buildx in a docker config of its own when they come from
BUILDKIT_REGISTRY_USERNAME/PASSWORD (buildx reads no other), and to the engine's pulls.

BuildKit keeps its own cache (and the registry cache with `buildx_cache`), so these steps
are not recorded in build/cache."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from buildkit.cache.keys import Hasher
from buildkit.config import Service
from buildkit.engine import buildx
from buildkit.engine.build import PlatformImage
from buildkit.engine.smoke import smoke_test
from buildkit.errors import UsageError
from buildkit.model import Outcome, Result, Status, Step
from buildkit.options import image_targets
from buildkit.registry import reference
from buildkit.registry.credentials import from_environment
from buildkit.registry.docker_config import docker_config_for
from buildkit.stages.context import Context
from buildkit.stages.image.artifacts import STAGED, BuiltImage, Staged
from buildkit.stages.image.inputs import (
    build_args,
    image_refs,
    make_context,
    oci_labels,
    source_date_epoch,
    target_platforms,
)

BAKE_TARGET = "images"
BAKE_STEP = f"{BAKE_TARGET}:bake"


def target_name(service: Service) -> str:
    return service.image.replace(".", "-")


def bake(step: Step, ctx: Context) -> Outcome:
    """The `images:bake` step: every image in one bake; a staged image per target."""
    platforms = target_platforms(ctx)
    if len(platforms) > 1 and not ctx.options.push:
        raise UsageError(
            "buildx cannot load a multi-platform image into the engine",
            hint="add -p to push it, build one --platform, or use --image-backend engine",
        )
    services = [ctx.project.target(name) for name in image_targets(ctx.project, ctx.options)]
    repos = [reference.repository(ctx.options.registry, service.image) for service in services]
    if ctx.options.push:
        check_push_access(ctx, repos)
    targets, staged = [], []
    for service, repo in zip(services, repos, strict=True):
        context = make_context(service, ctx, platforms)
        refs = tuple(image_refs(service, ctx))
        staging = repo.ref(f"staging-{ctx.git.short or 'nogit'}")
        labels = oci_labels(service, ctx, context.wheel_sha256)
        cache = repo.ref("buildcache") if ctx.project.buildx_cache else ""
        targets.append(buildx.BakeTarget(
            name=target_name(service), context=context.path, platforms=platforms,
            tags=(staging,) if ctx.options.push else refs, labels=labels,
            args={**build_args(ctx.options.base_image, ctx.options.debug, context.trees),
                  # BuildKit stamps the config and its history with this, not the build time
                  "SOURCE_DATE_EPOCH": str(source_date_epoch(service, ctx))},
            cache_ref=cache,
        ))  # fmt: skip
        staged.append(
            Staged(service.name, refs, staging if ctx.options.push else refs[0], "", labels)
        )
    request = buildx.BakeRequest(
        targets=tuple(targets),
        push=ctx.options.push,
        load=not ctx.options.push,
        no_cache=ctx.options.no_cache,
        builder=ctx.options.builder,
    )
    with buildx_environment(ctx) as env:
        digests = buildx.bake(request, ctx.build_dir / "buildx", ctx.runner, env)
    done = tuple(
        Staged(s.target, s.refs, s.ref, digests[target.name], s.labels).to_artifact()
        for s, target in zip(staged, targets, strict=True)
    )
    return Outcome(
        Status.OK,
        artifacts=done,
        command="docker buildx bake",
        summary=f"{len(done)} images, {', '.join(platforms)}",
    )


def check_push_access(ctx: Context, repos: Sequence[reference.Repository]) -> None:
    """Fail before anything is built when the registry refuses the run's credentials, as
    the engine backend's push does before any layer goes up (a RegistryError: exit 7)."""
    domain = repos[0].domain
    with ctx.registry(domain, ctx.credentials(domain)) as registry:
        for repo in repos:
            registry.check_push_access(repo.path)


@contextmanager
def buildx_environment(ctx: Context) -> Iterator[dict[str, str]]:
    """What buildx's environment adds to the run's: with --push and
    BUILDKIT_REGISTRY_USERNAME/PASSWORD, a docker config of its own holding them for the
    registry (buildx reads credentials from nowhere else); otherwise nothing."""
    credentials = from_environment(ctx.env) if ctx.options.push else None
    if credentials is None:
        yield {}
        return
    domain = reference.parse_registry(ctx.options.registry).domain
    with docker_config_for(domain, credentials, ctx.env) as env:
        yield env


class BuildxBackend:
    name = "buildx"
    bakes = True

    def run(self, step: Step, ctx: Context) -> Outcome:
        """Smoke-test what the bake made of this step's image, on every platform."""
        service = ctx.target(step)
        baked = ctx.needs.get(BAKE_STEP)
        artifacts = baked.artifacts if baked else ()
        found = [a for a in artifacts if a.kind == STAGED and a.name == step.target]
        if not found:
            raise UsageError(f"{BAKE_STEP} produced no image for {step.target}")
        staged = Staged.from_artifact(found[0])
        engine = ctx.require_engine()
        image = f"{staged.ref.rsplit(':', 1)[0]}@{staged.digest}" if staged.digest else staged.ref
        auth = pull_auth(ctx, service) if staged.digest else None
        smoked = []
        for platform in target_platforms(ctx):
            emulated = platform != engine.platform()
            if emulated:
                engine.check_emulation(platform, ctx.options.base_image)
            if staged.digest:  # from the registry, with the push's credentials
                engine.pull(image, platform=platform, auth=auth)
            summary = smoke_test(
                engine,
                service,
                image,
                version=ctx.version_of(service),
                timeout=ctx.project.smoke_timeout,
                platform=platform,
                on_line=ctx.runner.on_output,
            )
            smoked.append(PlatformImage(platform, smoke=summary, emulated=emulated))
        local = None if staged.digest else engine.image(staged.ref)
        built = BuiltImage(
            tags=staged.refs,
            backend=self.name,
            platforms=tuple(smoked),
            labels=staged.labels,
            id=local.id if local else "",
            size=local.size if local else None,
            staged=staged if staged.digest else None,
        )
        return Outcome(
            Status.OK,
            artifacts=(built.to_artifact(),),
            command=f"docker run {image}",
            summary="; ".join(f"{s.platform} {s.smoke}" for s in smoked),
        )

    def key_inputs(self, key: Hasher, step: Step, ctx: Context) -> bool:
        return False  # BuildKit's own cache; a staged push is no local artifact

    def still_valid(self, step: Step, result: Result, ctx: Context) -> Result | None:
        return None


def pull_auth(ctx: Context, service: Service) -> dict[str, str] | None:
    """The credentials the push used, as the engine's auth config for pulling it back."""
    domain = reference.repository(ctx.options.registry, service.image).domain
    credentials = ctx.credentials(domain)
    return credentials.auth_config() if credentials else None
