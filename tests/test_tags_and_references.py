from __future__ import annotations

from pathlib import Path

import pytest

from buildkit.errors import UsageError
from buildkit.registry.reference import check_tag, parse_registry, repository
from buildkit.tags import TagRules, compute_tags, image_version, version_mismatch
from tests.helpers import ROOT, run_buildkit

COMMIT = "abc1234def5678" + "0" * 26
ALL = TagRules(semver=True, sha=True)


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("v1.2.3", ["v1.2.3", "1.2.3", "1.2", "1", "latest", "sha-abc1234"]),
        ("1.2.3", ["1.2.3", "1.2", "1", "latest", "sha-abc1234"]),
        ("v0.4.1", ["v0.4.1", "0.4.1", "0.4", "latest", "sha-abc1234"]),
        ("v2.0.0-rc.1", ["v2.0.0-rc.1", "2.0.0-rc.1", "sha-abc1234"]),
        ("latest", ["latest", "sha-abc1234"]),
        ("test-build", ["test-build", "sha-abc1234"]),
        ("v1.2", ["v1.2", "sha-abc1234"]),
    ],
)
def test_tags_follow_metadata_action(tag: str, expected: list[str]) -> None:
    assert compute_tags(tag, COMMIT, ALL) == expected


def test_without_rules_only_the_given_tag() -> None:
    assert compute_tags("v1.2.3", COMMIT, TagRules()) == ["v1.2.3"]
    assert compute_tags("v1.2.3", "", TagRules(sha=True)) == ["v1.2.3"]


def test_oci_version_label() -> None:
    assert image_version("v1.2.3", "9.9.9.dev1") == "1.2.3"
    assert image_version("latest", "1.2.4.dev3+gabc") == "1.2.4.dev3+gabc"


@pytest.mark.parametrize(
    ("prefix", "domain", "path"),
    [
        ("ghcr.io/5dlabs/platform", "ghcr.io", "5dlabs/platform"),
        ("localhost:5000/platform", "localhost:5000", "platform"),
        ("127.0.0.1:5000", "127.0.0.1:5000", ""),
        ("myorg", "docker.io", "myorg"),
        ("registry.example.com/a/b-c/d__e", "registry.example.com", "a/b-c/d__e"),
    ],
)
def test_valid_registry_prefixes(prefix: str, domain: str, path: str) -> None:
    parsed = parse_registry(prefix)
    assert (parsed.domain, parsed.path) == (domain, path)


@pytest.mark.parametrize(
    ("prefix", "message"),
    [
        ("ghcr.io/5dLabs/platform", "path component '5dLabs' is not allowed"),
        ("ghcr.io/5dlabs/", "is not a registry prefix"),
        ("localhost:99999/x", "port '99999'"),
        ("bad_host.io/x", "'bad_host.io' is not a valid registry host name"),
        ("ghcr.io/a..b", "path component 'a..b'"),
        ("", "is not a registry prefix"),
    ],
)
def test_invalid_registry_prefixes_name_the_value(prefix: str, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(".", r"\.")):
        parse_registry(prefix)


def test_repository_joins_prefix_and_image() -> None:
    repo = repository("localhost:5000/platform", "mcp-wrapper")
    assert repo.name == "localhost:5000/platform/mcp-wrapper"
    assert repo.ref("v1") == "localhost:5000/platform/mcp-wrapper:v1"
    assert repo.is_loopback
    assert repository("myorg", "toolman").name == "myorg/toolman"
    assert not repository("ghcr.io/x", "toolman").is_loopback
    with pytest.raises(UsageError, match="longer than 255"):
        repository("ghcr.io/" + "a" * 250, "toolman")


@pytest.mark.parametrize("tag", ["v1.0.0", "latest", "sha-abc1234", "1.2.3-rc.1", "A_b.c-d"])
def test_valid_tags(tag: str) -> None:
    assert check_tag(tag) == tag


@pytest.mark.parametrize("tag", ["", "-leading", ".dot", "has space", "a:b", "x" * 129, "é"])
def test_invalid_tags(tag: str) -> None:
    with pytest.raises(UsageError, match="is not a valid image tag"):
        check_tag(tag)


def test_invalid_tag_is_refused_before_anything_builds(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    result = run_buildkit("build-all", "-t", "v1:2", "--report", str(report), cwd=ROOT)
    assert result.returncode == 2
    assert "--tag 'v1:2' is not a valid image tag" in result.stderr
    assert not report.exists()


def test_invalid_registry_is_refused_before_anything_builds() -> None:
    result = run_buildkit("build-all", "-r", "GHCR.io/Org", cwd=ROOT)
    assert result.returncode == 2
    assert "'Org' is not allowed" in result.stderr


def test_no_engine_names_docker_host_and_how_to_start_one(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    result = run_buildkit(
        "build-all",
        "--report",
        str(report),
        cwd=ROOT,
        env={"DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"},
    )
    assert result.returncode == 6
    assert f"DOCKER_HOST=unix://{tmp_path}/no-engine.sock" in result.stderr
    assert "ci/prepare-machine.sh" in result.stderr
    assert "--no-docker" in result.stderr
    assert not report.exists()  # refused before any stage ran


def test_a_release_tag_on_an_untagged_commit_is_warned_about() -> None:
    assert version_mismatch("v1.2.3", "v1.2.3", 0, "1.2.3") is None
    assert version_mismatch("1.2.3", "v1.2.3", 0, "1.2.3") is None
    assert version_mismatch("latest", None, 0, "0.0.0.dev4+gabc") is None
    warning = version_mismatch("v1.2.3", "v1.2.2", 3, "1.2.3.dev3+gabc1234")
    assert warning is not None
    assert "reports 1.2.3.dev3+gabc1234" in warning
    assert "git tag v1.2.3" in warning
