"""The buildx backend for real: buildx 0.13 with the BuildKit of the engine with the
containerd image store (the only store where buildx's `docker` driver builds several
platforms), the local registry, QEMU for the arm64 smoke tests. One `docker buildx bake`
builds every image for both platforms, stages each in the registry under
`staging-<commit>` with a registry cache, every platform is smoke-tested from the
registry, then the tags move and the registry's own API is the judge — provenance
attestations in the index included."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from buildkit import pipeline
from buildkit.config import load_project
from buildkit.deps.envs import Envs, uv_binary
from buildkit.engine import buildx
from buildkit.engine.client import CLASSIC_STORE, CONTAINERD_STORE
from buildkit.gitinfo import read_git_info
from buildkit.model import Result, Status, Step
from buildkit.options import Options
from buildkit.proc import Runner
from buildkit.stages.context import Context
from buildkit.stages.image.artifacts import STAGED
from tests.engines import EngineUnderTest, require_store
from tests.helpers import (
    GitRepo,
    artifact_of,
    assert_secret_nowhere,
    copy_fixture,
    read_report,
    require,
    run_buildkit,
    step_result,
)
from tests.registries import (
    MANIFEST_TYPES,
    SHARED_REGISTRY,
    manifest_digest,
    private_registry,
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


@pytest.fixture(scope="module")
def classic() -> EngineUnderTest:
    engine = require_store(CLASSIC_STORE)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DOCKER_HOST", engine.host)
        builder = buildx.inspect_builder(Runner())
    require(builder is not None, "docker buildx does not answer; run `bash ci/prepare-machine.sh`")
    return engine


def with_registry_cache(repo: GitRepo) -> None:
    pyproject = repo.path / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace("[tool.buildkit]\n", "[tool.buildkit]\nbuildx_cache = true\n")
    )
    repo.commit("the registry cache on")


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
    with_registry_cache(repo)
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


def push_as_builder(
    containerd: EngineUnderTest, tmp_path: Path, address: str, password: str
) -> tuple[GitRepo, str, subprocess.CompletedProcess[str]]:
    """A buildx push to `address` as user `builder` with only BUILDKIT_REGISTRY_*: no
    `docker login` (an empty docker config), the temporary directory watched."""
    repo = copy_fixture("miniproject", tmp_path / "mini")
    repo.tag("v3.1.0")
    (tmp_path / "docker-config").mkdir()
    (tmp_path / "tmp").mkdir()
    prefix = address.replace("127.0.0.1", "localhost") + "/team"
    env = {
        **OFFLINE,
        **containerd.env,
        "DOCKER_CONFIG": str(tmp_path / "docker-config"),
        "TMPDIR": str(tmp_path / "tmp"),  # where the bake's own docker config goes
        "BUILDKIT_REGISTRY_USERNAME": "builder",
        "BUILDKIT_REGISTRY_PASSWORD": password,
    }
    result = run_buildkit(
        "images", "--image-backend", "buildx", "-t", "v3.1.0", "-r", prefix, "-p",
        "--platform", "linux/amd64", cwd=repo.path, env=env,
    )  # fmt: skip
    return repo, prefix, result


def test_env_credentials_alone_push_through_buildx(
    containerd: EngineUnderTest, tmp_path: Path
) -> None:
    """BUILDKIT_REGISTRY_USERNAME/PASSWORD are enough for a buildx push (the README says
    so): the bake pushes with them, the smoke tests pull with them, and the docker config
    that carried them to buildx is gone afterwards."""
    secret = f"pw-{uuid.uuid4().hex}"
    with private_registry(tmp_path / "reg", username="builder", password=secret) as registry:
        repo, prefix, result = push_as_builder(containerd, tmp_path, registry.address, secret)
        assert result.returncode == 0, result.stdout + result.stderr
        report = read_report(repo)
        assert report["options"]["image_backend"] == "buildx"
        for service in ("alpha", "beta"):
            pushed = artifact_of(step_result(report, f"{service}:push"), "push")
            assert pushed["verified"] is True
            digest = manifest_digest(
                registry.address, f"team/{service}", "v3.1.0", auth=("builder", secret)
            )
            assert digest == pushed["digest"]
            image = step_result(report, f"{service}:image")
            assert "linux/amd64 --version ok" in image["summary"]  # pulled back and run
    assert list((tmp_path / "tmp").iterdir()) == []  # the bake's docker config is removed
    assert list((tmp_path / "docker-config").glob("config.json")) == []  # no login written
    assert_secret_nowhere(secret, repo, result.stdout + result.stderr)
    remove_images(containerd, f"{prefix}/alpha", f"{prefix}/beta")


def test_a_wrong_password_fails_before_anything_is_built_or_pushed(
    containerd: EngineUnderTest, tmp_path: Path
) -> None:
    wrong = f"wrong-{uuid.uuid4().hex}"
    with private_registry(tmp_path / "reg", username="builder", password="right") as registry:
        repo, prefix, result = push_as_builder(containerd, tmp_path, registry.address, wrong)
        catalog = httpx.get(
            f"http://{registry.address}/v2/_catalog", auth=("builder", "right"), timeout=10
        ).json()
    assert result.returncode == 7, result.stdout + result.stderr  # the registry's refusal
    bake = step_result(read_report(repo), "images:bake")
    assert bake["status"] == "failed"
    assert f"registry {prefix.split('/')[0]} refused the credentials" in bake["reason"]
    assert "BUILDKIT_REGISTRY_USERNAME" in bake["reason"]
    assert not (repo.path / "build" / "buildx" / "docker-bake.json").exists()  # never baked
    assert catalog["repositories"] == []
    assert_secret_nowhere(wrong, repo, result.stdout + result.stderr)


def remove_images(engine: EngineUnderTest, *repositories: str) -> None:
    """The images a test's run left in the engine (pulled back for the smoke tests)."""
    for repository in repositories:
        for image in engine.engine.client.images.list(name=repository):
            engine.engine.client.images.remove(str(image.id), force=True)


def test_auto_takes_the_engine_where_buildx_cannot_export_the_registry_cache(
    classic: EngineUnderTest, tmp_path: Path
) -> None:
    """The classic image store's own BuildKit exports no cache: with `buildx_cache = true`
    and --push, `auto` takes the engine backend there (a bake would fail with "Cache export
    is not supported for the docker driver") and the report says why."""
    require_shared_registry()
    repo = copy_fixture("miniproject", tmp_path / "mini")
    with_registry_cache(repo)
    prefix = f"localhost:5000/c{uuid.uuid4().hex[:8]}"
    result = run_buildkit(
        "images", "--services", "alpha", "-r", prefix, "-p", "--platform",
        classic.engine.platform(), cwd=repo.path, env={**OFFLINE, **classic.env},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    report = read_report(repo)
    assert report["options"]["image_backend"] == "engine"
    [note] = report["notes"]
    assert "the engine backend" in note
    assert "buildx_cache = true" in note
    assert note in " ".join(result.stdout.split())
    assert artifact_of(step_result(report, "alpha:push"), "push")["verified"] is True
    remove_images(classic, f"{prefix}/alpha")


def test_asking_for_buildx_there_fails_before_building_and_names_the_fix(
    classic: EngineUnderTest, tmp_path: Path
) -> None:
    repo = copy_fixture("miniproject", tmp_path / "mini")
    with_registry_cache(repo)
    result = run_buildkit(
        "images", "--image-backend", "buildx", "-r", "localhost:5000/never", "-p",
        "--platform", classic.engine.platform(), cwd=repo.path, env={**OFFLINE, **classic.env},
    )  # fmt: skip
    assert result.returncode == 3, result.stdout + result.stderr
    message = " ".join(result.stderr.split())
    assert "cannot export the registry cache that `buildx_cache = true` asks for" in message
    assert "set `buildx_cache = false` in [tool.buildkit]" in message
    assert "--image-backend engine" in message
    assert not (repo.path / "build" / "report.json").exists()  # nothing ran


def test_the_bake_builds_exactly_the_images_the_plan_has_steps_for(
    classic: EngineUnderTest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Options with no services selected (the API's "all of them") plan an image step for
    every service, and the bake bakes every one of them (it used to bake none)."""
    repo = copy_fixture("miniproject", tmp_path / "mini")
    monkeypatch.setenv("DOCKER_HOST", classic.host)
    project = load_project(repo.path)
    options = Options(
        tag="latest", registry=f"localhost:5000/p{uuid.uuid4().hex[:8]}",
        report=tmp_path / "r.json", offline=True, stages=("wheel", "image"),
        image_backend="buildx", services=(),
    )  # fmt: skip
    steps = pipeline.plan(project, options)
    assert [s.id for s in steps if s.stage == "image"] == ["alpha:image", "beta:image"]
    uv_binary()
    ctx = Context(
        project, options, read_git_info(repo.path), Envs(repo.path / "build", offline=True),
        Runner(), engine=classic.engine, env=os.environ,
    )  # fmt: skip
    try:
        results = {r.id: r for r in pipeline.run(steps, ctx, pipeline.RUNNERS, Quiet())}
    finally:
        remove_images(classic, f"{options.registry}/alpha", f"{options.registry}/beta")
    assert {step: result.status for step, result in results.items()} == {
        step.id: Status.OK for step in steps
    }, {step: result.reason for step, result in results.items()}
    baked = [a.name for a in results["images:bake"].artifacts if a.kind == STAGED]
    assert baked == ["alpha", "beta"]
    bake_file = json.loads((repo.path / "build" / "buildx" / "docker-bake.json").read_text())
    assert bake_file["group"]["default"]["targets"] == ["alpha", "beta"]


class Quiet:
    """The executor's observer, saying nothing."""

    def planned(self, steps: Sequence[Step]) -> None: ...
    def started(self, step: Step) -> None: ...
    def command(self, step: Step, command: str) -> None: ...
    def output(self, step: Step, line: str) -> None: ...
    def finished(self, step: Step, result: Result) -> None: ...
