from __future__ import annotations

import pytest

from buildkit.engine.client import Engine
from tests.engines import STORES, EngineUnderTest, require_engine, require_store


@pytest.fixture(scope="session")
def engine() -> Engine:
    """The default Docker engine (skips, or fails under BUILDKIT_REQUIRE_ALL, without one)."""
    return require_engine()


@pytest.fixture(scope="session", params=STORES)
def store_engine(request: pytest.FixtureRequest) -> EngineUnderTest:
    """Each image store in turn: the classic one and the containerd one."""
    return require_store(str(request.param))
