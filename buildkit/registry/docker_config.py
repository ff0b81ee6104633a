"""A docker config of the run's own for buildx, when the push credentials come from
BUILDKIT_REGISTRY_USERNAME/PASSWORD: buildx reads credentials only from the docker config
(DOCKER_CONFIG, else ~/.docker), so it gets a temporary one whose config.json also holds
them for the registry pushed to.

Everything else of the user's docker config stays as it was: its other entries (buildx
builders, contexts, CLI plugins) are linked, and config.json is copied with its other
registries' credentials. A credential store (`credsStore`, or a `credHelpers` entry for
this registry) would take precedence over `auths`, so this registry gets an empty helper,
which makes docker read `auths` for it. The directory is private (0700, config.json 0600)
and removed when the block ends; its path and content never reach output, logs or the
report."""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from buildkit.errors import RegistryError
from buildkit.registry.credentials import Credentials
from buildkit.registry.reference import DOCKER_HUB

CONFIG = "config.json"
DOCKER_HUB_KEY = "https://index.docker.io/v1/"  # how docker names Docker Hub in `auths`


def user_config_dir(env: Mapping[str, str]) -> Path:
    """The docker config directory the docker CLI would read in this environment."""
    if env.get("DOCKER_CONFIG"):
        return Path(env["DOCKER_CONFIG"])
    return Path(env["HOME"]) / ".docker" if env.get("HOME") else Path.home() / ".docker"


def config_with(config: Mapping[str, Any], domain: str, credentials: Credentials) -> dict[str, Any]:
    """`config` (a config.json's content) with `credentials` as the ones for `domain`."""
    key = DOCKER_HUB_KEY if domain == DOCKER_HUB else domain
    pair = base64.b64encode(f"{credentials.username}:{credentials.password}".encode()).decode()
    updated = dict(config)
    updated["auths"] = {**(config.get("auths") or {}), key: {"auth": pair}}
    helpers = dict(config.get("credHelpers") or {})
    if config.get("credsStore") or key in helpers:
        helpers[key] = ""  # "" = no helper for this registry: docker reads `auths`
        updated["credHelpers"] = helpers
    return updated


def read_config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RegistryError(
            f"the docker config {path} cannot be read: {exc}",
            hint="fix or remove that file (docker itself cannot read it either)",
        ) from exc
    if not isinstance(data, dict):
        raise RegistryError(f"the docker config {path} is not a JSON object")
    return data


@contextmanager
def docker_config_for(
    domain: str, credentials: Credentials, env: Mapping[str, str]
) -> Iterator[dict[str, str]]:
    """The environment (DOCKER_CONFIG) under which the docker CLI and buildx use
    `credentials` for `domain` and the user's docker config for everything else."""
    source = user_config_dir(env)
    config = config_with(read_config(source / CONFIG), domain, credentials)
    directory = Path(tempfile.mkdtemp(prefix="buildkit-docker-config-"))  # mode 0700
    try:
        if source.is_dir():
            for entry in source.iterdir():
                if entry.name != CONFIG:
                    (directory / entry.name).symlink_to(entry.resolve())
        handle = os.open(directory / CONFIG, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(config, file)
        yield {"DOCKER_CONFIG": str(directory)}
    finally:
        shutil.rmtree(directory, ignore_errors=True)
