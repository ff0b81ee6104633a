"""`python -m buildkit verify REF --key cosign.pub` against the local registry, with real
cosign signatures and attestations (no transparency log: these machines reach none).

A signed image with its SBOM and provenance passes, one line per check; a tag moved to
another image, an unsigned image, a signature by another key, an SBOM written for another
digest and provenance of another commit are each refused by their own line, exit 1."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from buildkit.proc import Runner
from buildkit.registry.client import RegistryClient, digest_of
from buildkit.supplychain.cosign import PROVENANCE, SBOM, Cosign
from buildkit.supplychain.sbom import (
    DebianPackage,
    ImageContents,
    PlatformContents,
    PythonPackage,
    WheelFile,
    cyclonedx,
)
from buildkit.supplychain.statements import BuildFacts, provenance
from tests.cosign_keys import Keys, make_keys
from tests.helpers import ROOT, run_buildkit
from tests.registries import require_shared_registry

COMMIT = "0123456789abcdef0123456789abcdef01234567"
OTHER_COMMIT = "fedcba9876543210fedcba9876543210fedcba98"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
NO_PASSWORD = {"COSIGN_PASSWORD": ""}


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    require_shared_registry()
    return make_keys(tmp_path / "keys")


@pytest.fixture
def repository() -> str:
    return f"buildkit-tests/verify-{uuid.uuid4().hex[:10]}"


def push_image(path: str, tag: str, revision: str) -> str:
    """A one-platform image (empty, config with the revision label) under `tag`; its digest."""
    config = json.dumps(
        {
            "os": "linux",
            "architecture": "amd64",
            "config": {"Labels": {"org.opencontainers.image.revision": revision}},
            "rootfs": {"type": "layers", "diff_ids": []},
        }
    ).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": digest_of(config),
            "size": len(config),
        },
        "layers": [],
    }
    with RegistryClient("127.0.0.1:5000") as client:
        client.upload_blob(path, digest_of(config), len(config), lambda: [config])
        return client.put_manifest(path, tag, json.dumps(manifest).encode(), OCI_MANIFEST)


def sbom_of(repository: str, digest: str) -> str:
    return cyclonedx(
        ImageContents(
            repository=repository,
            digest=digest,
            wheel=WheelFile("toolman", "1.2.3", "toolman-1.2.3-py3-none-any.whl", "ab" * 32),
            platforms=(
                PlatformContents(
                    "linux/amd64",
                    (PythonPackage("anyio", "4.16.0", "cd" * 32),),
                    (DebianPackage("python3.11", "3.11.2-6", "amd64"),),
                ),
            ),
        )
    )


def provenance_of(repository: str, digest: str, commit: str) -> str:
    facts = BuildFacts(
        repository, digest, "https://github.com/5dlabs/platform", commit, "v1.2.3", "engine",
        "https://github.com/5dlabs/platform/buildkit",
    )  # fmt: skip
    return provenance(facts)


def publish(
    tmp_path: Path,
    keys: Keys,
    image: str,
    *,
    sign: bool = True,
    sbom: str | None = None,
    prov: str | None = None,
) -> None:
    """Sign `image` (repository@digest) and attach the SBOM and provenance, as --sign does."""
    cosign = Cosign(Runner(), env=NO_PASSWORD)
    if sign:
        cosign.sign(image, str(keys.private))
    for kind, text in ((SBOM, sbom), (PROVENANCE, prov)):
        if text is not None:
            predicate = tmp_path / f"{kind}-{uuid.uuid4().hex[:6]}.json"
            predicate.write_text(text)
            cosign.attest(image, str(keys.private), predicate, kind)


def released(
    tmp_path: Path,
    keys: Keys,
    repository: str,
    *,
    sign: bool = True,
    sbom_about: str = "",
    built_from: str = COMMIT,
) -> tuple[str, str]:
    """An image of COMMIT pushed as :v1, signed (unless not `sign`), with an SBOM (of the
    digest `sbom_about`, else its own) and provenance (naming `built_from`) attached:
    (name, digest)."""
    name = f"127.0.0.1:5000/{repository}"
    digest = push_image(repository, "v1", COMMIT)
    publish(
        tmp_path,
        keys,
        f"{name}@{digest}",
        sign=sign,
        sbom=sbom_of(name, sbom_about or digest),
        prov=provenance_of(name, digest, built_from),
    )
    return name, digest


def verify(tmp_path: Path, ref: str, key: Path) -> subprocess.CompletedProcess[str]:
    return run_buildkit("verify", ref, "--key", str(key), cwd=tmp_path, timeout=300)


def line(output: str, check: str) -> str:
    return next(text for text in output.splitlines() if text[5:].startswith(check))


@pytest.mark.registry
def test_a_signed_and_attested_image_is_verified(
    tmp_path: Path, keys: Keys, repository: str
) -> None:
    name, digest = released(tmp_path, keys, repository)
    result = verify(tmp_path, f"{name}:v1", keys.public)
    assert result.returncode == 0, result.stdout + result.stderr
    assert line(result.stdout, "resolve").startswith("ok")
    assert digest in line(result.stdout, "resolve")
    assert line(result.stdout, "signature").startswith("ok")
    assert line(result.stdout, "sbom") == f"ok   sbom        CycloneDX, signed, describes {digest}"
    assert COMMIT in line(result.stdout, "provenance")
    assert result.stdout.rstrip().endswith(f"{name}:v1: verified")


@pytest.mark.registry
def test_a_tag_moved_to_another_image_is_refused(
    tmp_path: Path, keys: Keys, repository: str
) -> None:
    name, _ = released(tmp_path, keys, repository)
    tampered = push_image(repository, "v1", OTHER_COMMIT)  # the tag moves to an unsigned image
    result = verify(tmp_path, f"{name}:v1", keys.public)
    assert result.returncode == 1
    assert tampered in line(result.stdout, "resolve")
    assert line(result.stdout, "signature").startswith("FAIL signature   no signature by")
    assert "NOT verified" in result.stdout


@pytest.mark.registry
def test_an_unsigned_image_is_refused(tmp_path: Path, keys: Keys, repository: str) -> None:
    name, _ = released(tmp_path, keys, repository, sign=False)
    result = verify(tmp_path, f"{name}:v1", keys.public)
    assert result.returncode == 1
    assert line(result.stdout, "signature").startswith("FAIL")
    assert line(result.stdout, "sbom").startswith("ok")  # the attestations alone do not pass


@pytest.mark.registry
def test_a_signature_by_another_key_is_refused(tmp_path: Path, keys: Keys, repository: str) -> None:
    name, _ = released(tmp_path, keys, repository)
    other = make_keys(tmp_path / "other")
    result = verify(tmp_path, f"{name}:v1", other.public)
    assert result.returncode == 1
    for check in ("signature", "sbom", "provenance"):
        assert line(result.stdout, check).startswith("FAIL"), result.stdout
    assert f"no signature by {other.public} verifies" in line(result.stdout, "signature")


@pytest.mark.registry
def test_an_sbom_written_for_another_digest_is_refused(
    tmp_path: Path, keys: Keys, repository: str
) -> None:
    elsewhere = push_image(repository, "old", OTHER_COMMIT)
    name, digest = released(tmp_path, keys, repository, sbom_about=elsewhere)
    result = verify(tmp_path, f"{name}:v1", keys.public)
    assert result.returncode == 1
    assert line(result.stdout, "sbom") == (
        f"FAIL sbom        the SBOM describes {elsewhere}, not this image {digest}"
    )
    assert line(result.stdout, "signature").startswith("ok")


@pytest.mark.registry
def test_provenance_of_another_commit_is_refused(
    tmp_path: Path, keys: Keys, repository: str
) -> None:
    name, _ = released(tmp_path, keys, repository, built_from=OTHER_COMMIT)
    result = verify(tmp_path, f"{name}:v1", keys.public)
    assert result.returncode == 1
    assert line(result.stdout, "provenance") == (
        f"FAIL provenance  built from {OTHER_COMMIT}, but the image says {COMMIT}"
    )


def test_a_malformed_reference_is_a_usage_error(tmp_path: Path) -> None:
    key = tmp_path / "cosign.pub"
    key.write_text("not used\n")
    result = verify(tmp_path, "127.0.0.1:5000/Bad Name:v1", key)
    assert result.returncode == 2
    assert "REF" in result.stderr
    assert "usage: python -m buildkit verify" in result.stderr


def test_a_key_variable_that_is_not_set_is_a_usage_error(tmp_path: Path) -> None:
    """`--key env://VAR` with VAR unset names the variable before cosign runs, instead of
    three cosign failures that read like a bad image."""
    result = run_buildkit(
        "verify", "127.0.0.1:5000/app:v1", "--key", "env://BUILDKIT_TEST_UNSET_KEY",
        cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert "BUILDKIT_TEST_UNSET_KEY is not set" in result.stderr
    assert "resolve" not in result.stdout


def test_release_tools_leave_an_installed_cosign_alone(tmp_path: Path) -> None:
    make_keys(tmp_path / "keys")  # cosign must be there (ci/prepare-machine.sh installs it)
    result = subprocess.run(
        ["bash", str(ROOT / "ci" / "release-tools.sh")],
        env={**os.environ, "BUILDKIT_MACHINE_DIR": str(tmp_path)},  # cosign wherever it is
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "is installed" in result.stderr
