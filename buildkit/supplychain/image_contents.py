"""What a pushed image holds, read from the registry itself — the layers as pushed, not
the build's inputs: every `*.dist-info` (METADATA and RECORD) and the dpkg status, with
later layers overriding earlier ones and whiteouts removing what they name. The same for
either image backend, and for every platform of an index."""

from __future__ import annotations

import io
import json
import posixpath
import tarfile
from collections.abc import Iterator

from buildkit.errors import RegistryError
from buildkit.registry.client import Manifest, RegistryClient
from buildkit.supplychain.sbom import PlatformContents, debian_packages, python_package

DPKG_STATUS = "var/lib/dpkg/status"
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


def wanted(name: str) -> bool:
    if name == DPKG_STATUS:
        return True
    parent, base = posixpath.split(name)
    return parent.endswith(".dist-info") and base in ("METADATA", "RECORD")


def layer_members(blob: bytes, what: str) -> Iterator[tuple[str, tarfile.TarFile, tarfile.TarInfo]]:
    try:
        archive = tarfile.open(fileobj=io.BytesIO(blob), mode="r:*")  # noqa: SIM115
    except tarfile.TarError as exc:  # zstd, say: Python 3.11's tarfile cannot read it
        raise RegistryError(f"{what} is not a tar layer buildkit can read: {exc}") from None
    with archive:
        for member in archive:
            yield member.name.removeprefix("./").lstrip("/"), archive, member


def read_files(client: RegistryClient, path: str, manifest: Manifest) -> dict[str, bytes]:
    """The wanted files as the image's filesystem has them after its last layer."""
    files: dict[str, bytes] = {}
    for layer in manifest.data.get("layers", []):
        blob = client.blob(path, str(layer["digest"]))
        for name, archive, member in layer_members(blob, f"layer {layer['digest']}"):
            parent, base = posixpath.split(name)
            if base == OPAQUE:
                files = {k: v for k, v in files.items() if not k.startswith(parent + "/")}
            elif base.startswith(WHITEOUT):
                gone = posixpath.join(parent, base[len(WHITEOUT) :])
                files = {
                    k: v for k, v in files.items() if k != gone and not k.startswith(gone + "/")
                }
            elif member.isfile() and wanted(name):
                extracted = archive.extractfile(member)
                if extracted is not None:
                    files[name] = extracted.read()
    return files


def platform_contents(client: RegistryClient, path: str, manifest: Manifest) -> PlatformContents:
    config = client.config(path, manifest)
    platform = f"{config.get('os', '')}/{config.get('architecture', '')}"
    files = read_files(client, path, manifest)
    python = []
    for name, record in files.items():
        if name.endswith(".dist-info/RECORD"):
            metadata = files.get(name[: -len("RECORD")] + "METADATA")
            if metadata is not None:
                python.append(python_package(metadata.decode("utf-8", "replace"), record))
    status = files.get(DPKG_STATUS, b"").decode("utf-8", "replace")
    return PlatformContents(
        platform,
        tuple(sorted(python, key=lambda p: p.name.lower())),
        debian_packages(status),
    )


def image_contents(client: RegistryClient, path: str, digest: str) -> tuple[PlatformContents, ...]:
    """Each platform image of `digest` (an image, or an index less its attestations)."""
    manifest = client.manifest(path, digest)
    if not manifest.is_index:
        return (platform_contents(client, path, manifest),)
    children = [
        entry["digest"]
        for entry in manifest.data.get("manifests", [])
        if entry.get("platform", {}).get("os", "unknown") != "unknown"
    ]
    return tuple(platform_contents(client, path, client.manifest(path, d)) for d in children)


BUILDX_PROVENANCE = "https://slsa.dev/provenance/v0.2"


def buildx_provenance(client: RegistryClient, path: str, digest: str) -> tuple[bytes, ...]:
    """The SLSA provenance predicates buildx attached to an index (one per platform image,
    in its `attestation-manifest` entries); none for an image that is no index."""
    index = client.manifest(path, digest)
    if not index.is_index:
        return ()
    found = []
    for entry in index.data.get("manifests", []):
        annotations = entry.get("annotations") or {}
        if annotations.get("vnd.docker.reference.type") != "attestation-manifest":
            continue
        for layer in client.manifest(path, entry["digest"]).data.get("layers", []):
            if (layer.get("annotations") or {}).get(
                "in-toto.io/predicate-type"
            ) == BUILDX_PROVENANCE:
                statement = json.loads(client.blob(path, layer["digest"]))
                found.append(json.dumps(statement.get("predicate", {}), indent=2).encode())
    return tuple(found)
