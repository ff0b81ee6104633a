"""Push an engine's image to a registry by digest, leaving no tag: each platform's image
(buildkit.registry.blobs for the classic image store, buildkit.registry.oci_export for the
containerd one), and for several platforms an index of them, pushed by digest too. The
tags are the caller's business, once everything is in the registry."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from buildkit.engine.client import CONTAINERD_STORE, Engine
from buildkit.registry.blobs import LayerStore, never, push_by_digest
from buildkit.registry.client import RegistryClient, digest_of
from buildkit.registry.manifests import index_for, platform_manifest
from buildkit.registry.oci_export import push_oci_export


def push_platforms(
    engine: Engine,
    registry: RegistryClient,
    *,
    path: str,
    platforms: Sequence[tuple[str, str]],
    store: LayerStore,
    stop: Callable[[], bool] = never,
) -> str:
    """Every platform's image (`platforms`: (platform, the engine's image id) pairs) by
    digest; the digest of the image (one platform) or of the index of them all (several).
    No tag is touched."""
    # Credentials are proven before minutes go into exporting and compressing layers.
    registry.has_blob(path, platforms[0][1])
    failed = threading.Event()  # one platform's failure stops the other's work

    def push_one(image: tuple[str, str]) -> str:
        try:
            if engine.store == CONTAINERD_STORE:
                return push_oci_export(
                    engine,
                    registry,
                    path,
                    image[1],
                    store.root / "scratch",
                    stop=lambda: failed.is_set() or stop(),
                )
            return push_by_digest(
                engine,
                registry,
                path,
                image[1],
                store,
                stop=lambda: failed.is_set() or stop(),
            )
        except BaseException:
            failed.set()
            raise

    # One thread per platform: compressing their layers (zlib releases the GIL) overlaps.
    with ThreadPoolExecutor(max_workers=len(platforms)) as pool:
        digests = list(pool.map(push_one, platforms))
    if len(digests) == 1:
        return digests[0]
    children = [
        platform_manifest(registry, path, image[0], digest)
        for image, digest in zip(platforms, digests, strict=True)
    ]
    body, media_type = index_for(children)
    return registry.put_manifest(path, digest_of(body), body, media_type)
