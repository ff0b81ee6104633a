"""The same commit built in two clean clones, in directories of different names and
depths, each pushed to a repository of its own: the wheels and sdists are byte for byte
the same, and so is everything an image is made from — the install tree of each platform
(bytecode with file names relative to the tree, no `direct_url.json` naming the host
path, every file and directory the commit's time) — and so are the pushed images:

- engine backend, classic store: the builder's config is normalised to the commit's time
  (buildkit.engine.normalise) before the smoke test, so the pushed tag's digest is the same;
- buildx backend, both stores: BuildKit gets SOURCE_DATE_EPOCH, and the Dockerfiles copy a
  root-shaped tree, so every platform's image manifest is the same. (The index around it
  also holds buildx's provenance, a record of one build: its invocation id and times.)

alpha's image has a directory its user owns (/var/lib/alpha, `user_dirs`), as the
orchestrator's state directory: it and its parents come from the context too, so they carry
the commit's time, and the parents stay root's."""

from __future__ import annotations

import hashlib
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.engines import STORES, EngineUnderTest, remove_images, require_buildx
from tests.helpers import GitRepo, copy_fixture, read_report, run_buildkit, step_result
from tests.registries import (
    SHARED_REGISTRY,
    manifest_digest,
    registry_json,
    require_shared_registry,
    top_layer_entries,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow]
SERVICES = ("alpha", "beta")
ATTESTATION = "attestation-manifest"


def tree(root: Path) -> dict[str, tuple[str, int]]:
    """Every file and directory below `root`: its content hash and mtime."""
    found = {}
    for path in sorted(root.rglob("*")):
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        found[path.relative_to(root).as_posix()] = (digest, int(path.lstat().st_mtime))
    return found


def clone(source: GitRepo, target: Path) -> GitRepo:
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "clone", "-q", str(source.path), str(target)], check=True, timeout=60)
    return GitRepo(target)


def image_manifests(path: str, tag: str) -> dict[str, str]:
    """platform -> digest of each image (not attestation) manifest the tag names."""
    index = registry_json(path, tag)
    if "manifests" not in index:
        return {"": manifest_digest(SHARED_REGISTRY, path, tag)}
    return {
        f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"]
        for m in index["manifests"]
        if (m.get("annotations") or {}).get("vnd.docker.reference.type") != ATTESTATION
    }


def config_created(path: str, manifest: str) -> str:
    config = registry_json(path, manifest)["config"]["digest"]
    return str(registry_json(path, config, "blobs")["created"])


def assert_user_dir_at_the_commit_time(clone: GitRepo, where: str, digest: str) -> None:
    """alpha's /var/lib/alpha is its user's, /var and /var/lib root's, all three with the
    commit's time, in the two layers the Dockerfile's COPYs make."""
    epoch = int(clone.git("log", "-1", "--format=%ct"))
    entries = top_layer_entries(f"{where.split('/', 1)[1]}/alpha", digest, 2)
    wanted = ("var", "var/lib", "var/lib/alpha")
    found = {name: entries[name] for name in wanted if name in entries}
    assert {name: (e.uid, e.mode, e.mtime) for name, e in found.items()} == {
        "var": (0, 0o755, epoch),
        "var/lib": (0, 0o755, epoch),
        "var/lib/alpha": (10001, 0o755, epoch),
    }


def build_in_two_clones(
    engine: EngineUnderTest, backend: str, tmp_path: Path
) -> tuple[list[GitRepo], list[str]]:
    """One commit, cloned twice, built and pushed (linux/amd64) from each clone."""
    require_shared_registry()
    source = copy_fixture("miniproject", tmp_path / "source")
    source.tag("v3.0.0")
    clones = [clone(source, tmp_path / "a"), clone(source, tmp_path / "b" / "deeper" / "clone")]
    wheres = [f"localhost:5000/r{uuid.uuid4().hex[:8]}" for _ in clones]
    for repo, where in zip(clones, wheres, strict=True):
        try:
            result = run_buildkit(
                "build-all", "--skip-tests", "--no-cache", "--image-backend", backend,
                "--platform", "linux/amd64", "-t", "v3.0.0", "-r", where, "-p",
                cwd=repo.path, env={"BUILDKIT_OFFLINE": "1", **engine.env},
            )  # fmt: skip
        finally:
            remove_images(engine, *(f"{where}/{service}" for service in SERVICES))
        assert result.returncode == 0, result.stdout + result.stderr
    return clones, wheres


def assert_same_inputs(clones: list[GitRepo]) -> None:
    first, second = clones
    dists = [sorted(p.name for p in (repo.path / "dist").iterdir()) for repo in clones]
    assert dists[0] == dists[1]
    assert len(dists[0]) == 4  # a wheel and an sdist per service
    for name in dists[0]:
        assert (first.path / "dist" / name).read_bytes() == (
            second.path / "dist" / name
        ).read_bytes()
    for service in SERVICES:
        contexts = [tree(repo.path / "build" / "image-context" / service) for repo in clones]
        assert contexts[0] == contexts[1]  # the trees' directory names included
        assert not [name for name in contexts[0] if name.endswith("direct_url.json")]
        [trees] = (first.path / "build" / "image-context" / service).glob("trees-*")
        assert f"{trees.name}/linux-amd64/opt/{service}" in contexts[0]  # root-shaped
    [alpha] = (first.path / "build" / "image-context" / "alpha").glob("trees-*")
    found = tree(alpha)
    assert "user-owned.tar" in found
    assert "linux-amd64/var" not in found  # the tar holds /var/lib/alpha and its parents


def assert_same_images(clones: list[GitRepo], wheres: list[str]) -> dict[str, dict[str, str]]:
    """Every service's image manifests are the same in both pushes, their configs
    created at the commit's time; returns service -> platform -> digest."""
    commit_time = clones[0].git("log", "-1", "--format=%cI").replace("+00:00", "Z")
    found = {}
    for service in SERVICES:
        paths = [f"{where.split('/', 1)[1]}/{service}" for where in wheres]
        manifests = [image_manifests(path, "v3.0.0") for path in paths]
        assert manifests[0] == manifests[1], service
        for digest in manifests[0].values():
            assert config_created(paths[0], digest).replace("+00:00", "Z") == commit_time
        found[service] = manifests[0]
    for repo in clones:
        image = step_result(read_report(repo), "alpha:image")["artifacts"][0]
        created = image["labels"]["org.opencontainers.image.created"]
        assert created.replace("+00:00", "Z") == commit_time
    return found


def test_the_engine_backend_builds_the_same_image_digests_in_two_clones(
    classic: EngineUnderTest, tmp_path: Path
) -> None:
    clones, wheres = build_in_two_clones(classic, "engine", tmp_path)
    assert_same_inputs(clones)
    images = assert_same_images(clones, wheres)
    for digest in images["alpha"].values():
        assert_user_dir_at_the_commit_time(clones[0], wheres[0], digest)
    for service in SERVICES:  # the whole pushed tag: no attestation around it
        paths = [f"{where.split('/', 1)[1]}/{service}" for where in wheres]
        digests = {manifest_digest(SHARED_REGISTRY, path, "v3.0.0") for path in paths}
        assert len(digests) == 1, service


@pytest.mark.parametrize("store", STORES)
def test_the_buildx_backend_builds_the_same_image_digests_in_two_clones(
    store: str, tmp_path: Path
) -> None:
    clones, wheres = build_in_two_clones(require_buildx(store), "buildx", tmp_path)
    assert_same_inputs(clones)
    images = assert_same_images(clones, wheres)
    assert all(manifests for manifests in images.values())
    for digest in images["alpha"].values():
        assert_user_dir_at_the_commit_time(clones[0], wheres[0], digest)
