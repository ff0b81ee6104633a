"""Nothing is lost and nothing runs twice: an orchestrator killed mid-task, and an engine
that stops answering. Real images, real engine, real Claude Code (see deployment.py);
the model is the scripted one."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.e2e.deployment import (
    ModelServer,
    OrchestratorContainer,
    OrchestratorProcess,
    PlatformImages,
    engine_socket,
    orchestrator_config,
    task_body,
)
from tests.e2e.engine_proxy import EngineProxy
from tests.e2e.images import wait_until
from tests.e2e.model_api import marker

pytestmark = [pytest.mark.docker, pytest.mark.registry, pytest.mark.slow]

FINAL = ("succeeded", "failed", "timed_out", "cancelled")


def test_a_killed_orchestrator_adopts_its_running_task_and_it_completes_once(
    docker_engine: docker.DockerClient,
    platform_images: PlatformImages,
    task_network: str,
    model_server: ModelServer,
    tmp_path: Path,
) -> None:
    """`kill -9` of the orchestrator's container while its task runs; a new container on
    the same state volume adopts the task: the very agent container is watched to its
    end, never started again."""
    orchestrator = OrchestratorContainer(
        docker_engine, platform_images.orchestrator.name, task_network, tmp_path
    )
    config = orchestrator_config(platform_images, task_network, "/var/lib/orchestrator")
    try:
        orchestrator.start(config)
        key = f"adopt-{uuid.uuid4().hex[:8]}"
        prompt = marker("hold", tool="mcp__toolman__time_get_current_time", args={}, key=key)
        task = orchestrator.api.submit(task_body(prompt, tools={"servers": ["time"]}))
        model_server.wait_holding(key)
        agent = docker_engine.containers.get(f"orchestrator-{task['id']}-agent")
        started_at = agent.attrs["State"]["StartedAt"]

        orchestrator.kill()
        orchestrator.remove()
        agent.reload()
        assert agent.status == "running"  # the task does not die with its orchestrator

        orchestrator.start(config)
        assert orchestrator.api.get(task["id"])["phase"] == "running"
        assert "adopting it" in orchestrator.logs()
        model_server.release(key)
        done = orchestrator.api.wait(task["id"], *FINAL)
        assert done["phase"] == "succeeded", done
        agent.reload()
        assert agent.attrs["State"]["StartedAt"] == started_at  # started once, never again
        assert agent.attrs["RestartCount"] == 0
        turns = model_server.main_requests(key)
        assert [bool(turn["tool_results"]) for turn in turns] == [False, True]
    finally:
        orchestrator.api.close()
        orchestrator.remove()


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[EngineProxy]:
    running = EngineProxy(engine_socket(), tmp_path / "engine.sock")
    try:
        yield running
    finally:
        running.close()


def test_while_the_engine_is_gone_tasks_wait_pending_and_none_is_lost(
    platform_images: PlatformImages,
    task_network: str,
    model_server: ModelServer,
    proxy: EngineProxy,
    tmp_path: Path,
) -> None:
    """The installed wheel's orchestrator, whose engine goes away: `/ready` says so,
    submitted tasks stay pending (through a restart of the orchestrator too), and run,
    in order, once the engine is back."""
    config = orchestrator_config(platform_images, task_network, str(tmp_path / "state"))
    orchestrator = OrchestratorProcess(tmp_path, {"DOCKER_HOST": proxy.url})
    try:
        orchestrator.start(config)
        proxy.cut()
        wait_until(lambda: orchestrator.api.ready() == 503, 30, "/ready answering 503")
        problem = orchestrator.api.client.get("/ready").json()["problem"]
        assert "does not answer" in problem

        prompts = [marker("text", text=f"task {n} done") for n in range(3)]
        ids = [orchestrator.api.submit(task_body(p))["id"] for p in prompts]
        tried = proxy.refused
        wait_until(lambda: proxy.refused >= tried + 3, 60, "three more tries of the engine")
        assert [orchestrator.api.get(i)["phase"] for i in ids] == ["pending"] * 3

        orchestrator.stop()  # a restart while the engine is away loses nothing either
        orchestrator.start(config, ready=False)
        assert [orchestrator.api.get(i)["phase"] for i in ids] == ["pending"] * 3

        proxy.restore()
        wait_until(lambda: orchestrator.api.ready() == 200, 30, "/ready answering 200 again")
        done = [orchestrator.api.wait(i, *FINAL) for i in ids]
        assert [task["phase"] for task in done] == ["succeeded"] * 3, done
        launched = [task["launched_at"] for task in done]
        assert launched == sorted(launched)  # started in the order they were submitted
        for n, task_id in enumerate(ids):
            assert f"task {n} done" in orchestrator.api.logs(task_id)
    finally:
        orchestrator.stop()
        orchestrator.api.close()
