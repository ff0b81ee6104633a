"""Two-platform images through the engine backend on both image stores (QEMU runs the arm64
smoke tests), the registry's own index as the judge, a failing platform that moves no
tag, and what `--image-backend auto` takes on each store. The buildx backend's own tests
are in test_buildx.py."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from buildkit.engine.client import CONTAINERD_STORE, Engine
from buildkit.errors import DockerError
from tests.engines import EngineUnderTest
from tests.helpers import GitRepo, copy_fixture, read_report, run_buildkit, step_result
from tests.registries import (
    SHARED_REGISTRY,
    manifest_digest,
    require_shared_registry,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow]
OFFLINE = {"BUILDKIT_OFFLINE": "1"}
ENGINE = ("--image-backend", "engine")  # these tests are about the engine backend
BOTH = "linux/amd64,linux/arm64"
LIST_TYPES = ", ".join((
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
))  # fmt: skip


@pytest.fixture
def mini(tmp_path: Path) -> GitRepo:
    repo = copy_fixture("miniproject", tmp_path / "mini")
    repo.tag("v3.0.0")
    return repo


def prefix() -> str:
    require_shared_registry()
    return f"localhost:5000/m{uuid.uuid4().hex[:8]}"


def index_of(path: str, tag: str) -> dict[str, Any]:
    response = httpx.get(
        f"http://{SHARED_REGISTRY}/v2/{path}/manifests/{tag}",
        headers={"Accept": LIST_TYPES},
        timeout=10,
    )
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


def image_manifest_of(path: str, digest: str) -> dict[str, Any]:
    manifest: dict[str, Any] = httpx.get(
        f"http://{SHARED_REGISTRY}/v2/{path}/manifests/{digest}",
        headers={
            "Accept": "application/vnd.docker.distribution.manifest.v2+json, "
            "application/vnd.oci.image.manifest.v1+json"
        },
        timeout=10,
    ).json()
    return manifest


def config_of(path: str, digest: str) -> dict[str, Any]:
    manifest = image_manifest_of(path, digest)
    config: dict[str, Any] = httpx.get(
        f"http://{SHARED_REGISTRY}/v2/{path}/blobs/{manifest['config']['digest']}", timeout=10
    ).json()
    return config


def test_two_platforms_make_one_index_per_image(
    store_engine: EngineUnderTest, mini: GitRepo
) -> None:
    where = prefix()
    result = run_buildkit(
        "build-all",
        *ENGINE,
        "--skip-tests",
        "-t",
        "v3.0.0",
        "-r",
        where,
        "-p",
        "--platform",
        BOTH,
        cwd=mini.path,
        env={**OFFLINE, **store_engine.env},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    data = read_report(mini)
    commit = mini.git("rev-parse", "HEAD")
    for service in ("alpha", "beta"):
        path = f"{where.split('/', 1)[1]}/{service}"
        push = step_result(data, f"{service}:push")["artifacts"][0]
        tags = ["v3.0.0", "3.0.0", "3.0", "3", "latest", f"sha-{commit[:7]}"]
        for tag in tags:
            assert manifest_digest(SHARED_REGISTRY, path, tag) == push["digest"]
        listed = httpx.get(f"http://{SHARED_REGISTRY}/v2/{path}/tags/list", timeout=10).json()
        assert sorted(listed["tags"]) == sorted(tags)  # the platforms went by digest, untagged
        index = index_of(path, "v3.0.0")
        platforms = {
            f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"]
            for m in index["manifests"]
        }
        assert sorted(platforms) == ["linux/amd64", "linux/arm64"]
        assert push["platforms"] == platforms  # the report's per-platform digests
        for platform, digest in platforms.items():
            config = config_of(path, digest)
            assert f"{config['os']}/{config['architecture']}" == platform
            assert config["config"]["Labels"]["org.opencontainers.image.revision"] == commit
        image = step_result(data, f"{service}:image")["artifacts"][0]
        for built in image["platforms"]:  # the registry holds the smoke-tested images
            pushed = platforms[built["platform"]]
            if store_engine.store == CONTAINERD_STORE:  # there an image's id is its manifest's
                assert pushed == built["id"]
            else:  # there it is its config's
                assert image_manifest_of(path, pushed)["config"]["digest"] == built["id"]
        arm = next(p for p in image["platforms"] if p["platform"] == "linux/arm64")
        assert arm["emulated"] is True
        assert f"mini-{service} 3.0.0" in arm["smoke"]  # it ran, under QEMU


def test_a_failing_platform_moves_no_tag(engine: Engine, mini: GitRepo) -> None:
    where = prefix()
    first = run_buildkit(
        "images",
        *ENGINE,
        "-t",
        "v3.0.0",
        "-r",
        where,
        "-p",
        "--platform",
        "linux/amd64",
        "--services",
        "alpha",
        cwd=mini.path,
        env=OFFLINE,
    )
    assert first.returncode == 0, first.stdout
    path = f"{where.split('/', 1)[1]}/alpha"
    released = manifest_digest(SHARED_REGISTRY, path, "v3.0.0")
    # A base image that exists for amd64 only.
    amd64_only = f"{where}/amd64-only-python:3.11"
    base = engine.image("python:3.11-slim")
    assert base is not None
    engine.tag(base.id, amd64_only)
    engine.client.api.push(amd64_only.rsplit(":", 1)[0], tag="3.11")
    engine.client.images.remove(amd64_only)
    base_path = amd64_only.split("/", 1)[1].rsplit(":", 1)[0]
    assert manifest_digest(SHARED_REGISTRY, base_path, "3.11")  # the push arrived
    mini.commit("a new release candidate", file="CHANGES.txt")
    second = run_buildkit(
        "images",
        *ENGINE,
        "-t",
        "v3.0.0",
        "-r",
        where,
        "-p",
        "--platform",
        BOTH,
        "--services",
        "alpha",
        cwd=mini.path,
        env={**OFFLINE, "BUILDKIT_BASE_IMAGE": amd64_only},
    )
    assert second.returncode == 6  # the engine has no arm64 base to build on
    data = read_report(mini)
    image = step_result(data, "alpha:image")
    assert image["status"] == "failed"
    assert "linux/arm64" in image["reason"]
    assert amd64_only in image["reason"]
    assert step_result(data, "alpha:push")["status"] == "skipped"
    assert manifest_digest(SHARED_REGISTRY, path, "v3.0.0") == released  # nothing moved


def test_running_a_platform_the_engine_cannot_emulate_says_how_to_enable_it(
    engine: Engine,
) -> None:
    """An amd64-only image asked to run as arm64 stands in for a missing emulator: the
    engine refuses either way, and the error must carry the fix, not hang."""
    base = engine.image("python:3.11-slim")
    assert base is not None
    local = f"buildkit-test/amd64-only:{uuid.uuid4().hex[:8]}"
    engine.tag(base.id, local)
    try:
        with pytest.raises(DockerError) as caught:
            engine.check_emulation("linux/arm64", local, timeout=60)
    finally:
        engine.client.images.remove(local)
    assert "cannot run linux/arm64 containers" in str(caught.value)
    assert "tonistiigi/binfmt" in str(caught.value)
    assert "ci/prepare-machine.sh" in str(caught.value)


def test_auto_picks_a_backend_that_pushes_two_platforms_on_each_store(
    store_engine: EngineUnderTest, mini: GitRepo
) -> None:
    """buildx's `docker` driver builds several platforms only on the containerd image
    store; on the classic one `auto` must take the engine backend, not fail."""
    where = prefix()
    result = run_buildkit(
        "images", "-t", "v3.0.0", "-r", where, "-p", "--platform", BOTH, "--services", "alpha",
        cwd=mini.path, env={**OFFLINE, **store_engine.env},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    data = read_report(mini)
    image = step_result(data, "alpha:image")["artifacts"][0]
    expected = "buildx" if store_engine.store == CONTAINERD_STORE else "engine"
    assert image["backend"] == expected
    push = step_result(data, "alpha:push")["artifacts"][0]
    assert push["verified"] is True
    assert sorted(push["platforms"]) == ["linux/amd64", "linux/arm64"]
