"""A Kubernetes API for the controller's tests: kmock's emulator, served over real HTTP
on loopback, and a test client that plays the parts a cluster would (the API server's
uid, the Job controller's Pod, the kubelet's container states, the Job's conditions).

The narrow seam: no Kubernetes API server can run on the test machines. What kmock 0.8's
emulator does and does not do (read in its source, kmock/_internal/k8s.py):
  does     create (409 on a name taken), get, list, watch (streams events as they
           happen), merge-patch (the status subresource too: PATCH .../status), delete,
           finalizers (a delete sets deletionTimestamp; the object goes when the last
           finalizer is removed)
  does not assign uid (`Emulator` below does, as an API server: owner references name
           it), resourceVersion or creationTimestamp; check a resourceVersion
           precondition (optimistic concurrency); filter by label selector; keep spec and
           status apart (a patch of either merges into the whole object); validate
           against the CRD's schema; garbage-collect by owner reference; run the Job
           controller or a kubelet (nothing ever runs a Pod); serve a container's log
           (`pods/<name>/log` answers the Pod object itself until `serve_log` says
           what the container printed)
so the test writes Pods and Job status itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import aiohttp.web
import kmock
from lightkube import AsyncClient
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Pod
from lightkube.types import PatchType

from orchestrator.backends.kubernetes.api import NOT_FOUND, Failure, TaskRun, client_for, status_of
from orchestrator.backends.kubernetes.job import AGENT
from orchestrator.backends.kubernetes.options import labels

NAMESPACE = "agents"
TEST_TOKEN = "the-test"  # how the emulator tells the test's own calls apart
RESOURCES = (
    "orchestrator.5dlabs.io/v1alpha1/taskruns",
    "batch/v1/jobs",
    "v1/pods",
    "v1/configmaps",
    "v1/secrets",
    "coordination.k8s.io/v1/leases",
)


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Cluster:
    """The emulator, its URL, and a client of it for the test's own reads and writes."""

    emulator: kmock.KubernetesEmulator
    url: str
    client: AsyncClient

    def calls(self) -> set[tuple[str, str, str, str]]:
        """(API group, resource[/subresource], RBAC verb, name) of every call the test's
        own client did not make: what the orchestrator asked of the API server."""
        verbs = {"FETCH": "get", "LIST": "list", "WATCH": "watch", "CREATE": "create"}
        verbs |= {"DELETE": "delete", "PATCH": "patch", "PUT": "update"}
        found = set()
        for request in self.emulator:
            headers = {k.lower(): v for k, v in request.headers.items()}
            if request.resource is None or headers.get("authorization") == f"Bearer {TEST_TOKEN}":
                continue
            action = request.action.value if request.action else ""
            verb = verbs[request.method.value] if action == "UPDATE" else verbs[action]
            resource = "/".join(filter(None, [request.resource.plural, request.subresource]))
            found.add((request.resource.group or "", resource, verb, request.name or ""))
        return found

    def writes(self, manager: str, plural: str) -> int:
        """How many creates and patches of `plural` the client `manager` sent."""
        return sum(
            1
            for request in self.emulator
            if request.method in ("POST", "PATCH")
            and request.params.get("fieldManager") == manager
            and request.resource is not None
            and request.resource.plural == plural
        )

    async def submit(self, name: str, spec: dict[str, Any], uid: str = "") -> None:
        run = TaskRun(
            metadata=ObjectMeta(name=name, namespace=NAMESPACE, uid=uid or f"uid-{name}"),
            spec=spec,
        )
        await self.client.create(run)

    async def status(self, name: str) -> dict[str, Any]:
        run = await self.client.get(TaskRun, name, namespace=NAMESPACE)
        status: object = getattr(run, "status", None)
        return status if isinstance(status, dict) else {}

    async def run_pod(self, task: str, agent: dict[str, Any]) -> None:
        """The Job controller makes the Pod; the kubelet reports the agent container."""
        name = f"{task}-pod"
        if not await self.exists(Pod, name):
            meta = ObjectMeta(name=name, namespace=NAMESPACE, labels=labels(task, "pod"))
            await self.client.create(Pod(metadata=meta))
        state = {
            "containerStatuses": [
                {
                    "name": AGENT,
                    "image": "agent",
                    "imageID": "",
                    "ready": True,
                    "restartCount": 0,
                    "state": agent,
                }
            ]
        }
        await self.client.patch(
            Pod, name, {"status": state}, namespace=NAMESPACE, patch_type=PatchType.MERGE
        )

    def serve_log(self, task: str, text: str, container: str = AGENT) -> None:
        """The kubelet's answer for a container of the task pod (pods/log, through the API
        server): the emulator has no containers, so the test says what they printed."""
        path = f"/api/v1/namespaces/{NAMESPACE}/pods/{task}-pod/log?container={container}"
        self.emulator[f"get {path}"] << text.encode()

    async def job_condition(self, task: str, kind: str, reason: str = "") -> None:
        condition = {"type": kind, "status": "True", "reason": reason, "lastTransitionTime": now()}
        await self.client.patch(
            Job,
            task,
            {"status": {"conditions": [condition]}},
            namespace=NAMESPACE,
            patch_type=PatchType.MERGE,
        )

    async def exists(self, kind: Any, name: str) -> bool:
        try:
            await self.client.get(kind, name, namespace=NAMESPACE)
        except Failure as exc:
            if status_of(exc) == NOT_FOUND:
                return False
            raise
        return True


class Emulator(kmock.KubernetesEmulator):
    """kmock's emulator, plus the uid an API server gives every object it creates."""

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        if request.action == kmock.action.CREATE and isinstance(request.data, dict):
            meta = request.data.setdefault("metadata", {})
            if isinstance(meta, dict) and not meta.get("uid"):
                meta["uid"] = str(uuid4())
        return await super()._handle(request)


@asynccontextmanager
async def cluster() -> AsyncIterator[Cluster]:
    async with Emulator() as emulator, kmock.Server(emulator) as server:
        for resource in RESOURCES:
            emulator.resources[resource] = kmock.ResourceInfo()
        url = str(server.url).rstrip("/")
        client = client_for(url, NAMESPACE, token=TEST_TOKEN, field_manager="test")
        try:
            yield Cluster(emulator, url, client)
        finally:
            await client.close()
