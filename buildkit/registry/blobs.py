"""Push an engine image to a registry by digest, leaving no tag: its layers (gzip) and its
config as blobs, then its manifest under its own digest. The engine can push only by tag,
which would leave a tag per platform behind, and the registry API cannot delete tags.

The pushed config is the engine's own config, byte for byte, so the registry's image has
the id that was smoke-tested. Compressed layers are kept in build/blobs/ under their
uncompressed digest (the diff id): a layer shared by images and runs is compressed once,
and the gzip stream is deterministic, so every run pushes the same blob for it.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import tarfile
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from requests.exceptions import RequestException

from buildkit.engine.client import Engine
from buildkit.errors import DockerError, RegistryError
from buildkit.proc import Cancelled
from buildkit.registry.client import RegistryClient, digest_of

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_MEDIA = "application/vnd.docker.container.image.v1+json"
LAYER_MEDIA = "application/vnd.docker.image.rootfs.diff.tar.gzip"
CHUNK = 1 << 20
COMPRESS_LEVEL = 6  # what the engine's own push uses
MAX_CONFIG = 16 << 20

_layer_locks: dict[str, threading.Lock] = {}
_locks_lock = threading.Lock()


@dataclass(frozen=True)
class Blob:
    digest: str
    size: int


def layer_lock(diff_id: str) -> threading.Lock:
    """One compression of a layer at a time: the services' images share their base."""
    with _locks_lock:
        return _layer_locks.setdefault(diff_id, threading.Lock())


def never() -> bool:
    return False


def check(stop: Callable[[], bool]) -> None:
    if stop():
        raise Cancelled("the push was stopped (another step failed, or Ctrl-C)")


def file_chunks(path: Path, stop: Callable[[], bool] = never) -> Callable[[], Iterable[bytes]]:
    def chunks() -> Iterator[bytes]:
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                check(stop)
                yield chunk

    return chunks


class LayerStore:
    """build/blobs/<diff id hex>.tar.gz and .json ({digest, size} of the gzip stream)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def file(self, diff_id: str) -> Path:
        return self.root / f"{diff_id.removeprefix('sha256:')}.tar.gz"

    def record(self, diff_id: str) -> Path:
        return self.root / f"{diff_id.removeprefix('sha256:')}.json"

    def known(self, diff_id: str) -> Blob | None:
        try:
            data = json.loads(self.record(diff_id).read_text())
            blob = Blob(str(data["digest"]), int(data["size"]))
            intact = self.file(diff_id).stat().st_size == blob.size
        except (OSError, ValueError, KeyError):
            return None
        return blob if intact else None

    def forget(self, diff_id: str) -> None:
        self.record(diff_id).unlink(missing_ok=True)
        self.file(diff_id).unlink(missing_ok=True)

    def add(self, diff_id: str, layer: Path, stop: Callable[[], bool] = never) -> Blob:
        """Compress `layer` (the uncompressed tar whose digest is `diff_id`) into the store."""
        self.root.mkdir(parents=True, exist_ok=True)
        hasher = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".layer-")
        try:
            with os.fdopen(fd, "wb") as raw, layer.open("rb") as source:
                sink = HashingWriter(raw, hasher)
                out = gzip.GzipFile(
                    fileobj=sink,
                    mode="wb",
                    compresslevel=COMPRESS_LEVEL,
                    mtime=0,
                )
                with out:
                    while chunk := source.read(CHUNK):
                        check(stop)
                        out.write(chunk)
            blob = Blob(f"sha256:{hasher.hexdigest()}", Path(tmp).stat().st_size)
            os.replace(tmp, self.file(diff_id))
        finally:
            Path(tmp).unlink(missing_ok=True)
        self.record(diff_id).write_text(json.dumps({"digest": blob.digest, "size": blob.size}))
        return blob


class HashingWriter:
    """A binary sink for GzipFile that hashes what it passes on."""

    def __init__(self, raw: IO[bytes], hasher: hashlib._Hash) -> None:
        self.raw = raw
        self.hasher = hasher

    def write(self, data: bytes) -> int:
        self.hasher.update(data)
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()


class ChunkReader:
    """A file-like view of the engine's `docker save` stream, for tarfile's stream mode
    (which reads 10 KiB at a time: each read copies only what it returns)."""

    def __init__(self, chunks: Iterator[bytes], stop: Callable[[], bool] = never) -> None:
        self.chunks = chunks
        self.stop = stop
        self.chunk = b""
        self.offset = 0

    def read(self, size: int = -1) -> bytes:
        check(self.stop)
        parts = []
        wanted = size
        while wanted != 0:
            if self.offset >= len(self.chunk):
                self.chunk, self.offset = next(self.chunks, b""), 0
                if not self.chunk:
                    break
            end = len(self.chunk) if wanted < 0 else min(len(self.chunk), self.offset + wanted)
            parts.append(self.chunk[self.offset : end])
            if wanted > 0:
                wanted -= end - self.offset
            self.offset = end
        return b"".join(parts)


def export(
    engine: Engine,
    image_id: str,
    diff_ids: list[str],
    store: LayerStore,
    stop: Callable[[], bool] = never,
) -> bytes:
    """Read the image out of the engine: every layer the store lacks goes into it; return
    the config's exact bytes. Files are recognised by their digest, not their names."""
    try:
        config = read_export(engine, image_id, diff_ids, store, stop)
    except (OSError, tarfile.TarError, RequestException) as exc:
        raise DockerError(
            f"exporting image {image_id[:19]} for a push by digest failed: {exc}",
            hint="check the space under build/blobs (deleting it is safe), then push again",
        ) from exc
    if not config:
        raise DockerError(
            f"the engine's export of {image_id[:19]} holds no config",
            hint="an engine with the containerd image store exports differently: use "
            "--image-backend buildx there",
        )
    absent = [diff_id for diff_id in diff_ids if store.known(diff_id) is None]
    if absent:
        raise DockerError(f"the engine's export of {image_id[:19]} lacks layers {absent}")
    return config


def read_export(
    engine: Engine,
    image_id: str,
    diff_ids: list[str],
    store: LayerStore,
    stop: Callable[[], bool],
) -> bytes:
    missing = {diff_id for diff_id in diff_ids if store.known(diff_id) is None}
    config = b""
    scratch = store.root / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    with (
        contextlib.closing(engine.save(image_id)) as chunks,
        tarfile.open(fileobj=ChunkReader(chunks, stop), mode="r|") as tar,  # type: ignore[call-overload]
    ):
        for member in tar:
            if config and not missing:
                break  # nothing left to look for: stop reading the export
            source = tar.extractfile(member) if member.isfile() else None
            if source is None:
                continue
            data = source.read() if member.size < CHUNK else b""
            if data and digest_of(data) == image_id:
                config = data
                continue
            if not missing:
                if not config and CHUNK <= member.size <= MAX_CONFIG:
                    data = source.read()  # might be an unusually large config
                    config = data if digest_of(data) == image_id else b""
                continue
            digest, spooled = spool(source, data, scratch)
            try:
                if digest == image_id:  # a config of a megabyte or more
                    config = spooled.read_bytes()
                    continue
                with layer_lock(digest):
                    if digest in missing and store.known(digest) is None:
                        store.add(digest, spooled, stop)
                missing.discard(digest)
            finally:
                spooled.unlink(missing_ok=True)
    return config


def spool(source: IO[bytes], head: bytes, scratch: Path) -> tuple[str, Path]:
    """Copy a tar member to a scratch file, returning its digest and the file."""
    hasher = hashlib.sha256(head)
    fd, name = tempfile.mkstemp(dir=scratch, prefix=".member-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(head)
            while chunk := source.read(CHUNK):
                hasher.update(chunk)
                out.write(chunk)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return f"sha256:{hasher.hexdigest()}", Path(name)


def push_by_digest(
    engine: Engine,
    registry: RegistryClient,
    path: str,
    image_id: str,
    store: LayerStore,
    *,
    stop: Callable[[], bool] = never,
) -> str:
    """Put the engine's image `image_id` into repository `path`; return its manifest digest.
    `stop` is asked between chunks; when it says so, Cancelled is raised."""
    image = engine.image(image_id)
    if image is None:
        raise DockerError(f"image {image_id[:19]} is no longer in the engine; build it again")
    diff_ids = list(image.diff_ids)
    config = export(engine, image_id, diff_ids, store, stop)
    layers = []
    for diff_id in diff_ids:
        blob = store.known(diff_id)
        assert blob is not None  # export() made sure
        if not registry.has_blob(path, blob.digest):
            upload_layer(registry, path, diff_id, blob, store=store, stop=stop)
        layers.append({"mediaType": LAYER_MEDIA, "size": blob.size, "digest": blob.digest})
    if not registry.has_blob(path, image_id):
        registry.upload_blob(path, image_id, len(config), lambda: [config])
    manifest = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": CONFIG_MEDIA, "size": len(config), "digest": image_id},
        "layers": layers,
    }
    body = json.dumps(manifest, indent=3).encode()
    return registry.put_manifest(path, digest_of(body), body, DOCKER_MANIFEST)


def upload_layer(
    registry: RegistryClient,
    path: str,
    diff_id: str,
    blob: Blob,
    *,
    store: LayerStore,
    stop: Callable[[], bool],
) -> None:
    try:
        chunks = file_chunks(store.file(diff_id), stop)
        registry.upload_blob(path, blob.digest, blob.size, chunks)
    except RegistryError as exc:
        if "DIGEST_INVALID" not in exc.message:
            raise
        store.forget(diff_id)  # the file no longer matches its record
        raise RegistryError(
            exc.message, hint="a damaged layer in build/blobs was dropped: push again"
        ) from exc
