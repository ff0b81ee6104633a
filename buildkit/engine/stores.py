"""What the two image stores answer differently, where a build needs one platform of a
base image: the classic store keeps one platform per image; the containerd store keeps an
index of variants, and this engine's API (1.45) inspects only the engine's own."""

from __future__ import annotations

import contextlib

from docker.errors import APIError, DockerException, NotFound

from buildkit.engine.client import CLASSIC_STORE, PROBE_LABEL, Engine, explain
from buildkit.errors import DockerError


def has_platform(engine: Engine, ref: str, platform: str) -> bool:
    """Whether `ref` can run as `platform` from what the engine holds (no pull).

    The classic store keeps one platform per image: its inspect says which. The
    containerd store keeps an index with a variant per platform, and this engine's API
    (1.45) inspects only the engine's own: creating (never starting) a container
    asks for the other one, and fails when that variant is not in the store."""
    found = engine.image(ref)
    if found is None or found.platform == platform:
        return found is not None
    if engine.store == CLASSIC_STORE:
        return False
    try:
        created = engine.client.api.create_container(
            ref, command=["true"], platform=platform, labels={PROBE_LABEL: "platform"}
        )
    except (APIError, DockerException):
        return False
    with contextlib.suppress(NotFound):
        engine.client.api.remove_container(created["Id"], force=True)
    return True


def copy_platform(engine: Engine, ref: str, platform: str, tag: str) -> str:
    """Tag a single-platform image of `ref`'s `platform` variant as `tag`; its id.
    Committing a container that never started copies the variant's config and layers
    and adds no layer (nothing changed); the container is removed."""
    repository, _, version = tag.rpartition(":")
    try:
        created = engine.client.api.create_container(ref, platform=platform)
        try:
            committed = engine.client.api.commit(created["Id"], repository, version)
        finally:
            with contextlib.suppress(NotFound):
                engine.client.api.remove_container(created["Id"], force=True)
    except APIError as exc:
        raise DockerError(f"making a {platform} copy of {ref} failed: {explain(exc)}") from exc
    return str(committed["Id"])
