"""The buildx backend for real: buildx 0.13 with the BuildKit of the engine with the
containerd image store (the only store where buildx's `docker` driver builds several
platforms), the local registry, QEMU for the arm64 smoke tests. One `docker buildx bake`
builds every image for both platforms, stages each in the registry under
`staging-<commit>` with a registry cache, every platform is smoke-tested from the
registry, then the tags move and the registry's own API is the judge — provenance
attestations in the index included."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from buildkit.engine import buildx
from buildkit.engine.client import CONTAINERD_STORE
from buildkit.proc import Runner
from tests.engines import EngineUnderTest, require_store
from tests.helpers import GitRepo, copy_fixture, read_report, require, run_buildkit, step_result
from tests.registries import (
    MANIFEST_TYPES,
    SHARED_REGISTRY,
    manifest_digest,
    require_shared_registry,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow]
OFFLINE = {"BUILDKIT_OFFLINE": "1"}
BOTH = "linux/amd64,linux/arm64"


@pytest.fixture(scope="module")
def containerd() -> EngineUnderTest:
    engine = require_store(CONTAINERD_STORE)
    require(
        buildx.inspect_builder(Runner()) is not None,
        "docker buildx does not answer; run `bash ci/prepare-machine.sh`",
    )
    return engine


def registry_json(path: str, reference: str) -> dict[str, Any]:
    response = httpx.get(
        f"http://{SHARED_REGISTRY}/v2/{path}/manifests/{reference}",
        headers={"Accept": ", ".join(MANIFEST_TYPES)},
        timeout=10,
    )
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


@pytest.fixture(scope="module")
def pushed(
    containerd: EngineUnderTest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[GitRepo, str]:
    """The fixture project with the registry cache on, baked and pushed for two platforms."""
    require_shared_registry()
    repo = copy_fixture("miniproject", tmp_path_factory.mktemp("bx") / "mini")
    pyproject = repo.path / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace("[tool.buildkit]\n", "[tool.buildkit]\nbuildx_cache = true\n")
    )
    repo.commit("the registry cache on")
    repo.tag("v3.0.0")
    where = f"localhost:5000/x{uuid.uuid4().hex[:8]}"
    result = run_buildkit(
        "images", "-t", "v3.0.0", "-r", where, "-p", "--platform", BOTH,
        cwd=repo.path, env={**OFFLINE, **containerd.env},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return repo, where


def test_auto_takes_buildx_and_one_bake_builds_every_image(pushed: tuple[GitRepo, str]) -> None:
    repo, _ = pushed
    data = read_report(repo)
    assert data["options"]["image_backend"] == "buildx"
    bake = (repo.path / "build" / "buildx" / "docker-bake.json").read_text()
    assert '"alpha"' in bake
    assert '"beta"' in bake
    for service in ("alpha", "beta"):
        image = step_result(data, f"{service}:image")
        assert image["artifacts"][0]["backend"] == "buildx"
        for version_line in (f"linux/amd64 --version ok (mini-{service} 3.0.0)",
                             f"linux/arm64 --version ok (mini-{service} 3.0.0)"):  # fmt: skip
            assert version_line in image["summary"]  # each platform ran, arm64 under QEMU


def test_staged_then_tagged_and_verified_with_attestations(pushed: tuple[GitRepo, str]) -> None:
    repo, where = pushed
    data = read_report(repo)
    commit = repo.git("rev-parse", "HEAD")
    for service in ("alpha", "beta"):
        path = f"{where.split('/', 1)[1]}/{service}"
        staged = step_result(data, f"{service}:image")["artifacts"][0]["staged"]
        assert staged["ref"].endswith(f"/{service}:staging-{commit[:7]}")
        push = step_result(data, f"{service}:push")["artifacts"][0]
        assert push["verified"] is True
        assert push["digest"] == staged["digest"]
        for tag in ("v3.0.0", "3.0", "latest", f"sha-{commit[:7]}", f"staging-{commit[:7]}"):
            assert manifest_digest(SHARED_REGISTRY, path, tag) == push["digest"]
        index = registry_json(path, "v3.0.0")
        kinds = [
            (m.get("annotations") or {}).get("vnd.docker.reference.type", "image")
            for m in index["manifests"]
        ]
        assert kinds.count("image") == 2
        assert "attestation-manifest" in kinds  # provenance beside the platforms
        assert sorted(push["platforms"]) == ["linux/amd64", "linux/arm64"]


def test_the_registry_cache_is_written_and_read_back(
    containerd: EngineUnderTest, pushed: tuple[GitRepo, str]
) -> None:
    repo, where = pushed
    path = f"{where.split('/', 1)[1]}/alpha"
    cache = registry_json(path, "buildcache")
    assert cache["manifests"]  # BuildKit's cache manifest list
    repo.commit("a new revision", file="CHANGES.txt")
    again = run_buildkit(
        "images", "-t", "v3.0.0", "-r", where, "-p", "--platform", BOTH, "--services", "alpha",
        cwd=repo.path, env={**OFFLINE, **containerd.env},
    )  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    log = (Path(repo.path) / "build" / "logs").glob("*.log")
    text = "\n".join(p.read_text(errors="replace") for p in log)
    assert f"importing cache manifest from {where}/alpha:buildcache" in text
