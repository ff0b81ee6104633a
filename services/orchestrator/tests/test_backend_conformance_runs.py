"""One suite, both engines, for what becomes of a task's run: the same scenarios, written
once against the task API, driven through `conformance_sides.Side`:

    docker      REAL: the orchestrator's app with its real SQLite store and real Docker
                backend, on the real engine; each task is a real container pair from the
                stand-in images (stand_in_images.py), the agent a real process calling
                its sidecar, printing and exiting as the task's prompt scripts it, the
                sidecar writing toolman's audit lines for those calls. Stand-ins, not the product's
                images: the scenarios are about the backend, not about Claude Code or
                toolman (those run for real in tests/e2e), and two tiny images build in
                a second or two where the platform's take minutes.
    kubernetes  EMULATED at one seam: the controller's app against kmock's Kubernetes
                emulator over real HTTP. No API server, kubelet or Job controller can run
                on these machines, so the side writes the Pod's container states, the
                Job's conditions and the served logs (the agent's, toolman's audit
                lines) that they would (k8s_emulator.py).

The API-level scenarios (shape, 401/404, refusals, an early cancel) are in
test_backend_conformance.py.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from conformance_sides import WAIT, Agent, DockerSide, KubernetesSide, Side, task_where
from conftest import AUTH, eventually, make_config, serve_in_process
from k8s_emulator import cluster
from stand_in_images import StandIns, stand_in_images, sweep
from test_kubernetes_tasks_api import api as kubernetes_api

pytestmark = pytest.mark.anyio
ENDED = {"succeeded", "failed", "cancelled", "timed_out"}


@pytest.fixture(scope="session")
def stand_ins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandIns]:
    """The stand-in agent and toolman images, built once per session on the real engine."""
    with stand_in_images(tmp_path_factory.mktemp("stand-ins")) as built:
        yield built


@pytest.fixture(params=["docker", "kubernetes"])
async def side(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Side]:
    if request.param == "kubernetes":
        async with cluster() as k8s, kubernetes_api(k8s) as client:
            yield KubernetesSide("kubernetes", client, k8s)
        return
    built: StandIns = request.getfixturevalue("stand_ins")
    instance = f"conformance-{uuid.uuid4().hex[:8]}"  # labels all this test's containers
    config = make_config(
        tmp_path / "state",
        docker={"host": built.host, "instance": instance},
        agent={"image": built.agent, "secrets": {}},
        toolman={"image": built.toolman},
        tasks={"ttl_seconds": 3600, "stop_grace_seconds": 1},  # logs kept to the end
    )
    try:
        async with serve_in_process(config) as client:
            client.headers.update(AUTH)
            yield DockerSide("docker", client)
    finally:
        await anyio.to_thread.run_sync(sweep, instance)


async def submit(side: Side, agent: Agent, **fields: Any) -> str:
    created = await side.http.post("/api/v1/tasks", json={"prompt": agent.prompt(), **fields})
    assert created.status_code == 201, created.text
    task: dict[str, Any] = created.json()
    assert task["phase"] == "pending"
    return str(task["id"])


async def running(side: Side, task_id: str, agent: Agent) -> dict[str, Any]:
    """Until the agent runs and its output can be read through the API."""
    await side.agent_starts(task_id, agent)
    task = await task_where(side.http, task_id, {"running"}, "running")
    assert task["started_at"] is not None
    assert task["finished_at"] is None

    async def printed() -> bool:
        answer = await side.http.get(f"/api/v1/tasks/{task_id}/logs")
        return answer.status_code == 200 and answer.text == agent.say

    await eventually(printed, timeout=WAIT, what=f"the agent's output {agent.say!r} in its log")
    return task


async def stopped(side: Side, task_id: str) -> None:
    async def check() -> bool:
        return await side.agent_is_stopped(task_id)

    await eventually(check, timeout=WAIT, what=f"nothing of task {task_id} running")


async def test_a_task_goes_pending_running_succeeded_and_its_log_stays_readable(
    side: Side,
) -> None:
    agent = Agent(say="working\ndone\n", exit=0)
    task_id = await submit(side, agent)
    started = await running(side, task_id, agent)
    await side.agent_finishes(task_id, agent)
    done = await task_where(side.http, task_id, ENDED, "ended")
    assert (done["phase"], done["exit_code"], done["reason"]) == ("succeeded", 0, None)
    assert done["started_at"] == started["started_at"]
    assert done["finished_at"] is not None
    log = await side.http.get(f"/api/v1/tasks/{task_id}/logs")
    assert (log.status_code, log.text) == (200, agent.say)
    again = await side.http.post(f"/api/v1/tasks/{task_id}/cancel")
    assert again.status_code == 409


async def test_a_failing_agent_fails_the_task_with_its_exit_code_and_a_reason(
    side: Side,
) -> None:
    agent = Agent(say="3 tests failed\n", exit=3)
    task_id = await submit(side, agent)
    await running(side, task_id, agent)
    await side.agent_finishes(task_id, agent)
    done = await task_where(side.http, task_id, ENDED, "ended")
    assert (done["phase"], done["exit_code"]) == ("failed", 3)
    assert done["reason"] == "the agent exited with code 3; its last output: '3 tests failed'"
    log = await side.http.get(f"/api/v1/tasks/{task_id}/logs")
    assert log.text == agent.say


async def test_an_agent_past_its_deadline_times_the_task_out(side: Side) -> None:
    agent = Agent(say="thinking\n", hold=True)  # it never finishes by itself
    task_id = await submit(side, agent, timeout_seconds=1)
    await side.agent_starts(task_id, agent)
    await side.deadline_passes(task_id)
    done = await task_where(side.http, task_id, ENDED, "ended")
    assert done["phase"] == "timed_out"
    assert "timeout_seconds" in done["reason"]
    await stopped(side, task_id)


async def test_cancelling_a_running_task_stops_its_agent(side: Side) -> None:
    agent = Agent(say="working\n", hold=True)
    task_id = await submit(side, agent)
    await running(side, task_id, agent)
    cancel = await side.http.post(f"/api/v1/tasks/{task_id}/cancel")
    assert cancel.status_code == 202
    done = await task_where(side.http, task_id, ENDED, "ended")
    assert (done["phase"], done["reason"]) == ("cancelled", "cancelled by request")
    await stopped(side, task_id)
    again = await side.http.post(f"/api/v1/tasks/{task_id}/cancel")
    assert again.json()["detail"] == f"task {task_id} has already ended: cancelled"


async def test_the_tool_calls_toolman_audited_are_summed_up_alike(side: Side) -> None:
    calls = (
        ("time_get_current_time", "allowed", "ok"),
        ("time_get_current_time", "allowed", "error"),
        ("git_push", "denied_by_policy", None),
    )
    agent = Agent(say="asked the time\n", calls=calls)
    task_id = await submit(side, agent)
    await running(side, task_id, agent)
    await side.agent_finishes(task_id, agent)
    done = await task_where(side.http, task_id, ENDED, "ended")
    assert done["phase"] == "succeeded"
    assert done["tool_calls"] == {
        "allowed": 2,
        "refused": 1,
        "failed": 1,
        "by_tool": {
            "git_push": {"allowed": 0, "refused": 1, "failed": 0},
            "time_get_current_time": {"allowed": 2, "refused": 0, "failed": 1},
        },
    }
