"""The engine image backend (the docker SDK): each image step builds its own image, one
build per platform, smoke-tests each platform (foreign ones under QEMU) and tags the
image. A step whose inputs did not change reuses the recorded image, or one an earlier
run built from the same inputs (found by its `dev.buildkit.key` label)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from buildkit.cache.keys import Hasher
from buildkit.checks.locks import installed_lock
from buildkit.deps.wheelhouse import platform_slug
from buildkit.engine.build import (
    CREATED_LABEL,
    KEY_LABEL,
    base_identity,
    build_platforms,
    find_by_key,
    put_in_place,
)
from buildkit.engine.client import BuildFailed
from buildkit.model import Outcome, Result, Status, Step
from buildkit.stages.context import Context
from buildkit.stages.image.artifacts import IMAGE, BuiltImage
from buildkit.stages.image.inputs import (
    ImageContext,
    build_args,
    context_path,
    image_refs,
    make_context,
    oci_labels,
    source_date_epoch,
    target_platforms,
)
from buildkit.stages.inputs import sibling_wheel_digests
from buildkit.ui import human_size


class EngineBackend:
    name = "engine"
    bakes = False

    def run(self, step: Step, ctx: Context) -> Outcome:
        service = ctx.target(step)
        engine = ctx.require_engine()
        platforms = target_platforms(ctx)
        refs = image_refs(service, ctx)
        wheel_sha = ctx.artifact_of(f"{service.wheel_owner}:wheel", "wheel").sha256 or ""
        labels = oci_labels(service, ctx, wheel_sha)
        if ctx.step_key:
            labels[KEY_LABEL] = ctx.step_key
        if ctx.step_key and not ctx.options.no_cache:
            reused = find_by_key(engine, labels, platforms, refs)
            local = put_in_place(engine, reused, refs) if reused is not None else None
            if reused is not None and local is not None:
                found = engine.image(local.id)
                built = BuiltImage(
                    tuple(refs), self.name, tuple(reused), dict(found.labels) if found else {},
                    id=local.id, size=local.size,
                    notes={"reused_by_label": f"{KEY_LABEL}={ctx.step_key}"},
                )  # fmt: skip
                return Outcome(
                    Status.CACHED,
                    f"found images built from the same inputs ({KEY_LABEL}={ctx.step_key[:12]}…)",
                    artifacts=(built.to_artifact(),),
                    summary=f"reused {', '.join(built.platform_names)}",
                )
        contexts: dict[str, ImageContext] = {}

        def context_for(platform: str) -> Path:
            # One platform's tree per build: the classic builder receives the whole context
            # each time, and the trees' name then depends on that platform alone, so its
            # layer cache also serves a later build of fewer platforms.
            contexts[platform] = make_context(service, ctx, (platform,))
            return contexts[platform].path

        try:
            images, local = build_platforms(
                engine,
                service,
                context=context_for,
                platforms=platforms,
                refs=refs,
                base=ctx.options.base_image,
                buildargs=lambda base, platform: build_args(
                    base, ctx.options.debug, contexts[platform].trees, platform
                ),
                labels=labels,
                nocache=ctx.options.no_cache,
                version=ctx.version_of(service),
                smoke_timeout=ctx.project.smoke_timeout,
                on_line=ctx.runner.on_output,
                source_date_epoch=source_date_epoch(service, ctx),
            )
        except BuildFailed as exc:
            return Outcome(
                Status.FAILED,
                exc.message,
                command=f"docker build {context_path(service, ctx)}",
                output_tail=exc.output,
            )
        built = BuiltImage(
            tuple(refs), self.name, tuple(images), labels, id=local.id, size=local.size,
            notes={
                "base_image": ctx.options.base_image,
                "build_seconds": round(sum(i.build_seconds for i in images), 2),
                "emulated_seconds": round(sum(i.smoke_seconds for i in images if i.emulated), 2),
            },
        )  # fmt: skip
        return Outcome(
            Status.OK,
            artifacts=(built.to_artifact(),),
            command=f"docker build {context_path(service, ctx)}",
            summary="; ".join(f"{i.platform} {human_size(i.size)}, {i.smoke}" for i in images),
        )

    def key_inputs(self, key: Hasher, step: Step, ctx: Context) -> bool:
        service = ctx.target(step)
        wheel = ctx.artifact_of(f"{service.wheel_owner}:wheel", "wheel")
        platforms = target_platforms(ctx)
        key.add("wheel", wheel.sha256)
        key.add("siblings", sibling_wheel_digests(service, ctx))
        key.files(ctx.root, [service.dockerfile, service.dockerfile.parent / ".dockerignore"])
        key.add("platforms", platforms)
        key.add("user_dirs", service.user_dirs)
        lock = installed_lock(ctx.root, service.wheel_owner)
        key.files(ctx.root, [lock] if lock is not None else [])
        key.add("base", base_identity(ctx.require_engine(), ctx.options.base_image, platforms))
        labels = oci_labels(service, ctx, wheel.sha256 or "")
        labels.pop(CREATED_LABEL, None)
        key.add("labels", labels)
        key.add("options", [ctx.options.debug, self.name])
        return True

    def still_valid(self, step: Step, result: Result, ctx: Context) -> Result | None:
        """A cached image counts only while the engine still has it. It gets this run's
        tags (the key leaves tags out: they do not change the image), and says so."""
        found = next((a for a in result.artifacts if a.kind == IMAGE), None)
        if found is None or found.details.get("backend") != self.name:
            return None
        image = BuiltImage.from_artifact(found)
        refs = image_refs(ctx.target(step), ctx)
        platforms = tuple(
            replace(p, ref=f"{refs[0]}-{platform_slug(p.platform)}") for p in image.platforms
        )
        local = put_in_place(ctx.require_engine(), platforms, refs)
        if local is None:
            return None
        moved = replace(image, tags=tuple(refs), platforms=platforms, id=local.id)
        others = tuple(a for a in result.artifacts if a is not found)
        return replace(result, artifacts=(moved.to_artifact(), *others))
