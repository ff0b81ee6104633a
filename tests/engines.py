"""The Docker engines the image tests run against. ci/engines.sh starts both:

    classic      the default engine (DOCKER_HOST, else /var/run/docker.sock), overlay2
    containerd   unix:///run/buildkit-engines/containerd-store.sock, the containerd image
                 store: the default of new Docker installs, and the only store on which
                 buildx's `docker` driver builds multi-platform images

A test asks for the store it needs; a missing one skips, or fails under
BUILDKIT_REQUIRE_ALL=1 (CI)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

from buildkit.engine import buildx
from buildkit.engine.client import CLASSIC_STORE, CONTAINERD_STORE, DEFAULT_HOST, Engine
from buildkit.errors import DockerError
from buildkit.proc import Runner
from tests.helpers import require

CONTAINERD_STORE_HOST = "unix:///run/buildkit-engines/containerd-store.sock"
STORES = (CLASSIC_STORE, CONTAINERD_STORE)
PREPARE = "run `bash ci/prepare-machine.sh` (as root)"


@dataclass(frozen=True)
class EngineUnderTest:
    store: str
    host: str
    engine: Engine

    @property
    def env(self) -> dict[str, str]:
        """The environment that points buildkit (and buildx) at this engine."""
        return {"DOCKER_HOST": self.host}


def require_engine(host: str | None = None) -> Engine:
    try:
        return Engine.connect(timeout=120, host=host)
    except DockerError as exc:
        require(False, f"no Docker engine: {exc.message}; {PREPARE}")
        raise


def require_store(store: str) -> EngineUnderTest:
    """The engine with `store` as its image store."""
    host = (
        CONTAINERD_STORE_HOST
        if store == CONTAINERD_STORE
        else os.environ.get("DOCKER_HOST", DEFAULT_HOST)
    )
    engine = require_engine(host)
    require(
        engine.store == store,
        f"the engine at {host} has the {engine.store} image store, not the {store} one; {PREPARE}",
    )
    return EngineUnderTest(store, host, engine)


def require_buildx(store: str) -> EngineUnderTest:
    """The engine with `store`, whose own BuildKit buildx's default builder answers for."""
    engine = require_store(store)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DOCKER_HOST", engine.host)
        builder = buildx.inspect_builder(Runner())
    require(builder is not None, f"docker buildx does not answer; {PREPARE}")
    return engine


def remove_images(engine: EngineUnderTest, *repositories: str) -> None:
    """The images a test's run left in an engine (built, loaded, or pulled back)."""
    for repository in repositories:
        for image in engine.engine.client.images.list(name=repository):
            engine.engine.client.images.remove(str(image.id), force=True)
