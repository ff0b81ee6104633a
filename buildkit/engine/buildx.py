"""The buildx seam: one `docker buildx bake` invocation builds every image of a run, for
every platform, in parallel, and pushes each as one index. The bake file is generated
from the config (pure functions below, so the invocation is testable without buildx);
digests are read back from --metadata-file."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from buildkit.errors import StageFailed, ToolMissingError
from buildkit.proc import Runner

BUILDX_MISSING_HINT = (
    "install the buildx plugin (https://docs.docker.com/build/install-buildx/), or use "
    "--image-backend engine"
)


@dataclass(frozen=True)
class BakeTarget:
    name: str  # bake target names: letters, digits, - and _
    context: Path
    platforms: tuple[str, ...]
    tags: tuple[str, ...]
    labels: Mapping[str, str]
    args: Mapping[str, str]
    cache_ref: str = ""  # a registry ref for cache-from/cache-to, or ""


@dataclass(frozen=True)
class BakeRequest:
    targets: tuple[BakeTarget, ...]
    push: bool
    load: bool = False
    no_cache: bool = False
    builder: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Builder:
    """What `docker buildx inspect` says of a builder."""

    name: str
    driver: str  # docker, docker-container, remote, kubernetes
    store: str = ""  # docker driver: the image store of the engine it builds in


def inspect_builder(runner: Runner, builder: str = "") -> Builder | None:
    """The buildx builder `builder` (buildx's current one when ""), or None when buildx or
    that builder does not answer."""
    argv = ["docker", "buildx", "inspect", *(["--builder", builder] if builder else [])]
    try:
        result = runner.call(argv, timeout=60)
    except ToolMissingError:
        return None
    if not result.ok:
        return None
    fields: dict[str, str] = {}
    for line in result.output.splitlines():
        name, _, value = line.partition(":")
        fields.setdefault(name.strip(), value.strip())
    if not fields.get("Driver"):
        return None
    # The engine's BuildKit runs a containerd worker on the containerd image store.
    store = "containerd" if "buildkit.worker.containerd" in result.output else "classic"
    return Builder(fields.get("Name", builder), fields["Driver"], store)


def auto_backend(
    builder: Builder | None, platforms: int, push: bool, cache: bool = False
) -> tuple[str, str]:
    """What `--image-backend auto` takes, and why when it is not buildx. It never picks a
    path that fails: buildx's `docker` driver (an engine's own BuildKit) builds several
    platforms and exports a registry cache only on the containerd image store, and buildx
    loads several platforms into no engine (buildkit refuses that combination), so it must
    push them."""
    if builder is None:
        return "engine", "docker buildx does not answer"
    if platforms > 1 and not push:
        return "engine", "buildx cannot load several platforms into the engine"
    if platforms > 1 and on_classic_engine(builder):
        return "engine", (
            f"builder {builder.name!r} is an engine's own BuildKit on the classic image "
            "store, which builds one platform at a time"
        )
    refused = cache_export_refused(builder, push, cache)
    return ("engine", refused) if refused else ("buildx", "")


def on_classic_engine(builder: Builder) -> bool:
    """The builder is the BuildKit of an engine with the classic image store."""
    return builder.driver == "docker" and builder.store != "containerd"


def cache_export_refused(builder: Builder, push: bool, cache: bool) -> str:
    """Why this bake could not write the registry cache (`buildx_cache = true`, which a
    push exports), or "": the `docker` driver exports no cache on the classic image store
    ("Cache export is not supported for the docker driver")."""
    if not (cache and push and on_classic_engine(builder)):
        return ""
    return (
        f"builder {builder.name!r} is an engine's own BuildKit on the classic image store, "
        "which cannot export the registry cache that `buildx_cache = true` asks for"
    )


def bake_file(request: BakeRequest) -> dict[str, Any]:
    targets: dict[str, Any] = {}
    for target in request.targets:
        spec: dict[str, Any] = {
            "context": str(target.context),
            "dockerfile": "Dockerfile",
            "platforms": list(target.platforms),
            "tags": list(target.tags),
            "labels": dict(target.labels),
            "args": dict(target.args),
        }
        if request.no_cache:
            spec["no-cache"] = True
        if target.cache_ref:
            spec["cache-from"] = [f"type=registry,ref={target.cache_ref}"]
            if request.push:
                spec["cache-to"] = [f"type=registry,ref={target.cache_ref},mode=max"]
        targets[target.name] = spec
    return {
        "group": {"default": {"targets": [target.name for target in request.targets]}},
        "target": targets,
    }


def bake_command(request: BakeRequest, bake_path: Path, metadata_path: Path) -> list[str]:
    argv = ["docker", "buildx", "bake", "--file", str(bake_path),
            "--metadata-file", str(metadata_path), "--progress", "plain"]  # fmt: skip
    if request.builder:
        argv += ["--builder", request.builder]
    if request.push:
        argv.append("--push")
    elif request.load:
        argv.append("--load")
    if request.no_cache:
        argv.append("--no-cache")
    return argv


def digests_from_metadata(metadata: Mapping[str, Any], names: Sequence[str]) -> dict[str, str]:
    """Each target's pushed digest (the index digest for a multi-platform push)."""
    found: dict[str, str] = {}
    for name in names:
        entry = metadata.get(name) or {}
        digest = entry.get("containerimage.digest") or (
            entry.get("containerimage.descriptor") or {}
        ).get("digest")
        if not digest:
            raise StageFailed(f"buildx reported no digest for {name} in its metadata file")
        found[name] = str(digest)
    return found


def bake(
    request: BakeRequest, work_dir: Path, runner: Runner, env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Run the bake (`env` added to its environment, e.g. a DOCKER_CONFIG with the push
    credentials); return target name -> digest (empty digests when not pushing)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    bake_path = work_dir / "docker-bake.json"
    metadata_path = work_dir / "bake-metadata.json"
    bake_path.write_text(json.dumps(bake_file(request), indent=2) + "\n", encoding="utf-8")
    metadata_path.unlink(missing_ok=True)
    result = runner.call(bake_command(request, bake_path, metadata_path), env=env)
    if not result.ok:
        raise StageFailed(
            "docker buildx bake failed", command=result.command, output=result.tail(60)
        )
    if not request.push:
        return {target.name: "" for target in request.targets}
    metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
    return digests_from_metadata(metadata, [target.name for target in request.targets])
