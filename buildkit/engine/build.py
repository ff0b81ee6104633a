"""The engine backend: one docker-SDK build per platform from the shared context, each
smoke-tested (foreign platforms under QEMU). Base images are resolved per platform
without disturbing the user's own tags."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from buildkit.config import Service
from buildkit.deps.wheelhouse import platform_slug
from buildkit.engine.client import CLASSIC_STORE, CONTAINERD_STORE, Engine
from buildkit.engine.normalise import normalise
from buildkit.engine.smoke import smoke_test
from buildkit.engine.stores import copy_platform, has_platform
from buildkit.errors import DockerError


@dataclass(frozen=True)
class PlatformImage:
    """One platform of an image: what was built (engine backend: its local id, size and
    tag) and how its smoke test went (both backends)."""

    platform: str
    id: str = ""
    size: int = 0
    ref: str = ""  # the local tag of this platform's image
    build_seconds: float = 0.0
    smoke_seconds: float = 0.0
    smoke: str = ""
    emulated: bool = False

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PlatformImage:
        return cls(
            platform=str(data["platform"]),
            id=str(data.get("id", "")),
            size=int(data.get("size", 0)),
            ref=str(data.get("ref", "")),
            build_seconds=float(data.get("build_seconds", 0.0)),
            smoke_seconds=float(data.get("smoke_seconds", 0.0)),
            smoke=str(data.get("smoke", "")),
            emulated=bool(data.get("emulated", False)),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "id": self.id,
            "size": self.size,
            "ref": self.ref,
            "build_seconds": round(self.build_seconds, 2),
            "smoke_seconds": round(self.smoke_seconds, 2),
            "smoke": self.smoke,
            "emulated": self.emulated,
        }


def base_alias(base: str, platform: str) -> str:
    name = "".join(ch if ch.isalnum() or ch in "._-" else "-" for ch in base.lower()).strip("-.")
    return f"buildkit-base/{name}:{platform_slug(platform)}"


KEY_LABEL = "dev.buildkit.key"
CREATED_LABEL = "org.opencontainers.image.created"


def put_in_place(
    engine: Engine, images: Sequence[PlatformImage], refs: Sequence[str]
) -> PlatformImage | None:
    """Tag images built earlier as if just built; return the one the plain tags name, or
    None when any of them is gone."""
    if not images or any(engine.image(image.id) is None for image in images):
        return None
    for image in images:
        engine.tag(image.id, image.ref)
    native = engine.platform()
    local = next((image for image in images if image.platform == native), images[0])
    for ref in refs:
        engine.tag(local.id, ref)
    return local


def find_by_key(
    engine: Engine, labels: Mapping[str, str], platforms: tuple[str, ...], refs: Sequence[str]
) -> list[PlatformImage] | None:
    """Images an earlier run built from the same inputs, one per platform, or None.

    `labels` are the ones this build would set, KEY_LABEL among them. The legacy builder
    adds labels one LABEL step at a time, so its intermediate images carry the key too;
    one whose child was removed shows up as a top-level image. Only an image with every
    label (the creation time aside) is the finished build."""
    expected = {name: value for name, value in labels.items() if name != CREATED_LABEL}
    found = {
        info.platform: info
        for info in engine.images_labelled(KEY_LABEL, labels[KEY_LABEL])
        if all(info.labels.get(name) == value for name, value in expected.items())
    }
    if any(platform not in found for platform in platforms):
        return None
    return [
        PlatformImage(
            platform,
            found[platform].id,
            found[platform].size,
            f"{refs[0]}-{platform_slug(platform)}",
            smoke="reused (built and smoke-tested by an earlier run)",
            emulated=platform != engine.platform(),
        )
        for platform in platforms
    ]


def base_identity(engine: Engine, base: str, platforms: tuple[str, ...]) -> dict[str, str]:
    """platform -> the id of the local base image a build would use ("" if it must pull)."""
    identity = {}
    for platform in platforms:
        for ref in (base, base_alias(base, platform)):
            found = engine.image(ref)
            if found is not None and found.platform == platform:
                identity[platform] = found.id
                break
        else:
            identity[platform] = ""
    return identity


def resolve_base(engine: Engine, base: str, platform: str) -> str:
    """A local reference to `base` as a `platform` image: the tag itself when it is one,
    else a per-platform alias (made once). The user's tag is left as it was.

    On the classic store the alias is the pulled platform's image. On the containerd store
    a pulled base is an index of variants, and this engine's classic builder cannot build
    a foreign platform FROM an index (Docker 26 commits each step with the index's default
    platform, then looks the step up for the build's platform: "No such image"); so there
    the alias is a single-platform copy of the variant."""
    found = engine.image(base)
    if found is not None and found.platform == platform:
        return base
    alias = base_alias(base, platform)
    cached = engine.image(alias)
    if cached is not None and cached.platform == platform:
        return alias
    pulled = found
    if found is None or not has_platform(engine, base, platform):
        try:
            pulled = engine.pull(base, platform=platform)
        except DockerError as exc:
            raise DockerError(
                f"base image {base!r} for {platform} is not available: {exc.message}",
                hint="pull it (`docker pull --platform ...`), make it locally (`bash "
                "ci/prepare-machine.sh` does), or choose another with base_image / "
                "BUILDKIT_BASE_IMAGE",
            ) from exc
        if not has_platform(engine, base, platform):
            raise DockerError(
                f"base image {base!r} has no {platform} variant (got {pulled.platform})"
            )
    assert pulled is not None
    if engine.store == CONTAINERD_STORE:
        copy_platform(engine, base, platform, alias)
    else:
        engine.tag(pulled.id, alias)
    if found is not None and found.id != pulled.id:
        engine.tag(found.id, base)  # pulling moved the user's tag: put it back
    return alias


def build_platforms(
    engine: Engine,
    service: Service,
    *,
    context: Callable[[str], Path],
    platforms: tuple[str, ...],
    refs: Sequence[str],
    base: str,
    buildargs: Callable[[str, str], Mapping[str, str]],
    labels: Mapping[str, str],
    nocache: bool,
    version: str,
    smoke_timeout: float,
    on_line: Callable[[str], None],
    source_date_epoch: int | None = None,
) -> tuple[list[PlatformImage], PlatformImage]:
    """Every platform's image, and the one the plain tags name locally: each built from
    `context(platform)`, prepared when its build starts, with `buildargs(base, platform)`,
    which may use what that preparation made. With
    `source_date_epoch`, each image of the classic store gets that time in its config
    before its smoke test (buildkit.engine.normalise)."""
    native = engine.platform()
    images = []
    for platform in platforms:
        base_ref = resolve_base(engine, base, platform)
        emulated = platform != native
        if emulated:
            engine.check_emulation(platform, base_ref)
        platform_ref = f"{refs[0]}-{platform_slug(platform)}"
        started = time.monotonic()
        image_id = engine.build(
            context=context(platform),
            tag=platform_ref,
            buildargs=buildargs(base_ref, platform),
            labels=labels,
            nocache=nocache,
            platform=platform,
            pull=False,
            on_line=on_line,
        )
        if source_date_epoch is not None and engine.store == CLASSIC_STORE:
            image_id = normalise(engine, image_id, platform_ref, source_date_epoch)
        build_seconds = time.monotonic() - started
        info = engine.image(image_id)
        if info is None or info.platform != platform:
            raise DockerError(
                f"the {platform} build of {service.image} produced "
                f"{info.platform if info else 'no image'}"
            )
        started = time.monotonic()
        summary = smoke_test(
            engine,
            service,
            platform_ref,
            version=version,
            timeout=smoke_timeout,
            platform=platform,
            on_line=on_line,
        )
        images.append(
            PlatformImage(
                platform,
                image_id,
                info.size,
                platform_ref,
                build_seconds,
                time.monotonic() - started,
                summary,
                emulated,
            )
        )
    # The plain tags name the engine's own platform where it was built, else the first.
    local = next((image for image in images if image.platform == native), images[0])
    for ref in refs:
        engine.tag(local.id, ref)
    return images, local
