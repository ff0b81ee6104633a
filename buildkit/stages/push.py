"""push: put the image in the registry, then move the tags, then ask the registry itself.

    engine  -> push each platform's image by digest, with no tag (buildkit.blobs for the
               classic image store, buildkit.oci_export for the containerd one); for
               several platforms assemble the index and push it by digest
    buildx  -> the bake staged the image in the registry already
then, either way, put that manifest under each tag. No tag moves before every platform
is in the registry, and afterwards each tag
must resolve to that digest, holding exactly the requested platforms, each config stating
its architecture and this commit's revision label. The result says exactly which tags
were pushed and which were not."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from buildkit import credentials, reference
from buildkit.blobs import LayerStore, never, push_by_digest
from buildkit.config import Service
from buildkit.credentials import Credentials
from buildkit.docker_engine import CONTAINERD_STORE, Engine
from buildkit.errors import BuildkitError, RegistryError
from buildkit.manifests import index_for, platform_manifest, verify
from buildkit.model import Artifact, Outcome, Result, Status
from buildkit.oci_export import push_oci_export
from buildkit.proc import Cancelled
from buildkit.registry import RegistryClient, digest_of
from buildkit.stages.context import Context


@dataclass
class PushRecord:
    refs: list[str]
    pushed: dict[str, str] = field(default_factory=dict)  # ref -> digest
    platforms: dict[str, str] = field(default_factory=dict)  # platform -> manifest digest
    digest: str = ""
    verified: bool = False

    def artifact(self, name: str) -> Artifact:
        return Artifact(
            kind="push",
            name=name,
            details={
                "digest": self.digest,
                "verified": self.verified,
                "platforms": self.platforms,
                "pushed": [{"ref": ref, "digest": value} for ref, value in self.pushed.items()],
                "not_pushed": [ref for ref in self.refs if ref not in self.pushed],
            },
        )


def tag_of(ref: str) -> str:
    return ref.rsplit(":", 1)[1]


def push_platforms(
    engine: Engine,
    registry: RegistryClient,
    *,
    path: str,
    platforms: list[dict[str, Any]],
    store: LayerStore,
    stop: Callable[[], bool] = never,
) -> str:
    """Every platform's image by digest; the digest of the image (one platform) or of the
    index of them all (several). No tag is touched."""
    # Credentials are proven before minutes go into exporting and compressing layers.
    registry.has_blob(path, str(platforms[0]["id"]))
    failed = threading.Event()  # one platform's failure stops the other's work

    def push_one(image: dict[str, Any]) -> str:
        try:
            if engine.store == CONTAINERD_STORE:
                return push_oci_export(
                    engine,
                    registry,
                    path,
                    str(image["id"]),
                    store.root / "scratch",
                    stop=lambda: failed.is_set() or stop(),
                )
            return push_by_digest(
                engine,
                registry,
                path,
                str(image["id"]),
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
        platform_manifest(registry, path, image["platform"], digest)
        for image, digest in zip(platforms, digests, strict=True)
    ]
    body, media_type = index_for(children)
    return registry.put_manifest(path, digest_of(body), body, media_type)


def promote(registry: RegistryClient, path: str, digest: str, record: PushRecord) -> str:
    """Put the manifest pushed by `digest` under each tag of the record."""
    manifest = registry.manifest(path, digest)
    for ref in record.refs:
        record.pushed[ref] = registry.put_manifest(
            path, tag_of(ref), manifest.body, manifest.media_type
        )
    return manifest.digest


def run(service: Service, ctx: Context) -> Outcome:
    engine = ctx.require_engine()
    image = ctx.artifact_of(f"{service.name}:image", "image").details
    repo = reference.repository(ctx.options.registry, service.image)
    creds: Credentials | None = credentials.resolve(repo.domain, os.environ)
    platforms: list[dict[str, Any]] = image["platforms"]
    record = PushRecord(list(image["tags"]))
    staged = (image.get("staged") or {}).get("digest", "")
    try:
        with RegistryClient(repo.domain, creds) as registry:
            pushed = staged or push_platforms(
                engine,
                registry,
                path=repo.path,
                platforms=platforms,
                store=LayerStore(ctx.build_dir / "blobs"),
                stop=lambda: ctx.runner.cancelled,
            )
            record.digest = promote(registry, repo.path, pushed, record)
            for ref in record.refs:
                found = verify(
                    registry,
                    repo.path,
                    tag_of(ref),
                    digest=record.digest,
                    platforms=[p["platform"] for p in platforms],
                    revision=ctx.git.commit,
                )
            record.platforms = dict(found.platforms)
            record.verified = True
    except Cancelled:
        raise  # the executor reports it as cancelled, not failed
    except BuildkitError as exc:  # the registry's refusal, or an image that cannot be read
        return Outcome(
            Status.FAILED,
            str(exc),
            artifacts=(record.artifact(repo.name),),
            error_code=exc.exit_code,
        )
    ctx.runner.on_output(f"verified {len(record.refs)} tags of {repo.name} at {record.digest}")
    kind = f"index of {len(platforms)} platforms" if len(platforms) > 1 else "image"
    return Outcome(
        Status.OK,
        artifacts=(record.artifact(repo.name),),
        summary=f"{len(record.refs)} tags -> {kind} {record.digest[:19]}…, verified",
    )


def still_valid(service: Service, result: Result, ctx: Context) -> Result | None:
    """A cached push counts only while the registry still resolves every tag to its digest."""
    record = next((a.details for a in result.artifacts if a.kind == "push"), None)
    if not record or not record.get("digest"):
        return None
    repo = reference.repository(ctx.options.registry, service.image)
    try:
        with RegistryClient(repo.domain, credentials.resolve(repo.domain, os.environ)) as registry:
            intact = all(
                registry.manifest(repo.path, tag_of(item["ref"])).digest == item["digest"]
                for item in record.get("pushed", [])
            )
    except RegistryError:
        return None
    return result if intact else None
