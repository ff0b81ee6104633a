"""Fifty tasks submitted at once under a concurrency limit of four: every one completes,
in order, and the engine never runs more than four agents at a time.

The installed wheel's orchestrator on loopback, the real images on the real engine, the
real Claude Code in each agent (the scripted model answers each with a short text). The
engine's own event stream is the witness of how many agents ran at once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.e2e.deployment import (
    INSTANCE,
    INSTANCE_LABEL,
    ModelServer,
    OrchestratorProcess,
    PlatformImages,
    orchestrator_config,
    task_body,
)
from tests.e2e.model_api import marker

pytestmark = [pytest.mark.docker, pytest.mark.registry, pytest.mark.slow]

TASKS = 50
LIMIT = 4


class RunningAgents:
    """Counts this instance's running agent containers from the engine's events."""

    def __init__(self, engine: docker.DockerClient) -> None:
        filters = {
            "type": "container",
            "event": ["start", "die"],
            "label": [f"{INSTANCE_LABEL}={INSTANCE}", "io.5dlabs.orchestrator.role=agent"],
        }
        self.events = engine.events(decode=True, filters=filters)
        self.running: set[str] = set()
        self.most = 0
        self.starts = 0
        self.thread = threading.Thread(target=self._count, daemon=True)
        self.thread.start()

    def _count(self) -> None:
        with suppress(Exception):  # the stream ends when it is closed
            for event in self.events:
                if event.get("status") == "start":
                    self.running.add(event["id"])
                    self.starts += 1
                elif event.get("status") == "die":
                    self.running.discard(event["id"])
                self.most = max(self.most, len(self.running))

    def close(self) -> None:
        self.events.close()
        self.thread.join(timeout=10)


@pytest.fixture
def agents(docker_engine: docker.DockerClient) -> Iterator[RunningAgents]:
    counter = RunningAgents(docker_engine)
    try:
        yield counter
    finally:
        counter.close()


def test_fifty_tasks_at_once_with_a_limit_of_four(
    platform_images: PlatformImages,
    task_network: str,
    model_server: ModelServer,
    agents: RunningAgents,
    tmp_path: Path,
) -> None:
    config = orchestrator_config(
        platform_images, task_network, str(tmp_path / "state"), max_running=LIMIT, ttl_seconds=0
    )
    orchestrator = OrchestratorProcess(tmp_path).start(config)
    try:
        bodies = [task_body(marker("text", text=f"answer {n}")) for n in range(TASKS)]
        with ThreadPoolExecutor(max_workers=16) as pool:
            submitted = list(pool.map(orchestrator.api.submit, bodies))
        ids = [task["id"] for task in sorted(submitted, key=lambda t: str(t["created_at"]))]
        assert len(set(ids)) == TASKS

        done: list[dict[str, Any]] = [
            orchestrator.api.wait(task_id, "succeeded", "failed", timeout=600) for task_id in ids
        ]
        assert [task["phase"] for task in done] == ["succeeded"] * TASKS, [
            (task["id"], task["reason"]) for task in done if task["phase"] != "succeeded"
        ]
        assert agents.starts == TASKS  # each agent started exactly once
        assert agents.most <= LIMIT
        assert agents.most == LIMIT  # and the limit was used, not just respected
        launched = [task["launched_at"] for task in done]
        assert launched == sorted(launched)  # out of the queue in submission order
        listed = orchestrator.api.client.get("/api/v1/tasks", params={"limit": 500}).json()
        assert len(listed["items"]) == TASKS
    finally:
        orchestrator.stop()
        orchestrator.api.close()
