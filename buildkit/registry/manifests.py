"""Image indexes: assembled from per-platform manifests, pushed through the registry API,
and read back to prove each tag resolves to exactly the platforms that were asked for."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from buildkit.errors import RegistryError
from buildkit.registry.client import Manifest, RegistryClient

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
REVISION = "org.opencontainers.image.revision"


@dataclass(frozen=True)
class PlatformManifest:
    platform: str  # os/arch
    digest: str
    size: int
    media_type: str


@dataclass(frozen=True)
class Verified:
    digest: str
    media_type: str
    platforms: Mapping[str, str] = field(default_factory=dict)  # platform -> manifest digest


def index_for(children: Sequence[PlatformManifest]) -> tuple[bytes, str]:
    """A manifest list (Docker children) or an OCI index (OCI children), with its type."""
    media_type = (
        DOCKER_LIST if all(c.media_type == DOCKER_MANIFEST for c in children) else OCI_INDEX
    )
    entries = []
    for child in children:
        os_name, arch = child.platform.split("/", 1)
        entries.append({
            "mediaType": child.media_type,
            "digest": child.digest,
            "size": child.size,
            "platform": {"architecture": arch, "os": os_name},
        })  # fmt: skip
    body = {"schemaVersion": 2, "mediaType": media_type, "manifests": entries}
    return json.dumps(body, indent=3).encode(), media_type


def platform_manifest(
    registry: RegistryClient, path: str, platform: str, digest: str
) -> PlatformManifest:
    manifest = registry.manifest(path, digest)
    if manifest.is_index:
        raise RegistryError(f"{path}@{digest} for {platform} is an index, not an image manifest")
    return PlatformManifest(platform, manifest.digest, len(manifest.body), manifest.media_type)


ATTESTATION_TYPE = "vnd.docker.reference.type"
ATTESTED_DIGEST = "vnd.docker.reference.digest"


def index_platforms(index: Manifest, path: str, reference: str) -> dict[str, str]:
    """platform -> digest of each image in an index. Attestation manifests (buildx's
    provenance, listed as `unknown/unknown`) are set aside, but only real ones: an
    attestation must name an image of this index, an entry that names no platform must
    be an attestation, and no platform may be listed twice."""
    found: dict[str, str] = {}
    attested: dict[str, str] = {}  # attestation digest -> the image it is about
    for entry in index.data.get("manifests", []):
        platform = entry.get("platform") or {}
        name = f"{platform.get('os', 'unknown')}/{platform.get('architecture', 'unknown')}"
        annotations = entry.get("annotations") or {}
        if annotations.get(ATTESTATION_TYPE) == "attestation-manifest":
            attested[entry["digest"]] = str(annotations.get(ATTESTED_DIGEST, ""))
            continue
        if name.startswith("unknown/") or name.endswith("/unknown"):
            raise RegistryError(
                f"the index {path}:{reference} holds {entry['digest']}, which names no "
                "platform and is no attestation"
            )
        if name in found:
            raise RegistryError(f"the index {path}:{reference} lists {name} twice")
        found[name] = entry["digest"]
    for digest, subject in attested.items():
        if subject not in found.values():
            raise RegistryError(
                f"the index {path}:{reference} holds attestation {digest}, which attests "
                f"{subject or 'nothing'}, which the index does not hold"
            )
    return found


def check_image(
    registry: RegistryClient, path: str, manifest: Manifest, platform: str, revision: str
) -> None:
    config = registry.config(path, manifest)
    actual = f"{config.get('os')}/{config.get('architecture')}"
    if actual != platform:
        raise RegistryError(
            f"{path}@{manifest.digest} is listed as {platform} but its config says {actual}"
        )
    labels = (config.get("config") or {}).get("Labels") or {}
    if labels.get(REVISION) != revision:
        raise RegistryError(
            f"{path}@{manifest.digest} ({platform}) is labelled revision "
            f"{labels.get(REVISION)!r}, not {revision!r}"
        )


def verify(
    registry: RegistryClient,
    path: str,
    reference: str,
    *,
    digest: str,
    platforms: Sequence[str],
    revision: str,
) -> Verified:
    """The registry must resolve `reference` to `digest`, holding exactly `platforms`."""
    top = registry.manifest(path, reference)
    if top.digest != digest:
        raise RegistryError(
            f"the registry resolves {path}:{reference} to {top.digest}, not to the pushed {digest}"
        )
    if not top.is_index:
        if len(platforms) != 1:
            raise RegistryError(
                f"{path}:{reference} is a single image, not an index of {', '.join(platforms)}"
            )
        check_image(registry, path, top, platforms[0], revision)
        return Verified(top.digest, top.media_type, {platforms[0]: top.digest})
    found = index_platforms(top, path, reference)
    if sorted(found) != sorted(platforms):
        raise RegistryError(
            f"the index {path}:{reference} holds {sorted(found)}, not exactly {sorted(platforms)}"
        )
    for platform, child_digest in found.items():
        check_image(registry, path, registry.manifest(path, child_digest), platform, revision)
    return Verified(top.digest, top.media_type, found)
