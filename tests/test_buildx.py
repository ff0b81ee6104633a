"""The buildx backend's release path for real: buildx 0.13 with the BuildKit of the engine
with the containerd image store (the only store where buildx's `docker` driver builds
several platforms), the local registry, QEMU for the arm64 smoke tests. One
`docker buildx bake` builds every image for both platforms and stages each in the
registry under `staging-<commit>`, writing a registry cache; every platform is
smoke-tested from the registry; only then do the tags move, and the registry's own API
is the judge — provenance attestations in the index included. A smoke test that fails
leaves the staging tag and nothing else; a BuildKit that never built the images is
served from the registry cache."""

from __future__ import annotations

import json
import re
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.engines import EngineUnderTest, remove_images
from tests.helpers import (
    GitRepo,
    copy_fixture,
    read_report,
    run_buildkit,
    set_in_project,
    step_result,
)
from tests.registries import (
    SHARED_REGISTRY,
    manifest_digest,
    registry_json,
    require_shared_registry,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow]
OFFLINE = {"BUILDKIT_OFFLINE": "1"}
BOTH = "linux/amd64,linux/arm64"


def tags_of(path: str) -> list[str]:
    """Every tag the registry holds for a repository."""
    response = httpx.get(f"http://{SHARED_REGISTRY}/v2/{path}/tags/list", timeout=10)
    response.raise_for_status()
    return sorted(response.json().get("tags") or [])


def progress(log: str) -> dict[str, list[str]]:
    """BuildKit's plain progress in a log: each step's title -> the lines it printed."""
    titles: dict[str, str] = {}
    lines: dict[str, list[str]] = defaultdict(list)
    for line in log.splitlines():
        found = re.match(r"^#(\d+) (.*)$", line)
        if found is None:
            continue
        number, text = found.groups()
        if number in titles:
            lines[titles[number]].append(text)
        else:
            titles[number] = text
    return lines


@dataclass(frozen=True)
class Pushed:
    repo: GitRepo
    where: str  # the registry prefix
    report: dict[str, Any]
    bake: dict[str, Any]  # the bake file buildkit generated
    metadata: dict[str, Any]  # what buildx wrote to --metadata-file


@pytest.fixture(scope="module")
def pushed(containerd: EngineUnderTest, tmp_path_factory: pytest.TempPathFactory) -> Pushed:
    """The fixture project with the registry cache on, baked and pushed for two platforms.
    Each service carries a build id of its own, so no BuildKit has built its layer before."""
    require_shared_registry()
    repo = copy_fixture("miniproject", tmp_path_factory.mktemp("bx") / "mini")
    for service in ("alpha", "beta"):
        repo.write(f"services/{service}/src/{service}/build_id.py", f"ID = '{uuid.uuid4()}'\n")
    set_in_project(repo, "buildx_cache = true")
    repo.tag("v3.0.0")
    where = f"localhost:5000/x{uuid.uuid4().hex[:8]}"
    result = run_buildkit(
        "images", "-t", "v3.0.0", "-r", where, "-p", "--platform", BOTH,
        cwd=repo.path, env={**OFFLINE, **containerd.env},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    work = repo.path / "build" / "buildx"
    return Pushed(
        repo, where, read_report(repo), json.loads((work / "docker-bake.json").read_text()),
        json.loads((work / "bake-metadata.json").read_text()),
    )  # fmt: skip


def test_auto_takes_buildx_and_one_bake_builds_every_image(pushed: Pushed) -> None:
    repo, where, data, bake = pushed.repo, pushed.where, pushed.report, pushed.bake
    assert data["options"]["image_backend"] == "buildx"
    commit = repo.git("rev-parse", "HEAD")
    assert bake["group"]["default"]["targets"] == ["alpha", "beta"]
    for service in ("alpha", "beta"):
        target = bake["target"][service]
        assert target["platforms"] == ["linux/amd64", "linux/arm64"]
        assert target["tags"] == [f"{where}/{service}:staging-{commit[:7]}"]  # staged only
        cache = f"type=registry,ref={where}/{service}:buildcache"
        assert target["cache-from"] == [cache]
        assert target["cache-to"] == [f"{cache},mode=max"]
        assert target["labels"]["org.opencontainers.image.revision"] == commit
        image = step_result(data, f"{service}:image")
        assert image["artifacts"][0]["backend"] == "buildx"
        staged = image["artifacts"][0]["staged"]
        assert pushed.metadata[service]["containerimage.digest"] == staged["digest"]
        for version_line in (f"linux/amd64 --version ok (mini-{service} 3.0.0)",
                             f"linux/arm64 --version ok (mini-{service} 3.0.0)"):  # fmt: skip
            assert version_line in image["summary"]  # each platform ran, arm64 under QEMU


def test_staged_then_tagged_and_verified_with_attestations(pushed: Pushed) -> None:
    repo, where, data = pushed.repo, pushed.where, pushed.report
    commit = repo.git("rev-parse", "HEAD")
    for service in ("alpha", "beta"):
        path = f"{where.split('/', 1)[1]}/{service}"
        staged = step_result(data, f"{service}:image")["artifacts"][0]["staged"]
        assert staged["ref"] == f"{where}/{service}:staging-{commit[:7]}"
        push = step_result(data, f"{service}:push")["artifacts"][0]
        assert push["verified"] is True
        assert push["digest"] == staged["digest"]
        assert tags_of(path) == sorted(
            ["v3.0.0", "3.0.0", "3.0", "3", "latest", f"sha-{commit[:7]}",
             f"staging-{commit[:7]}", "buildcache"]
        )  # fmt: skip
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


def test_a_buildkit_that_never_built_the_images_is_served_from_the_registry_cache(
    classic: EngineUnderTest, pushed: Pushed
) -> None:
    """The classic-store engine's BuildKit has never seen these layers (each run's build
    id is new, and nothing here prunes the shared engines' caches): building alpha there
    with `buildx_cache = true` (no push: the cache is only read) takes its two layers from the
    cache the containerd-store bake wrote (BuildKit pulls both in the last step), instead of
    running the COPY of the install tree and the ADD of the user's directories."""
    repo, where = pushed.repo, pushed.where
    path = f"{where.split('/', 1)[1]}/alpha"
    cache = registry_json(path, "buildcache")  # BuildKit's cache: its layers, its config
    in_cache = {entry["digest"] for entry in cache["manifests"]}
    result = run_buildkit(
        "images", "--image-backend", "buildx", "--services", "alpha", "-t", "v3.0.0",
        "-r", where, "--platform", "linux/amd64", "--report", "build/classic.json",
        cwd=repo.path, env={**OFFLINE, **classic.env},
    )  # fmt: skip
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        steps = progress((repo.path / "build" / "logs" / "images-bake.log").read_text())
        added = {title: lines for title, lines in steps.items() if "trees-" in title}
        assert [title.split()[1] for title in added] == ["COPY", "ADD"]  # tree, user dirs
        assert [lines[-1] for lines in added.values()] == ["CACHED", "CACHED"], added
        pulled = {
            line.split()[1]
            for lines in added.values()
            for line in lines
            if line.startswith("pulling sha256:")
        }
        assert len(pulled) == 2, added  # both layers came from a registry ...
        assert pulled <= in_cache  # ... out of the registry cache
    finally:
        remove_images(classic, f"{where}/alpha")


def test_a_failed_smoke_test_leaves_only_the_staging_tag(
    containerd: EngineUnderTest, tmp_path: Path
) -> None:
    """Staged push, then tag move: beta's image is pushed under its staging tag by the
    bake, fails its smoke test, and no release tag of it moves; alpha's do (--keep-going)."""
    require_shared_registry()
    repo = copy_fixture("miniproject", tmp_path / "mini")
    pyproject = repo.path / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            'dockerfile = "dockerfiles/beta.Dockerfile"',
            'dockerfile = "dockerfiles/beta.Dockerfile"\nport = 8000',  # it serves none
        )
    )
    set_in_project(repo, "smoke_timeout = 15")
    repo.tag("v3.2.0")
    commit = repo.git("rev-parse", "HEAD")
    where = f"localhost:5000/f{uuid.uuid4().hex[:8]}"
    result = run_buildkit(
        "images", "--image-backend", "buildx", "--keep-going", "-t", "v3.2.0", "-r", where,
        "-p", "--platform", "linux/amd64", cwd=repo.path, env={**OFFLINE, **containerd.env},
    )  # fmt: skip
    remove_images(containerd, f"{where}/alpha", f"{where}/beta")
    assert result.returncode == 1, result.stdout + result.stderr
    report = read_report(repo)
    beta = step_result(report, "beta:image")
    assert beta["status"] == "failed"
    assert "before /health answered" in beta["reason"]
    assert step_result(report, "beta:push")["reason"] == "not run: needs beta:image"
    path = where.split("/", 1)[1]
    assert tags_of(f"{path}/beta") == [f"staging-{commit[:7]}"]
    assert "v3.2.0" in tags_of(f"{path}/alpha")
