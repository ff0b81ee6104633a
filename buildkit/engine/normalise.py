"""Give an image of the engine's classic builder the commit's time instead of the build's.

The classic builder cannot be told a time: it stamps the config's `created` and each new
history entry with the build's, and records the build's containers (`container`,
`container_config`, the intermediate image in `config.Image`) and its own version. Its
layers are the same for the same context (the Dockerfiles copy a tree whose every
directory has the commit's time), so only the config differs between two builds.

`normalise` rewrites that config (times later than SOURCE_DATE_EPOCH clamped to it, the
build-only fields dropped) and loads it into the engine under the same tag, over the same
layers: the image that is smoke-tested and pushed is the normalised one, and its id (the
config's digest) is the same for every build of the same commit.
"""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
from datetime import UTC, datetime
from typing import Any

from buildkit.engine.client import Engine
from buildkit.errors import DockerError
from buildkit.registry.blobs import MAX_CONFIG, ChunkReader
from buildkit.registry.client import digest_of

BUILD_ONLY = ("container", "container_config", "docker_version")


def epoch_time(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def clamp(created: str, epoch: int) -> str:
    """`created` (RFC 3339, UTC as the engine writes it), or the epoch when later (to the
    second: the engine's times carry nanoseconds)."""
    at = epoch_time(epoch)
    return at if created[:19] >= at[:19] else created


def normalised_config(config: bytes, epoch: int) -> bytes:
    """The config with every time later than `epoch` set to it and no build-only field."""
    data: dict[str, Any] = json.loads(config)
    for key in BUILD_ONLY:
        data.pop(key, None)
    if isinstance(data.get("config"), dict):
        data["config"].pop("Image", None)  # the builder's intermediate image
    data["created"] = epoch_time(epoch)
    for entry in data.get("history") or []:
        if isinstance(entry.get("created"), str):
            entry["created"] = clamp(entry["created"], epoch)
    return json.dumps(data, separators=(",", ":")).encode()


def read_config(engine: Engine, image_id: str) -> bytes:
    """The exact bytes of the image's config, out of `docker save`."""
    with (
        contextlib.closing(engine.save(image_id)) as chunks,
        tarfile.open(fileobj=ChunkReader(chunks), mode="r|") as tar,  # type: ignore[call-overload]
    ):
        for member in tar:
            source = tar.extractfile(member) if member.isfile() else None
            if source is None or member.size > MAX_CONFIG:
                continue
            data = source.read()
            if digest_of(data) == image_id:
                return bytes(data)
    raise DockerError(f"the engine's export of {image_id[:19]} holds no config")


def load_archive(config: bytes, diff_ids: tuple[str, ...], tag: str) -> bytes:
    """A `docker load` archive of the config alone: the engine has every layer already, so
    each is named in manifest.json but left out."""
    name = f"{digest_of(config).removeprefix('sha256:')}.json"
    manifest = [{
        "Config": name, "RepoTags": [tag],
        "Layers": [f"{d.removeprefix('sha256:')}/layer.tar" for d in diff_ids],
    }]  # fmt: skip
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for member, data in ((name, config), ("manifest.json", json.dumps(manifest).encode())):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def normalise(engine: Engine, image_id: str, tag: str, epoch: int) -> str:
    """The id of `image_id` with its config normalised, loaded into the engine as `tag`
    (the builder's own image is removed, its parents kept)."""
    image = engine.image(image_id)
    if image is None:
        raise DockerError(f"image {image_id[:19]} is no longer in the engine; build it again")
    config = read_config(engine, image_id)
    fixed = normalised_config(config, epoch)
    if fixed == config:
        return image_id
    engine.load(load_archive(fixed, image.diff_ids, tag))
    loaded = engine.image(tag)
    if loaded is None or loaded.id != digest_of(fixed):
        raise DockerError(f"the engine did not load {tag} as {digest_of(fixed)[:19]}")
    # Its parents stay: they are the builder's layer cache for the next build.
    engine.remove_image(image_id, keep_parents=True)
    return loaded.id
