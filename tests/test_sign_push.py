"""`-p --sign`: each pushed digest is signed with the key, its SBOM (read back from the image
in the registry) and SLSA provenance are attached, and the push stage runs `verify` on it
— with both image backends (the engine's on the classic store, buildx's on the containerd
store), real cosign and the local registry. A consumer's `python -m buildkit verify`
then accepts the tag with the public key alone."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from buildkit.engine.client import CLASSIC_STORE, CONTAINERD_STORE
from tests.cosign_keys import make_keys
from tests.engines import require_buildx
from tests.helpers import (
    GitRepo,
    copy_fixture,
    read_report,
    run_buildkit,
    step_result,
)
from tests.registries import require_shared_registry

pytestmark = [pytest.mark.docker, pytest.mark.registry, pytest.mark.slow]
BACKENDS = {"engine": CLASSIC_STORE, "buildx": CONTAINERD_STORE}


@pytest.fixture
def key(tmp_path: Path) -> Path:
    return make_keys(tmp_path / "keys").private


@pytest.fixture
def mini(tmp_path: Path) -> GitRepo:
    repo = copy_fixture("miniproject", tmp_path / "mini")
    repo.tag("v3.0.0")
    return repo


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_a_signed_push_is_verified_and_carries_its_sbom(
    backend: str, key: Path, mini: GitRepo, tmp_path: Path
) -> None:
    engine = require_buildx(BACKENDS[backend])
    where = f"localhost:5000/s{uuid.uuid4().hex[:8]}"
    require_shared_registry()
    env = {"BUILDKIT_OFFLINE": "1", "COSIGN_PASSWORD": "", **engine.env}
    result = run_buildkit(
        "build-all", "--skip-tests", "--services", "alpha", "--image-backend", backend,
        "-t", "v3.0.0", "-r", where, "-p", "--platform", "linux/amd64",
        "--sign", "--sign-key", str(key),
        cwd=mini.path, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    push = step_result(read_report(mini), "alpha:push")["artifacts"][0]
    signed = push["signed"]
    assert signed["verified"] is True
    assert [line.split()[:2] for line in signed["verify"]] == [
        ["ok", "resolve"],
        ["ok", "signature"],
        ["ok", "sbom"],
        ["ok", "provenance"],
    ]
    assert signed["sbom"] == push["sbom"]  # the one every push writes, now attached
    sbom = json.loads((mini.path / signed["sbom"]).read_text())
    assert sbom["metadata"]["component"]["version"] == push["digest"]
    refs = {component["bom-ref"] for component in sbom["components"]}
    assert any(ref.startswith("wheel:mini_alpha-3.0.0-") for ref in refs), sorted(refs)[:5]
    assert any(ref.startswith("deb:python3") for ref in refs)  # the base image's dpkg status
    public = mini.path / signed["public_key"]
    if backend == "buildx":  # buildx's own provenance is attached too, signed by the key
        assert len(signed["buildx_provenance"]) == 1  # one platform
        attached = subprocess.run(
            ["cosign", "verify-attestation", "--key", str(public), "--insecure-ignore-tlog",
             "--type", "slsaprovenance", f"{where}/alpha@{push['digest']}"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert attached.returncode == 0, attached.stderr
    else:
        assert signed["buildx_provenance"] == []
    commit = mini.git("rev-parse", "HEAD")
    consumer = run_buildkit(
        "verify", f"{where}/alpha:v3.0.0", "--key", str(public),
        cwd=tmp_path, env=engine.env,
    )  # fmt: skip
    assert consumer.returncode == 0, consumer.stdout + consumer.stderr
    assert f"built from commit {commit}" in consumer.stdout


def test_sign_without_a_key_names_the_option_and_the_fix(mini: GitRepo) -> None:
    result = run_buildkit(
        "images", "-p", "--sign", "-r", "localhost:5000/none", cwd=mini.path,
        env={"BUILDKIT_SIGN_KEY": ""},
    )  # fmt: skip
    assert result.returncode == 2
    assert "--sign needs a cosign private key: --sign-key or BUILDKIT_SIGN_KEY" in result.stderr
    assert "cosign generate-key-pair" in result.stderr


def test_sign_without_push_is_a_usage_error(mini: GitRepo, tmp_path: Path) -> None:
    key = tmp_path / "cosign.key"
    key.write_text("unused")
    result = run_buildkit("images", "--sign", "--sign-key", str(key), cwd=mini.path)
    assert result.returncode == 2
    assert "--sign without --push" in result.stderr


def test_a_push_whose_signing_fails_moves_no_tag(key: Path, mini: GitRepo) -> None:
    """The image reaches the registry by digest, cosign cannot sign it (the key's password
    is wrong), and the stage fails with no tag naming the unsigned image."""
    engine = require_buildx(CLASSIC_STORE)
    require_shared_registry()
    where = f"localhost:5000/s{uuid.uuid4().hex[:8]}"
    result = run_buildkit(
        "build-all", "--skip-tests", "--services", "alpha", "--image-backend", "engine",
        "-t", "v3.0.0", "-r", where, "-p", "--platform", "linux/amd64",
        "--sign", "--sign-key", str(key),
        cwd=mini.path, env={"BUILDKIT_OFFLINE": "1", "COSIGN_PASSWORD": "wrong", **engine.env},
    )  # fmt: skip
    assert result.returncode != 0, result.stdout
    assert step_result(read_report(mini), "alpha:push")["status"] == "failed"
    tag = httpx.get(
        f"http://127.0.0.1:5000/v2/{where.split('/', 1)[1]}/alpha/manifests/v3.0.0",
        headers={"Accept": "application/vnd.oci.image.index.v1+json, "
                           "application/vnd.oci.image.manifest.v1+json, "
                           "application/vnd.docker.distribution.manifest.v2+json"},
        timeout=30,
    )  # fmt: skip
    assert tag.status_code == 404, tag.text
