"""Verification of a pushed tag: the registry must resolve it to the pushed digest and hold
exactly the requested platforms. buildx adds attestation manifests to an index (platform
`unknown/unknown`, with provenance); they are not platforms, but only a real attestation
may stand aside: an entry without a platform that is no attestation, an attestation of
an image the index does not hold, or a platform listed twice is refused.

The indexes are crafted, so they live in an in-memory registry (httpx MockTransport); the
buildx tests check the same against indexes buildx really pushed."""

from __future__ import annotations

from typing import Any

import pytest

from buildkit.errors import RegistryError
from buildkit.registry.manifests import verify
from tests.memory_registry import OCI_INDEX, OCI_MANIFEST, MemoryRegistry

PATH = "team/app"
REVISION = "c0ffee"
LABELS = {"org.opencontainers.image.revision": REVISION}
BOTH = ["linux/amd64", "linux/arm64"]


def entry(digest: str, platform: str | None, **annotations: str) -> dict[str, Any]:
    item: dict[str, Any] = {"mediaType": OCI_MANIFEST, "digest": digest, "size": 1}
    if platform is not None:
        os_name, arch = platform.split("/")
        item["platform"] = {"os": os_name, "architecture": arch}
    if annotations:
        item["annotations"] = annotations
    return item


def attestation(registry: MemoryRegistry, of: str) -> dict[str, Any]:
    """An attestation manifest as buildx pushes it beside each platform's image."""
    digest = registry.image(PATH, "unknown/unknown", {})
    return entry(
        digest,
        "unknown/unknown",
        **{"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": of},
    )


def pushed_index(registry: MemoryRegistry, entries: list[dict[str, Any]]) -> str:
    return registry.put_manifest(
        PATH, "v1", {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    )


def check(registry: MemoryRegistry, digest: str, platforms: list[str]) -> dict[str, str]:
    with registry.client() as client:
        found = verify(client, PATH, "v1", digest=digest, platforms=platforms, revision=REVISION)
    return dict(found.platforms)


@pytest.fixture
def registry() -> MemoryRegistry:
    return MemoryRegistry()


def images(registry: MemoryRegistry) -> dict[str, str]:
    return {platform: registry.image(PATH, platform, LABELS) for platform in BOTH}


def test_attestations_beside_the_platforms_are_accepted(registry: MemoryRegistry) -> None:
    made = images(registry)
    entries = [entry(made[p], p) for p in BOTH] + [attestation(registry, made[p]) for p in BOTH]
    digest = pushed_index(registry, entries)
    assert check(registry, digest, BOTH) == made


def test_attestations_do_not_count_as_the_requested_platforms(registry: MemoryRegistry) -> None:
    made = images(registry)
    one = [entry(made["linux/amd64"], "linux/amd64"), attestation(registry, made["linux/amd64"])]
    digest = pushed_index(registry, one)
    with pytest.raises(RegistryError, match=r"holds \['linux/amd64'\], not exactly"):
        check(registry, digest, BOTH)


def test_an_entry_without_a_platform_that_is_no_attestation_is_refused(
    registry: MemoryRegistry,
) -> None:
    made = images(registry)
    stray = registry.image(PATH, "linux/riscv64", LABELS)
    entries = [entry(made[p], p) for p in BOTH]
    for unlabelled in (entry(stray, None), entry(stray, "unknown/unknown")):
        digest = pushed_index(registry, [*entries, unlabelled])
        with pytest.raises(RegistryError, match="names no platform and is no attestation"):
            check(registry, digest, BOTH)


def test_an_attestation_of_an_image_not_in_the_index_is_refused(
    registry: MemoryRegistry,
) -> None:
    made = images(registry)
    elsewhere = registry.image(PATH, "linux/amd64", {"org.opencontainers.image.revision": "old"})
    entries = [entry(made[p], p) for p in BOTH] + [attestation(registry, elsewhere)]
    digest = pushed_index(registry, entries)
    with pytest.raises(RegistryError, match=r"attests .* which the index does not hold"):
        check(registry, digest, BOTH)


def test_a_platform_listed_twice_is_refused(registry: MemoryRegistry) -> None:
    made = images(registry)
    again = registry.image(PATH, "linux/amd64", {**LABELS, "other": "1"})
    entries = [entry(made[p], p) for p in BOTH] + [entry(again, "linux/amd64")]
    digest = pushed_index(registry, entries)
    with pytest.raises(RegistryError, match="lists linux/amd64 twice"):
        check(registry, digest, BOTH)


def test_a_tag_moved_elsewhere_is_refused(registry: MemoryRegistry) -> None:
    made = images(registry)
    digest = pushed_index(registry, [entry(made[p], p) for p in BOTH])
    pushed_index(registry, [entry(made["linux/amd64"], "linux/amd64")])  # v1 moves
    with pytest.raises(RegistryError, match="not to the pushed"):
        check(registry, digest, BOTH)
