from __future__ import annotations

import pytest

from buildkit.engine.client import CLASSIC_STORE, CONTAINERD_STORE, Engine
from tests.engines import STORES, EngineUnderTest, require_buildx, require_engine, require_store


@pytest.fixture(scope="session")
def engine() -> Engine:
    """The default Docker engine (skips, or fails under BUILDKIT_REQUIRE_ALL, without one)."""
    return require_engine()


@pytest.fixture(scope="session", params=STORES)
def store_engine(request: pytest.FixtureRequest) -> EngineUnderTest:
    """Each image store in turn: the classic one and the containerd one."""
    return require_store(str(request.param))


@pytest.fixture(scope="session")
def containerd() -> EngineUnderTest:
    """The engine with the containerd image store, buildx answering for its BuildKit."""
    return require_buildx(CONTAINERD_STORE)


@pytest.fixture(scope="session")
def classic() -> EngineUnderTest:
    """The engine with the classic image store, buildx answering for its BuildKit."""
    return require_buildx(CLASSIC_STORE)
