"""Credentials from the environment and from what `docker login` writes, including a
real credential helper program (the protocol docker uses: `<helper> get` on stdin), and
the docker config buildx gets for the environment's."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from buildkit.errors import RegistryError, UsageError
from buildkit.registry.credentials import Credentials, from_docker_config, from_environment, resolve
from buildkit.registry.docker_config import docker_config_for


def test_environment_pair() -> None:
    creds = from_environment(
        {"BUILDKIT_REGISTRY_USERNAME": "u", "BUILDKIT_REGISTRY_PASSWORD": "s3"}
    )
    assert creds == Credentials("u", "s3")
    assert from_environment({}) is None


def test_half_a_pair_is_an_error_naming_the_missing_one() -> None:
    with pytest.raises(UsageError, match="BUILDKIT_REGISTRY_PASSWORD is not set"):
        from_environment({"BUILDKIT_REGISTRY_USERNAME": "u"})


def test_password_never_shows_in_repr() -> None:
    creds = Credentials("user", "hunter2")
    assert "hunter2" not in repr(creds)
    assert "hunter2" not in str(creds)


def docker_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: dict[str, object]
) -> None:
    config_dir = tmp_path / "docker-config"
    config_dir.mkdir()
    (config_dir / "config.json").write_text(json.dumps(content))
    monkeypatch.setenv("DOCKER_CONFIG", str(config_dir))


def test_docker_login_auths_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token = base64.b64encode(b"robot:s3cret").decode()
    docker_config(tmp_path, monkeypatch, {"auths": {"localhost:5000": {"auth": token}}})
    assert from_docker_config("localhost:5000") == Credentials("robot", "s3cret", "docker config")
    assert from_docker_config("ghcr.io") is None


def test_credential_helper_is_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-buildkittest"
    helper.write_text(
        "#!/bin/sh\n"
        "read server\n"
        'if [ "$1" = get ] && [ "$server" = "registry.example.test" ]; then\n'
        '  printf \'{"ServerURL":"%s","Username":"helper-user",\'\n'
        '  printf \'"Secret":"helper-secret"}\' "$server"\n'
        "else echo 'credentials not found in native keychain'; exit 1; fi\n"
    )
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    docker_config(tmp_path, monkeypatch, {"credHelpers": {"registry.example.test": "buildkittest"}})
    creds = from_docker_config("registry.example.test")
    assert creds == Credentials("helper-user", "helper-secret", "docker config")


def test_environment_wins_over_docker_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = base64.b64encode(b"robot:s3cret").decode()
    docker_config(tmp_path, monkeypatch, {"auths": {"localhost:5000": {"auth": token}}})
    env = {"BUILDKIT_REGISTRY_USERNAME": "ci", "BUILDKIT_REGISTRY_PASSWORD": "token"}
    assert resolve("localhost:5000", env) == Credentials("ci", "token")
    assert resolve("localhost:5000", {}) == Credentials("robot", "s3cret", "docker config")


def test_buildx_gets_a_private_docker_config_with_the_env_credentials(tmp_path: Path) -> None:
    """What a bake runs under when BUILDKIT_REGISTRY_* are set: the user's docker config
    (builders, contexts, other registries) plus these credentials for the pushed-to
    registry, winning over a credential store; private, and gone afterwards."""
    user = tmp_path / "user-docker"
    (user / "buildx" / "instances").mkdir(parents=True)
    other = base64.b64encode(b"someone:else").decode()
    (user / "config.json").write_text(
        json.dumps({"auths": {"ghcr.io": {"auth": other}}, "credsStore": "desktop"})
    )
    creds = Credentials("ci", "t0ken")
    with docker_config_for("localhost:5000", creds, {"DOCKER_CONFIG": str(user)}) as env:
        directory = Path(env["DOCKER_CONFIG"])
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        config_file = directory / "config.json"
        assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
        config = json.loads(config_file.read_text())
        assert config["auths"] == {
            "ghcr.io": {"auth": other},
            "localhost:5000": {"auth": base64.b64encode(b"ci:t0ken").decode()},
        }
        assert config["credsStore"] == "desktop"
        assert config["credHelpers"] == {"localhost:5000": ""}  # `auths`, not the store
        assert (directory / "buildx").resolve() == (user / "buildx").resolve()  # builders
    assert not directory.exists()
    assert json.loads((user / "config.json").read_text())["auths"] == {"ghcr.io": {"auth": other}}


def test_docker_hub_credentials_go_under_dockers_own_name(tmp_path: Path) -> None:
    env = {"DOCKER_CONFIG": str(tmp_path / "absent")}
    with docker_config_for("docker.io", Credentials("u", "p"), env) as found:
        config = json.loads((Path(found["DOCKER_CONFIG"]) / "config.json").read_text())
    assert list(config["auths"]) == ["https://index.docker.io/v1/"]
    assert "credHelpers" not in config


def test_an_unreadable_docker_config_is_named(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json")
    env = {"DOCKER_CONFIG": str(tmp_path)}
    with (
        pytest.raises(RegistryError, match=r"docker config .*config.json cannot be read"),
        docker_config_for("localhost:5000", Credentials("u", "p"), env),
    ):
        pass
