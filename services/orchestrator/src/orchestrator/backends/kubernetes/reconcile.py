"""One TaskRun brought to where its Job and Pod say it is. Level-triggered: every call
starts from what the API server holds now, so a restarted controller (or one that takes
the Lease over) carries on where the last one stopped and never launches a Job twice.

    deleted (finalizer)   the Job, ConfigMap and Secret are removed, then the finalizer
    finished              nothing (the Job goes with its TTL, the TaskRun stays)
    cancel annotation     the Job is deleted; phase `cancelled`
    invalid spec          phase `failed`, the reason naming the field (the task model's check)
    no Job                ConfigMap, Secret and Job are created; phase `starting`
    a Job                 phase, times, exit code follow it (status.observe); once it has
                          ended (or is cancelled), the tool calls counted from toolman's log
    a name taken          phase `failed`, naming the Job, ConfigMap or Secret of that name
                          which is not this TaskRun's

Only objects whose owner references name this TaskRun's uid are read as its own, replaced
or deleted: a TaskRun named after an existing Job or `<name>-task` Secret or ConfigMap
never makes the controller delete or adopt it (anyone who may create TaskRuns could
otherwise choose the name). The check is a read before the delete (a Kubernetes delete
cannot be conditioned on an owner); the controller alone writes objects of those names.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from lightkube import AsyncClient
from lightkube.core.resource import NamespacedResource
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import ConfigMap, Secret
from lightkube.types import CascadeType, PatchType
from pydantic import ValidationError

from orchestrator.backends.base import LaunchError
from orchestrator.backends.kubernetes.api import NOT_FOUND, Failure, TaskRun, status_of
from orchestrator.backends.kubernetes.inputs import TaskRunRef
from orchestrator.backends.kubernetes.options import (
    FINALIZER,
    GROUP,
    KubernetesOptions,
    inputs_name,
)
from orchestrator.backends.kubernetes.pods import agent_last_words, task_pods, tool_calls
from orchestrator.backends.kubernetes.render import render_task
from orchestrator.backends.kubernetes.status import TaskRunStatus, observe
from orchestrator.config import OrchestratorConfig
from orchestrator.tasks.model import Phase, TaskCreate, ToolCalls

CANCEL_ANNOTATION = f"{GROUP}/cancel"
# As on Docker: no Job made yet (tasks/store.py), or a launch begun (controller/lifecycle.py).
CANCELLED_UNSTARTED = "cancelled before it started"
CANCELLED_REASON = "cancelled by request"
T = TypeVar("T", bound=NamespacedResource)
Resource = type[NamespacedResource]
log = logging.getLogger("orchestrator.kubernetes")


class ForeignObject(Exception):
    """An object has the name one of this TaskRun's would take, but is not this TaskRun's."""

    def __init__(self, kind: str, name: str, namespace: str) -> None:
        super().__init__(
            f"a {kind} named {name!r} already exists in namespace {namespace!r} and does not "
            f"belong to this TaskRun (its ownerReferences do not name it); it was left as it "
            f"is: submit the task under another name, or remove that {kind} if nothing needs it"
        )


class Reconciler:
    def __init__(
        self,
        client: AsyncClient,
        namespace: str,
        config: OrchestratorConfig,
        options: KubernetesOptions,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.config = config
        self.options = options

    async def reconcile(self, name: str) -> None:
        run = await self._get(TaskRun, name)
        if run is None:
            return
        meta = run.metadata
        assert meta is not None  # every object the API server returns has metadata
        finalizers = list(meta.finalizers or [])
        # The finalizer list is replaced whole: only on the version read (409 otherwise,
        # and the next reconcile starts again from what the API server holds).
        version = {"resourceVersion": meta.resourceVersion} if meta.resourceVersion else {}
        owner = TaskRunRef(name, self.namespace, meta.uid or "")
        if meta.deletionTimestamp is not None:
            await self._remove(owner)
            if FINALIZER in finalizers:
                rest = [f for f in finalizers if f != FINALIZER]
                await self._patch_meta(name, {"finalizers": rest, **version})
            return
        body: object = getattr(run, "spec", None)
        spec = body if isinstance(body, dict) else {}
        wanted = _missing_labels(meta.labels or {}, spec.get("labels"))
        if FINALIZER not in finalizers or wanted:
            # the spec's labels on the TaskRun itself, where the list's filter reads them
            # (a TaskRun made with kubectl may carry them only in its spec)
            kept = finalizers if FINALIZER in finalizers else [*finalizers, FINALIZER]
            await self._patch_meta(name, {"finalizers": kept, "labels": wanted, **version})
        given: object = getattr(run, "status", None)
        status: Mapping[str, Any] = given if isinstance(given, dict) else {}
        phase = Phase(status["phase"]) if status.get("phase") in set(Phase) else None
        if phase is None or not phase.finished:
            cancel = (meta.annotations or {}).get(CANCEL_ANNOTATION) == "true"
            await self._advance(owner, spec, status, phase, cancel=cancel)

    async def _advance(
        self,
        owner: TaskRunRef,
        body: Mapping[str, Any],
        status: Mapping[str, Any],
        phase: Phase | None,
        *,
        cancel: bool,
    ) -> None:
        name = owner.name
        if cancel:
            unstarted = phase in (None, Phase.PENDING)
            calls = None if unstarted else await self._tool_calls(name, body)  # before the Pod goes
            with suppress(ForeignObject):  # never this task's: left alone
                await self._delete_owned(Job, name, owner)
            reason = CANCELLED_UNSTARTED if unstarted else CANCELLED_REASON
            stopped = TaskRunStatus(Phase.CANCELLED, reason, finished_at=_now(), tool_calls=calls)
            await self._write(name, status, stopped)
            return
        try:
            spec = TaskCreate.model_validate(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(["spec", *(str(p) for p in first["loc"])])
            await self._write(name, status, TaskRunStatus(Phase.FAILED, f"{field}: {first['msg']}"))
            return
        had_job = phase is Phase.RUNNING or bool(status.get("jobName"))
        try:
            job = await self._get_owned(Job, name, owner)
            if job is None and not had_job:
                await self._launch(owner, spec, status)
                return
        except ForeignObject as exc:  # a name taken: the task cannot have its objects
            failed = TaskRunStatus(Phase.FAILED, str(exc), finished_at=_now())
            await self._write(name, status, failed)
            return
        if job is None:
            # it had a Job, whose agent may have run: a task is never launched twice
            reason = "the task's Job was deleted before it finished"
            await self._write(name, status, TaskRunStatus(Phase.FAILED, reason, finished_at=_now()))
        else:
            observed = observe(job, await task_pods(self.client, self.namespace, name))
            if observed.phase.finished:  # toolman has written its last audit line
                calls = await self._tool_calls(name, body)
                observed = replace(observed, tool_calls=calls)
            if observed.phase is Phase.FAILED and observed.exit_code is not None:
                quote = await self._last_words(name)
                observed = replace(observed, reason=f"{observed.reason}{quote}")
            await self._write(name, status, observed)

    async def _launch(self, owner: TaskRunRef, spec: TaskCreate, status: Mapping[str, Any]) -> None:
        """No Job: the agent never ran. This TaskRun's leftovers of a launch cut short are
        replaced; another object of their name fails the task (ForeignObject)."""
        try:
            rendered = render_task(owner, spec, self.config, self.options)
        except LaunchError as exc:
            await self._write(
                owner.name, status, TaskRunStatus(Phase.FAILED, str(exc), finished_at=_now())
            )
            return
        await self._delete_owned(ConfigMap, inputs_name(owner.name), owner)
        await self._delete_owned(Secret, inputs_name(owner.name), owner)
        await self.client.create(rendered.config_map)
        await self.client.create(rendered.secret)
        await self.client.create(rendered.job)
        log.info("taskrun %s: created its Job", owner.name)
        await self._write(owner.name, status, TaskRunStatus(Phase.STARTING, job_name=owner.name))

    async def _tool_calls(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Counted from toolman's log; none when the log cannot be read (the task's end
        is written all the same)."""
        agent = TaskCreate.model_validate(body).agent.name
        try:
            calls = await tool_calls(self.client, self.namespace, name, agent)
        except Failure as exc:  # an HTTP error or no answer
            log.warning("taskrun %s: toolman's log could not be read: %s", name, exc)
            calls = ToolCalls()
        return calls.model_dump(mode="json")

    async def _last_words(self, name: str) -> str:
        try:
            return await agent_last_words(self.client, self.namespace, name)
        except Failure as exc:  # an HTTP error or no answer
            log.warning("taskrun %s: the agent's log could not be read: %s", name, exc)
            return ""

    async def _remove(self, owner: TaskRunRef) -> None:
        """This TaskRun's Job, ConfigMap and Secret; objects of their names that are not
        its own stay."""
        for kind, name in (
            (Job, owner.name),
            (ConfigMap, inputs_name(owner.name)),
            (Secret, inputs_name(owner.name)),
        ):
            with suppress(ForeignObject):
                await self._delete_owned(kind, name, owner)

    async def _write(self, name: str, current: Mapping[str, Any], new: TaskRunStatus) -> None:
        """Through the status subresource, only when something changed."""
        wanted = new.fields()
        if all(current.get(key) == value for key, value in wanted.items()):
            return
        await self.client.patch(
            TaskRun.Status, name, new.patch(), namespace=self.namespace, patch_type=PatchType.MERGE
        )

    async def _patch_meta(self, name: str, metadata: dict[str, object]) -> None:
        await self.client.patch(
            TaskRun,
            name,
            {"metadata": metadata},
            namespace=self.namespace,
            patch_type=PatchType.MERGE,
        )

    async def _get(self, kind: type[T], name: str) -> T | None:
        try:
            return await self.client.get(kind, name, namespace=self.namespace)
        except Failure as exc:
            if status_of(exc) == NOT_FOUND:
                return None
            raise

    async def _get_owned(self, kind: type[T], name: str, owner: TaskRunRef) -> T | None:
        """The object if it is this TaskRun's, None if there is none, ForeignObject if
        another's."""
        found = await self._get(kind, name)
        if found is not None and not _owned_by(found, owner.uid):
            raise ForeignObject(kind.__name__, name, self.namespace)
        return found

    async def _delete_owned(self, kind: Resource, name: str, owner: TaskRunRef) -> None:
        """Deletes it if it is this TaskRun's; another's is left (ForeignObject)."""
        if await self._get_owned(kind, name, owner) is not None:
            await self._delete(kind, name)

    async def _delete(self, kind: Resource, name: str) -> None:
        try:
            await self.client.delete(
                kind, name, namespace=self.namespace, cascade=CascadeType.BACKGROUND
            )
        except Failure as exc:
            if status_of(exc) != NOT_FOUND:
                raise


def _owned_by(obj: NamespacedResource, uid: str) -> bool:
    meta = getattr(obj, "metadata", None)  # every kind read here has it
    refs = (meta.ownerReferences if isinstance(meta, ObjectMeta) else None) or []
    return bool(uid) and any(ref.uid == uid for ref in refs)


def _missing_labels(current: Mapping[str, str], given: object) -> dict[str, str]:
    """The spec's labels the TaskRun's metadata lacks (a bad spec: none, it fails later)."""
    if not isinstance(given, dict):
        return {}
    return {k: v for k, v in given.items() if isinstance(v, str) and current.get(k) != v}


def _now() -> datetime:
    return datetime.now(UTC)
