"""The seam to the Docker engine: one docker SDK client, made on first use (the engine
may be down when the orchestrator starts), its blocking calls run in a thread with a
connection failure turned into BackendUnavailable, and the engine's answers read."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import ParamSpec, TypeVar

import docker
from docker.errors import APIError, DockerException

from orchestrator.backends.base import BackendUnavailable, LaunchError

T = TypeVar("T")
P = ParamSpec("P")
PING_SECONDS = 5.0  # a hung engine is "not ready" after this long, not after the SDK's 120 s


class Engine:
    def __init__(self, environment: Mapping[str, str] | None) -> None:
        self.environment = environment
        self._client: docker.DockerClient | None = None
        self._lock = threading.Lock()

    def client(self) -> docker.DockerClient:
        with self._lock:
            if self._client is None:
                try:
                    self._client = docker.from_env(
                        timeout=120, max_pool_size=64, environment=self.environment
                    )
                except DockerException as exc:
                    raise BackendUnavailable(f"the Docker engine does not answer: {exc}") from exc
            return self._client

    async def call(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a blocking SDK call in a thread; a connection failure is BackendUnavailable."""

        def call() -> T:
            try:
                return function(*args, **kwargs)
            except (APIError, LaunchError):
                raise
            except DockerException as exc:
                raise BackendUnavailable(f"the Docker engine does not answer: {exc}") from exc
            except OSError as exc:  # requests' ConnectionError is one
                raise BackendUnavailable(f"the Docker engine does not answer: {exc}") from exc

        return await asyncio.to_thread(call)

    async def ping(self) -> None:
        try:
            async with asyncio.timeout(PING_SECONDS):
                await self.call(lambda: self.client().ping())
        except TimeoutError:
            raise BackendUnavailable(
                f"the Docker engine did not answer a ping within {PING_SECONDS:g} s"
            ) from None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def timestamp(value: str | None) -> float | None:
    """The engine's RFC 3339 time (nanoseconds, `Z`); None for its zero time."""
    if not value or value.startswith("0001-"):
        return None
    head, _, rest = value.rstrip("Z").partition(".")
    fraction = float(f"0.{rest[:6]}") if rest else 0.0
    return datetime.fromisoformat(head + "+00:00").timestamp() + fraction


def explain(exc: APIError) -> str:
    return str(exc.explanation or exc).strip()


def engine_down(exc: APIError) -> bool:
    return "connection refused" in explain(exc).lower()
