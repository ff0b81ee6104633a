from __future__ import annotations

import pytest

from buildkit.docker_engine import Engine
from tests.registries import require_engine


@pytest.fixture(scope="session")
def engine() -> Engine:
    """The real Docker engine (skips, or fails under BUILDKIT_REQUIRE_ALL, without one)."""
    return require_engine()
