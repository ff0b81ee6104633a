"""The TaskRun controller against a Kubernetes API over real HTTP (kmock's emulator; see
k8s_emulator.py for the seam and what the emulator leaves out). The test plays the Job
controller and the kubelet by writing the Pod and the Job's status, and reads only
what a user reads: the TaskRun's status and the objects in the namespace."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import TOOLMAN_BASE, eventually
from k8s_emulator import NAMESPACE, Cluster, cluster, now
from lightkube.models.batch_v1 import JobSpec
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.core_v1 import Container, PodSpec, PodTemplateSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.batch_v1 import Job
from lightkube.resources.coordination_v1 import Lease
from lightkube.resources.core_v1 import ConfigMap, Secret
from lightkube.types import PatchType
from test_kubernetes_job import MODEL_KEY

from orchestrator.backends.kubernetes.api import TaskRun, client_for
from orchestrator.backends.kubernetes.controller import TaskRunController
from orchestrator.backends.kubernetes.inputs import TaskRunRef
from orchestrator.backends.kubernetes.job import AGENT, TOOLMAN
from orchestrator.backends.kubernetes.lease import LEASE_NAME, LeaseTimes
from orchestrator.backends.kubernetes.options import KubernetesOptions
from orchestrator.backends.kubernetes.reconcile import CANCEL_ANNOTATION
from orchestrator.config import OrchestratorConfig, parse

pytestmark = pytest.mark.anyio
CONFIG = parse({"toolman": {"config": TOOLMAN_BASE}, "agent": {"secrets": MODEL_KEY}})
# Renewed often, held long: a loaded machine that delays a step by seconds never lets
# a second controller take the Lease mid-test (a takeover is tested with an old
# renewTime instead, far past any duration).
FAST = LeaseTimes(duration_seconds=60, renew_seconds=0.1)
WAIT = 10.0
TASK = {"prompt": "Make the tests pass", "tools": {"servers": ["time"]}, "timeout_seconds": 600}


@asynccontextmanager
async def controller(
    k8s: Cluster, identity: str = "a", config: OrchestratorConfig = CONFIG
) -> AsyncIterator[TaskRunController]:
    client = client_for(k8s.url, NAMESPACE, field_manager=identity)
    running = TaskRunController(
        client, NAMESPACE, config, KubernetesOptions(), identity=identity, lease=FAST
    )
    stop = asyncio.Event()
    task = asyncio.create_task(running.run(stop))
    try:
        yield running
    finally:
        stop.set()
        await asyncio.wait_for(task, WAIT)
        await client.close()


async def phase(k8s: Cluster, name: str, wanted: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        status = await k8s.status(name)
        return status if status.get("phase") == wanted else None

    return await eventually(check, timeout=WAIT, what=f"{name} to be {wanted}")


async def gone(k8s: Cluster, kind: Any, name: str) -> None:
    async def check() -> bool:
        return not await k8s.exists(kind, name)

    await eventually(check, timeout=WAIT, what=f"{kind.__name__} {name} to be gone")


async def test_a_task_goes_pending_running_succeeded() -> None:
    async with cluster() as k8s, controller(k8s):
        await k8s.submit("t1", TASK)
        starting = await phase(k8s, "t1", "starting")
        assert starting["jobName"] == "t1"
        assert await k8s.exists(ConfigMap, "t1-task")
        assert await k8s.exists(Secret, "t1-task")
        await k8s.run_pod("t1", {"running": {"startedAt": now()}})
        running = await phase(k8s, "t1", "running")
        assert "startedAt" in running
        await k8s.run_pod("t1", {"terminated": {"exitCode": 0, "startedAt": now()}})
        await k8s.job_condition("t1", "Complete")
        done = await phase(k8s, "t1", "succeeded")
        assert done["exitCode"] == 0
        assert done["conditions"][0]["status"] == "True"
        assert "finishedAt" in done


async def test_a_failed_agent_fails_the_task_with_its_exit_code() -> None:
    async with cluster() as k8s, controller(k8s):
        await k8s.submit("t2", TASK)
        await phase(k8s, "t2", "starting")
        k8s.serve_log("t2", "running tests\n3 failed\n\n")
        await k8s.run_pod("t2", {"terminated": {"exitCode": 3, "startedAt": now()}})
        await k8s.job_condition("t2", "Failed", "PodFailurePolicy")
        failed = await phase(k8s, "t2", "failed")
        assert failed["exitCode"] == 3
        assert failed["reason"] == "the agent exited with code 3; its last output: '3 failed'"


async def test_the_end_is_written_even_when_the_pod_logs_cannot_be_read() -> None:
    """The kubelet unreachable (the API server answers 500 for pods/log): the task still
    ends, its reason without a quote, no tool calls counted."""
    async with cluster() as k8s, controller(k8s):
        await k8s.submit("t21", TASK)
        await phase(k8s, "t21", "starting")
        for container in (AGENT, TOOLMAN):
            path = f"/api/v1/namespaces/{NAMESPACE}/pods/t21-pod/log?container={container}"
            unreachable = {"kind": "Status", "status": "Failure", "code": 500}
            k8s.emulator[f"get {path}"] << 500 << unreachable
        await k8s.run_pod("t21", {"terminated": {"exitCode": 3, "startedAt": now()}})
        await k8s.job_condition("t21", "Failed", "PodFailurePolicy")
        failed = await phase(k8s, "t21", "failed")
        assert failed["exitCode"] == 3
        assert failed["reason"] == "the agent exited with code 3"
        assert failed["toolCalls"] == {"allowed": 0, "refused": 0, "failed": 0, "by_tool": {}}


async def test_the_deadline_times_the_task_out() -> None:
    async with cluster() as k8s, controller(k8s):
        await k8s.submit("t3", TASK)
        await phase(k8s, "t3", "starting")
        await k8s.run_pod("t3", {"running": {"startedAt": now()}})
        await phase(k8s, "t3", "running")
        await k8s.job_condition("t3", "Failed", "DeadlineExceeded")
        timed_out = await phase(k8s, "t3", "timed_out")
        assert "timeout_seconds" in timed_out["reason"]


async def test_cancel_deletes_the_job() -> None:
    async with cluster() as k8s, controller(k8s):
        await k8s.submit("t4", TASK)
        await phase(k8s, "t4", "starting")
        cancel = {"metadata": {"annotations": {CANCEL_ANNOTATION: "true"}}}
        await k8s.client.patch(
            TaskRun, "t4", cancel, namespace=NAMESPACE, patch_type=PatchType.MERGE
        )
        await phase(k8s, "t4", "cancelled")
        await gone(k8s, Job, "t4")


async def test_a_job_deleted_by_hand_fails_the_task_and_is_not_made_again() -> None:
    async with cluster() as k8s, controller(k8s):
        await k8s.submit("t14", TASK)
        await phase(k8s, "t14", "starting")
        await k8s.client.delete(Job, "t14", namespace=NAMESPACE)
        failed = await phase(k8s, "t14", "failed")
        assert failed["reason"] == "the task's Job was deleted before it finished"
        assert k8s.writes("a", "jobs") == 1


async def test_a_taskrun_deleted_mid_run_leaves_nothing() -> None:
    async with cluster() as k8s, controller(k8s):
        await k8s.submit("t5", TASK)
        await phase(k8s, "t5", "starting")
        await k8s.run_pod("t5", {"running": {"startedAt": now()}})
        await phase(k8s, "t5", "running")
        await k8s.client.delete(TaskRun, "t5", namespace=NAMESPACE)
        for kind, name in (
            (TaskRun, "t5"),
            (Job, "t5"),
            (ConfigMap, "t5-task"),
            (Secret, "t5-task"),
        ):
            await gone(k8s, kind, name)


async def test_an_invalid_spec_fails_naming_the_field() -> None:
    async with cluster() as k8s, controller(k8s):
        await k8s.submit("t6", {"prompt": "hi", "timeout_seconds": 0})
        failed = await phase(k8s, "t6", "failed")
        assert failed["reason"].startswith("spec.timeout_seconds: ")
        await k8s.submit("t7", {"prompt": "hi", "secrets": {"T": {"env": "HOST_T"}}})
        failed = await phase(k8s, "t7", "failed")
        assert failed["reason"].startswith("secrets.T: on Kubernetes")
        assert not await k8s.exists(Job, "t6")
        assert not await k8s.exists(Job, "t7")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"secrets": {"X": {"file": "/run/secrets/orchestrator-api/token"}}}, "secrets.X: "),
        ({"secrets": {"X": {"file": "/run/secrets/t1-task/toolman-token"}}}, "secrets.X: "),
        ({"env": {"NODE_OPTIONS": "--require /x.js"}}, "env.NODE_OPTIONS: tasks may not"),
        ({"env": {"LOG_FORMAT": "text"}}, "env.LOG_FORMAT: the operator sets"),
        ({"repository": {"url": "https://127.0.0.1/team/app"}}, "repository.url: "),
    ],
)
async def test_a_taskrun_made_with_kubectl_is_admitted_as_through_the_api(
    change: dict[str, Any], reason: str
) -> None:
    """The controller asks the operator's config again at launch: a TaskRun that never
    went through the API gets no more than one that did."""
    config = parse({
        "toolman": {"config": TOOLMAN_BASE},
        "agent": {"env": {"LOG_FORMAT": "json"}, "secrets": MODEL_KEY},
        "task_secrets": {"files": ["/run/secrets/github/*", "/run/secrets/*-task/*"]},
    })  # fmt: skip
    async with cluster() as k8s, controller(k8s, config=config):
        await k8s.submit("t20", {"prompt": "hi", **change})
        failed = await phase(k8s, "t20", "failed")
        assert failed["reason"].startswith(reason), failed["reason"]
        assert not await k8s.exists(Job, "t20")
        assert not await k8s.exists(Secret, "t20-task")


async def test_a_repository_host_name_is_not_resolved_at_launch() -> None:
    """As the README says: on Kubernetes tasks.repository_networks_denied refuses only a
    host written as an address (above); `localhost`, whose addresses are in the denied
    127.0.0.0/8, is launched, where Docker's launch refuses it after resolving it."""
    async with cluster() as k8s, controller(k8s):
        await k8s.submit("t32", {**TASK, "repository": {"url": "https://localhost/team/app"}})
        await phase(k8s, "t32", "starting")
        assert await k8s.exists(Job, "t32")


async def test_a_restarted_controller_resumes_from_the_api_state() -> None:
    async with cluster() as k8s:
        async with controller(k8s, "first"):
            await k8s.submit("t8", TASK)
            await phase(k8s, "t8", "starting")
            await k8s.run_pod("t8", {"running": {"startedAt": now()}})
            await phase(k8s, "t8", "running")
        await k8s.run_pod("t8", {"terminated": {"exitCode": 0, "startedAt": now()}})
        await k8s.job_condition("t8", "Complete")  # while no controller runs
        async with controller(k8s, "second"):
            await phase(k8s, "t8", "succeeded")
        assert k8s.writes("first", "jobs") == 1
        assert k8s.writes("second", "jobs") == 0  # the Job was never made again


async def test_two_controllers_with_one_lease_never_both_act() -> None:
    async with cluster() as k8s, controller(k8s, "a"), controller(k8s, "b"):
        for name in ("t9", "t10", "t11"):
            await k8s.submit(name, TASK)
        for name in ("t9", "t10", "t11"):
            await phase(k8s, name, "starting")
        lease = await k8s.client.get(Lease, LEASE_NAME, namespace=NAMESPACE)
        leader = lease.spec.holderIdentity if lease.spec else None
        follower = "b" if leader == "a" else "a"
        assert leader in ("a", "b")
        assert k8s.writes(leader, "jobs") == 3
        assert k8s.writes(follower, "jobs") == 0
        assert k8s.writes(follower, "taskruns") == 0


def micro_now() -> str:
    """A Lease's renewTime as the API server writes it (MicroTime: microseconds)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def hold_lease(k8s: Cluster, holder: str, renewed: datetime, duration: int = 3600) -> None:
    lease = Lease(
        metadata=ObjectMeta(name=LEASE_NAME, namespace=NAMESPACE),
        spec=LeaseSpec(holderIdentity=holder, leaseDurationSeconds=duration, renewTime=renewed),
    )
    await k8s.client.create(lease)


async def test_a_controller_does_not_act_while_another_holds_the_lease() -> None:
    async with cluster() as k8s:
        await hold_lease(k8s, "elsewhere", datetime.now(UTC))
        async with controller(k8s, "a") as running:
            await k8s.submit("t12", TASK)
            for _ in range(5):  # the other holder keeps renewing, for several of a's steps
                renew = {"spec": {"renewTime": micro_now()}}
                await k8s.client.patch(
                    Lease, LEASE_NAME, renew, namespace=NAMESPACE, patch_type=PatchType.MERGE
                )
                await next_step(running)
            assert not running.elector.leading
        assert k8s.writes("a", "jobs") == 0
        assert await k8s.status("t12") == {}


async def test_the_lease_of_a_crashed_controller_is_taken_over_once_it_expires() -> None:
    async with cluster() as k8s:
        await hold_lease(k8s, "crashed", datetime.now(UTC) - timedelta(minutes=5), duration=2)
        async with controller(k8s, "a"):
            await k8s.submit("t13", TASK)
            await phase(k8s, "t13", "starting")
            lease = await k8s.client.get(Lease, LEASE_NAME, namespace=NAMESPACE)
            assert lease.spec is not None
            assert lease.spec.holderIdentity == "a"


async def test_a_foreign_lease_expires_by_this_controllers_clock_not_its_renew_time() -> None:
    """A holder whose wall clock runs an hour ahead still loses its Lease once it stops
    renewing for the Lease's duration, as this replica's monotonic clock measures it."""
    async with cluster() as k8s:
        ahead = datetime.now(UTC) + timedelta(hours=1)
        await hold_lease(k8s, "skewed", ahead, duration=1)
        async with controller(k8s, "a"):
            await k8s.submit("t16", TASK)
            await phase(k8s, "t16", "starting")
        lease = await k8s.client.get(Lease, LEASE_NAME, namespace=NAMESPACE)
        assert lease.spec is not None
        assert lease.spec.holderIdentity == ""  # a's clean stop released it


async def next_step(running: TaskRunController) -> None:
    """Until the controller has read and written the Lease once more."""
    seen = running.steps

    async def check() -> bool:
        return running.steps > seen

    await eventually(check, timeout=WAIT, what="the controller's next step")


async def test_a_taskrun_cancelled_before_any_controller_saw_it_never_gets_a_job() -> None:
    async with cluster() as k8s:
        await k8s.submit("t15", TASK)
        cancel = {"metadata": {"annotations": {CANCEL_ANNOTATION: "true"}}}
        await k8s.client.patch(
            TaskRun, "t15", cancel, namespace=NAMESPACE, patch_type=PatchType.MERGE
        )
        async with controller(k8s, "a"):
            cancelled = await phase(k8s, "t15", "cancelled")
        assert cancelled["reason"] == "cancelled before it started"  # as on Docker
        assert k8s.writes("a", "jobs") == 0


async def someone_elses(k8s: Cluster, kind: Any, name: str) -> None:
    """An object of the namespace the controller did not make (no owner reference)."""
    meta = ObjectMeta(name=name, namespace=NAMESPACE, labels={"team": "payments"})
    if kind is Job:
        pod = PodSpec(containers=[Container(name="migrate", image="postgres:16")])
        await k8s.client.create(
            Job(metadata=meta, spec=JobSpec(template=PodTemplateSpec(spec=pod)))
        )
    elif kind is Secret:
        await k8s.client.create(Secret(metadata=meta, stringData={"password": "hunter2"}))
    else:
        await k8s.client.create(ConfigMap(metadata=meta, data={"settings": "kept"}))


async def still_someone_elses(k8s: Cluster, kind: Any, name: str) -> None:
    found = await k8s.client.get(kind, name, namespace=NAMESPACE)
    assert found.metadata is not None
    assert found.metadata.labels == {"team": "payments"}
    assert not found.metadata.ownerReferences


@pytest.mark.parametrize(
    ("kind", "name"), [(ConfigMap, "t30-task"), (Secret, "t30-task"), (Job, "t30")]
)
async def test_a_taskrun_named_after_someone_elses_object_fails_and_leaves_it_alone(
    kind: Any, name: str
) -> None:
    """A TaskRun named so that its Job, ConfigMap or Secret would take an existing
    object's name: the task fails naming that object, which is neither deleted, replaced
    nor read as the task's, not even once the TaskRun is deleted."""
    async with cluster() as k8s, controller(k8s):
        await someone_elses(k8s, kind, name)
        await k8s.submit("t30", TASK)
        failed = await phase(k8s, "t30", "failed")
        assert f"a {kind.__name__} named '{name}' already exists" in failed["reason"]
        assert "finishedAt" in failed
        assert k8s.writes("a", "jobs") == 0
        await still_someone_elses(k8s, kind, name)
        await k8s.client.delete(TaskRun, "t30", namespace=NAMESPACE)
        await gone(k8s, TaskRun, "t30")
        await still_someone_elses(k8s, kind, name)


async def test_leftovers_of_a_launch_cut_short_are_replaced() -> None:
    """The TaskRun's own ConfigMap from a launch that stopped before its Job was made
    (a controller restarted mid-launch): replaced, and the task starts."""
    async with cluster() as k8s:
        owner = TaskRunRef("t31", NAMESPACE, "uid-t31")
        stale = ConfigMap(metadata=owner.meta("t31-task", "inputs"), data={"prompt": "stale"})
        await k8s.client.create(stale)
        async with controller(k8s):
            await k8s.submit("t31", TASK, uid="uid-t31")
            await phase(k8s, "t31", "starting")
        inputs = await k8s.client.get(ConfigMap, "t31-task", namespace=NAMESPACE)
        assert inputs.data is not None
        assert inputs.data["prompt"] == TASK["prompt"]
