"""The buildx backend's push credentials for real: a private registry with htpasswd,
buildx's BuildKit on the engine with the containerd image store, and the credentials in
BUILDKIT_REGISTRY_USERNAME/PASSWORD only — no `docker login` (an empty docker config),
which the README documents as enough for a CI job."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from tests.engines import EngineUnderTest, remove_images
from tests.helpers import (
    GitRepo,
    artifact_of,
    assert_secret_nowhere,
    copy_fixture,
    read_report,
    run_buildkit,
    step_result,
)
from tests.registries import manifest_digest, private_registry

pytestmark = [pytest.mark.docker, pytest.mark.slow]


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
        "BUILDKIT_OFFLINE": "1",
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
    """The bake pushes with them, the smoke tests pull with them, and the docker config
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
    """As the engine backend's push does: the registry's refusal (exit 7), named, with
    the fix, and nothing in the registry."""
    wrong = f"wrong-{uuid.uuid4().hex}"
    with private_registry(tmp_path / "reg", username="builder", password="right") as registry:
        repo, prefix, result = push_as_builder(containerd, tmp_path, registry.address, wrong)
        catalog = httpx.get(
            f"http://{registry.address}/v2/_catalog", auth=("builder", "right"), timeout=10
        ).json()
    assert result.returncode == 7, result.stdout + result.stderr
    bake = step_result(read_report(repo), "images:bake")
    assert bake["status"] == "failed"
    assert f"registry {prefix.split('/')[0]} refused the credentials" in bake["reason"]
    assert "BUILDKIT_REGISTRY_USERNAME" in bake["reason"]
    assert not (repo.path / "build" / "buildx" / "docker-bake.json").exists()  # never baked
    assert catalog["repositories"] == []
    assert_secret_nowhere(wrong, repo, result.stdout + result.stderr)
