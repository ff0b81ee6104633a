"""The image and push stages against the real engine and real registries, on the
two-service fixture project (tiny wheels, no dependencies: fast and fully offline)."""

from __future__ import annotations

import json
import shutil
import uuid
import zipfile
from pathlib import Path

import httpx
import pytest

from buildkit.engine.client import Engine
from tests.engines import EngineUnderTest
from tests.helpers import (
    GitRepo,
    artifact_of,
    assert_secret_nowhere,
    copy_fixture,
    read_report,
    run_buildkit,
    step_result,
)
from tests.registries import (
    config_labels,
    manifest_digest,
    private_registry,
    require_shared_registry,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow]
OFFLINE = {"BUILDKIT_OFFLINE": "1"}
ENGINE = ("--image-backend", "engine")  # these tests are about the engine backend


@pytest.fixture
def mini(tmp_path: Path) -> GitRepo:
    repo = copy_fixture("miniproject", tmp_path / "mini")
    repo.tag("v2.3.4")
    return repo


def unique_prefix(address: str) -> str:
    return f"{address.replace('127.0.0.1', 'localhost')}/t{uuid.uuid4().hex[:8]}"


def test_build_push_and_verify_in_the_registry(
    store_engine: EngineUnderTest, mini: GitRepo
) -> None:
    """Both platforms (push_platforms), through the engine backend, on each image store."""
    engine = store_engine.engine
    address = require_shared_registry()
    prefix = unique_prefix(address)
    result = run_buildkit(
        "build-all", *ENGINE, "--skip-tests", "-t", "v2.3.4", "-r", prefix, "-p",
        cwd=mini.path, env={**OFFLINE, **store_engine.env},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    report = read_report(mini)
    commit = mini.git("rev-parse", "HEAD")
    for service in ("alpha", "beta"):
        image = artifact_of(step_result(report, f"{service}:image"), "image")
        assert image["tags"] == [
            f"{prefix}/{service}:{tag}"
            for tag in ("v2.3.4", "2.3.4", "2.3", "2", "latest", f"sha-{commit[:7]}")
        ]
        assert image["size"] > 10_000_000
        assert engine.image(image["id"]) is not None
        pushed = artifact_of(step_result(report, f"{service}:push"), "push")
        assert pushed["verified"] is True
        assert pushed["not_pushed"] == []
        path = f"{prefix.split('/', 1)[1]}/{service}"
        for tag in ("v2.3.4", "2.3", "latest", f"sha-{commit[:7]}"):
            assert manifest_digest(address, path, tag) == pushed["digest"]
        labels = config_labels(address, path, "v2.3.4")
        assert labels["org.opencontainers.image.revision"] == commit
        assert labels["org.opencontainers.image.version"] == "2.3.4"
        assert labels["org.opencontainers.image.title"] == service
        for key in ("created", "source", "licenses", "url", "description"):
            assert f"org.opencontainers.image.{key}" in labels
    smoke = step_result(report, "alpha:image")["summary"]
    assert "--version ok (mini-alpha 2.3.4)" in smoke
    # The smoke test's containers are gone.
    image_ids = {
        artifact_of(step_result(report, f"{s}:image"), "image")["id"] for s in ("alpha", "beta")
    }
    leftovers = [  # attrs, not .image: another container's image may be gone
        c for c in engine.client.containers.list(all=True) if c.attrs.get("Image") in image_ids
    ]
    assert leftovers == []


def test_one_platform_is_pushed_by_digest_then_tagged(
    store_engine: EngineUnderTest, mini: GitRepo
) -> None:
    """The engine's own push reports its digest differently per image store (the
    containerd store's stream carries no digest record): one platform goes through the
    registry API like several, and no tag but the requested ones is left behind."""
    address = require_shared_registry()
    prefix = unique_prefix(address)
    native = store_engine.engine.platform()
    result = run_buildkit(
        "images", *ENGINE, "--services", "alpha", "-t", "v2.3.4", "-r", prefix, "-p",
        "--platform", native, cwd=mini.path, env={**OFFLINE, **store_engine.env},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    report = read_report(mini)
    pushed = artifact_of(step_result(report, "alpha:push"), "push")
    assert pushed["verified"] is True
    assert list(pushed["platforms"]) == [native]
    path = f"{prefix.split('/', 1)[1]}/alpha"
    assert manifest_digest(address, path, "v2.3.4") == pushed["digest"]
    listed = httpx.get(f"http://{address}/v2/{path}/tags/list", timeout=10).json()
    assert sorted(listed["tags"]) == sorted(
        ["v2.3.4", "2.3.4", "2.3", "2", "latest", f"sha-{mini.git('rev-parse', 'HEAD')[:7]}"]
    )
    assert config_labels(address, path, "v2.3.4")["org.opencontainers.image.version"] == "2.3.4"
    # Unsigned, the push still leaves the digest's SBOM in build/ and names it in the report.
    assert pushed["sbom"] == "build/sbom/alpha.cdx.json"
    sbom = json.loads((mini.path / pushed["sbom"]).read_text())
    assert sbom["metadata"]["component"]["version"] == pushed["digest"]
    refs = {component["bom-ref"] for component in sbom["components"]}
    assert any(ref.startswith("wheel:mini_alpha-2.3.4-") for ref in refs), sorted(refs)[:5]


def test_the_image_installs_the_exact_wheel(engine: Engine, mini: GitRepo) -> None:
    result = run_buildkit(
        "build-all",
        *ENGINE,
        "--skip-tests",
        "--services",
        "alpha",
        "-r",
        unique_prefix("localhost:5000"),
        cwd=mini.path,
        env=OFFLINE,
    )
    assert result.returncode == 0, result.stdout
    report = read_report(mini)
    wheel = artifact_of(step_result(report, "alpha:wheel"), "wheel")
    image = artifact_of(step_result(report, "alpha:image"), "image")
    assert image["labels"]["dev.buildkit.wheel-sha256"] == wheel["sha256"]
    # Every file of that very wheel is installed with the hash the wheel's RECORD gives.
    read_record = (
        "import importlib.metadata as m; d = m.distribution('mini-alpha'); "
        "print(d.version); print(d.read_text('RECORD'), end='')"
    )
    output = engine.client.containers.run(
        image["id"], entrypoint=["python3", "-c", read_record], remove=True
    ).decode()
    version, _, record = output.partition("\n")
    assert version == "2.3.4"
    with zipfile.ZipFile(mini.path / wheel["name"]) as archive:
        inside = next(n for n in archive.namelist() if n.endswith(".dist-info/RECORD"))
        files = {line for line in archive.read(inside).decode().splitlines() if ",sha256=" in line}
    assert files
    assert files <= set(record.splitlines())


def test_debug_build_sets_development_mode_in_the_image(engine: Engine, mini: GitRepo) -> None:
    result = run_buildkit(
        "build-all",
        *ENGINE,
        "--skip-tests",
        "--debug",
        "--services",
        "alpha",
        "-r",
        unique_prefix("localhost:5000"),
        cwd=mini.path,
        env=OFFLINE,
    )
    assert result.returncode == 0, result.stdout
    image = artifact_of(step_result(read_report(mini), "alpha:image"), "image")
    attrs = engine.client.api.inspect_image(image["id"])  # type: ignore[no-untyped-call]
    assert "PYTHONDEVMODE=1" in attrs["Config"]["Env"]
    assert "MINI_LOG_LEVEL=debug" in attrs["Config"]["Env"]
    assert image["labels"]["dev.buildkit.build-mode"] == "debug"


def test_a_failing_build_step_is_named_with_its_output(engine: Engine, mini: GitRepo) -> None:
    dockerfile = mini.path / "dockerfiles" / "beta.Dockerfile"
    dockerfile.write_text(
        dockerfile.read_text().replace(
            "USER 10001:10001", "RUN echo the-step-output && exit 3\nUSER 10001:10001"
        )
    )
    mini.commit("break beta's image")
    result = run_buildkit(
        "build-all",
        *ENGINE,
        "--skip-tests",
        "--keep-going",
        "-r",
        unique_prefix("localhost:5000"),
        cwd=mini.path,
        env=OFFLINE,
    )
    assert result.returncode == 1
    assert "failed: beta (image)" in result.stdout
    beta = step_result(read_report(mini), "beta:image")
    assert "RUN echo the-step-output && exit 3" in beta["reason"]
    assert "the-step-output" in beta["output_tail"]
    assert step_result(read_report(mini), "alpha:image")["status"] == "ok"


def test_a_service_that_never_gets_healthy_fails_the_smoke_test(
    engine: Engine, mini: GitRepo
) -> None:
    pyproject = mini.path / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text()
        .replace(
            'dockerfile = "dockerfiles/beta.Dockerfile"',
            'dockerfile = "dockerfiles/beta.Dockerfile"\nport = 8000',
        )
        .replace(
            'registry = "localhost:5000/mini"',
            'registry = "localhost:5000/mini"\nsmoke_timeout = 15',
        )
    )
    mini.commit("beta claims an HTTP port it never serves")
    result = run_buildkit(
        "build-all",
        *ENGINE,
        "--skip-tests",
        "--services",
        "beta",
        "-r",
        unique_prefix("localhost:5000"),
        cwd=mini.path,
        env=OFFLINE,
    )
    assert result.returncode == 1
    beta = step_result(read_report(mini), "beta:image")
    assert beta["status"] == "failed"
    assert "the container exited (code 2) before /health answered" in beta["reason"]
    assert "usage: mini-beta --version" in beta["output_tail"]  # the container's own logs


def as_builder(password: str) -> dict[str, str]:
    """The environment of a push as user `builder` of a private_registry."""
    return {
        **OFFLINE,
        "BUILDKIT_REGISTRY_USERNAME": "builder",
        "BUILDKIT_REGISTRY_PASSWORD": password,
    }


def test_push_with_htpasswd_right_password(engine: Engine, mini: GitRepo, tmp_path: Path) -> None:
    secret = f"pw-{uuid.uuid4().hex}"
    with private_registry(tmp_path / "reg", username="builder", password=secret) as registry:
        prefix = registry.address.replace("127.0.0.1", "localhost") + "/team"
        env = as_builder(secret)
        result = run_buildkit(
            "build-all",
            *ENGINE,
            "--skip-tests",
            "--services",
            "alpha",
            "-t",
            "v2.3.4",
            "-r",
            prefix,
            "-p",
            cwd=mini.path,
            env=env,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        pushed = artifact_of(step_result(read_report(mini), "alpha:push"), "push")
        assert pushed["verified"] is True
        assert (
            manifest_digest(registry.address, "team/alpha", "v2.3.4", auth=("builder", secret))
            == pushed["digest"]
        )
    assert_secret_nowhere(secret, mini, result.stdout + result.stderr)


def test_push_with_htpasswd_wrong_password(engine: Engine, mini: GitRepo, tmp_path: Path) -> None:
    wrong = f"wrong-{uuid.uuid4().hex}"
    with private_registry(tmp_path / "reg", username="builder", password="right") as registry:
        prefix = registry.address.replace("127.0.0.1", "localhost") + "/team"
        env = as_builder(wrong)
        result = run_buildkit(
            "build-all",
            *ENGINE,
            "--skip-tests",
            "-j",
            "1",
            "-t",
            "v2.3.4",
            "-r",
            prefix,
            "-p",
            cwd=mini.path,
            env=env,
        )
    assert result.returncode == 7  # the registry's refusal, not a failed stage
    report = read_report(mini)
    alpha = step_result(report, "alpha:push")
    assert alpha["status"] == "failed"
    assert f"registry {prefix.split('/')[0]} refused the credentials" in alpha["reason"]
    assert "docker login" in alpha["reason"]
    assert not list((mini.path / "build").glob("blobs/*.tar.gz"))  # refused before any work
    assert artifact_of(alpha, "push")["not_pushed"] == [
        f"{prefix}/alpha:{t}"
        for t in (
            "v2.3.4",
            "2.3.4",
            "2.3",
            "2",
            "latest",
            f"sha-{mini.git('rev-parse', 'HEAD')[:7]}",
        )
    ]
    assert step_result(report, "beta:push")["status"] == "skipped"  # stopped: never pushed
    assert "failed: alpha (push)" in result.stdout
    assert_secret_nowhere(wrong, mini, result.stdout + result.stderr)


def test_unreachable_registry_fails_and_marks_nothing_pushed(engine: Engine, mini: GitRepo) -> None:
    from tests.registries import free_port

    prefix = f"localhost:{free_port()}/nobody"
    result = run_buildkit(
        "build-all",
        *ENGINE,
        "--skip-tests",
        "--services",
        "alpha",
        "-r",
        prefix,
        "-p",
        cwd=mini.path,
        env=OFFLINE,
    )
    assert result.returncode == 7
    push = step_result(read_report(mini), "alpha:push")
    assert push["status"] == "failed"
    assert "connection refused" in push["reason"].lower()
    assert artifact_of(push, "push")["pushed"] == []


def test_missing_base_image_names_it(engine: Engine, mini: GitRepo) -> None:
    require_shared_registry()
    base = f"localhost:5000/missing-{uuid.uuid4().hex[:6]}/python:3.11-slim"
    result = run_buildkit(
        "build-all",
        *ENGINE,
        "--skip-tests",
        "--services",
        "alpha",
        cwd=mini.path,
        env={**OFFLINE, "BUILDKIT_BASE_IMAGE": base},
    )
    assert result.returncode == 6  # the engine could not get it
    reason = step_result(read_report(mini), "alpha:image")["reason"]
    assert f"base image {base!r} for linux/amd64 is not available" in reason
    assert "ci/prepare-machine.sh" in reason


def test_missing_dockerfile_is_named_before_anything_runs(engine: Engine, mini: GitRepo) -> None:
    (mini.path / "dockerfiles" / "alpha.Dockerfile").unlink()
    mini.commit("lose a Dockerfile")
    shutil.rmtree(mini.path / "build", ignore_errors=True)
    result = run_buildkit(
        "build-all", "--skip-tests", "--services", "alpha", cwd=mini.path, env=OFFLINE
    )
    assert result.returncode == 3  # configuration
    assert "[tool.buildkit.services.alpha] dockerfile:" in result.stderr
    assert "alpha.Dockerfile does not exist" in result.stderr
    assert not (mini.path / "build" / "report.json").exists()  # nothing ran
