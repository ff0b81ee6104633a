"""Registry credentials: BUILDKIT_REGISTRY_USERNAME/PASSWORD, else what `docker login`
wrote (the docker config, credential helpers included). Never printed: repr hides them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from docker import auth as docker_auth
from docker.errors import DockerException

from buildkit.errors import RegistryError, UsageError
from buildkit.registry.reference import DOCKER_HUB


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)
    source: str = "environment"

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=***, source={self.source!r})"

    def auth_config(self) -> dict[str, str]:
        return {"username": self.username, "password": self.password}


def from_environment(env: Mapping[str, str]) -> Credentials | None:
    username = env.get("BUILDKIT_REGISTRY_USERNAME", "")
    password = env.get("BUILDKIT_REGISTRY_PASSWORD", "")
    if bool(username) != bool(password):
        missing = "BUILDKIT_REGISTRY_PASSWORD" if username else "BUILDKIT_REGISTRY_USERNAME"
        raise UsageError(
            f"{missing} is not set but its partner is",
            hint="set both, or neither to use `docker login`'s credentials",
        )
    return Credentials(username, password) if username else None


def from_docker_config(domain: str) -> Credentials | None:
    """What `docker login <domain>` stored, asking a credential helper if one is configured."""
    registry = docker_auth.INDEX_NAME if domain == DOCKER_HUB else domain
    try:
        config = docker_auth.load_config()
        found = config.resolve_authconfig(registry)
    except DockerException as exc:  # a credential helper that fails or is missing
        raise RegistryError(
            f"reading credentials for {domain} from the docker config failed: {exc}",
            hint=f"run `docker login {domain}` again",
        ) from exc
    if not found:
        return None
    username = found.get("username") or found.get("Username") or ""
    password = found.get("password") or found.get("Password") or ""
    if not username:
        return None
    return Credentials(username, password, source="docker config")


def resolve(domain: str, env: Mapping[str, str]) -> Credentials | None:
    return from_environment(env) or from_docker_config(domain)
