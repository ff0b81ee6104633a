"""Push an image of the containerd image store by digest, leaving no tag.

That store keeps an image as a registry holds it: a manifest (whose digest is the image
id), a config and compressed layers, and `docker save` writes exactly those as an OCI
layout (blobs/sha256/<hex>, index.json). So nothing is compressed here: every blob the
registry lacks is uploaded as it is, then the manifest under its own digest, and the
registry ends up with the very manifest that was smoke-tested. (The classic store saves
uncompressed layers and no manifest: buildkit.registry.blobs handles that one.)
"""

from __future__ import annotations

import contextlib
import functools
import json
import tarfile
from collections.abc import Callable
from pathlib import Path

from requests.exceptions import RequestException

from buildkit.engine.client import Engine
from buildkit.errors import DockerError
from buildkit.registry.blobs import MAX_CONFIG, ChunkReader, check, file_chunks, never, spool
from buildkit.registry.client import INDEX_TYPES, RegistryClient, digest_of

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
BLOB_PREFIX = "blobs/sha256/"


def blob_digest(member: str) -> str:
    """`blobs/sha256/<hex>` -> `sha256:<hex>`; "" for any other member of the layout."""
    name = member.removeprefix("./")
    return "sha256:" + name[len(BLOB_PREFIX) :] if name.startswith(BLOB_PREFIX) else ""


def push_oci_export(
    engine: Engine,
    registry: RegistryClient,
    path: str,
    image_id: str,
    scratch: Path,
    *,
    stop: Callable[[], bool] = never,
) -> str:
    """Put the containerd-store image `image_id` into repository `path`; return its digest."""
    try:
        small = upload_large_blobs(engine, registry, path, image_id, scratch=scratch, stop=stop)
    except (OSError, tarfile.TarError, RequestException) as exc:
        raise DockerError(
            f"exporting image {image_id[:19]} for a push by digest failed: {exc}",
            hint="check the free space under build/blobs, then push again",
        ) from exc
    body = small.get(image_id)
    if body is None:
        raise DockerError(f"the engine's export of {image_id[:19]} holds no manifest {image_id}")
    manifest = json.loads(body)
    media_type = manifest.get("mediaType") or OCI_MANIFEST
    if media_type in INDEX_TYPES:
        raise DockerError(f"image {image_id[:19]} is an index; push its platforms one by one")
    for descriptor in (manifest["config"], *manifest.get("layers", [])):
        digest = str(descriptor["digest"])
        if registry.has_blob(path, digest):
            continue
        if digest not in small:
            raise DockerError(f"the engine's export of {image_id[:19]} lacks blob {digest}")
        registry.upload_blob(
            path, digest, len(small[digest]), functools.partial(list, [small[digest]])
        )
    return registry.put_manifest(path, image_id, body, media_type)


def upload_large_blobs(
    engine: Engine,
    registry: RegistryClient,
    path: str,
    image_id: str,
    *,
    scratch: Path,
    stop: Callable[[], bool],
) -> dict[str, bytes]:
    """Read the export once: upload each large blob the registry lacks as it passes (from
    a scratch file, so a retry after an auth challenge can send it again); return the small
    ones (manifest, config, small layers) by digest, for after the manifest is known."""
    small: dict[str, bytes] = {}
    scratch.mkdir(parents=True, exist_ok=True)
    with (
        contextlib.closing(engine.save(image_id)) as chunks,
        tarfile.open(fileobj=ChunkReader(chunks, stop), mode="r|") as tar,  # type: ignore[call-overload]
    ):
        for member in tar:
            digest = blob_digest(member.name)
            source = tar.extractfile(member) if digest and member.isfile() else None
            if source is None:
                continue
            if member.size <= MAX_CONFIG:
                data = source.read()
                if digest_of(data) != digest:
                    raise DockerError(f"blob {digest} of the export does not match its digest")
                small[digest] = data
                continue
            if registry.has_blob(path, digest):
                continue  # the tar stream skips the member's data
            actual, spooled = spool(source, b"", scratch)
            try:
                if actual != digest:
                    raise DockerError(f"blob {digest} of the export hashes to {actual}")
                check(stop)
                registry.upload_blob(path, digest, member.size, file_chunks(spooled, stop))
            finally:
                spooled.unlink(missing_ok=True)
    return small
