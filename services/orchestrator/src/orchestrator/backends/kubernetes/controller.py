"""The TaskRun controller: while it holds the Lease, it watches TaskRuns and the Jobs and
Pods it made, and reconciles each TaskRun an event touches (one at a time per name).

On taking the Lease it lists every TaskRun first, so nothing that changed while no
replica led is missed; it resyncs on a timer as Kubernetes controllers do. A failed call
is retried with backoff; a watch that ends is opened again. Losing the Lease stops the
watches and the worker before the next reconcile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import suppress

from lightkube import AsyncClient
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Pod

from orchestrator.backends.kubernetes.api import Failure, TaskRun
from orchestrator.backends.kubernetes.lease import DEFAULT_LEASE, LeaderElector, LeaseTimes
from orchestrator.backends.kubernetes.options import LABEL_TASK, MANAGED_BY, KubernetesOptions
from orchestrator.backends.kubernetes.reconcile import Reconciler
from orchestrator.config import OrchestratorConfig

log = logging.getLogger("orchestrator.kubernetes")
RETRY_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0)


class TaskRunController:
    def __init__(
        self,
        client: AsyncClient,
        namespace: str,
        config: OrchestratorConfig,
        options: KubernetesOptions,
        *,
        identity: str,
        lease: LeaseTimes = DEFAULT_LEASE,
        resync_seconds: float = 60.0,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.elector = LeaderElector(client, namespace, identity, lease)
        self.reconciler = Reconciler(client, namespace, config, options)
        self.resync_seconds = resync_seconds
        self.api_answers = False  # for /ready: the last call to the API server worked
        self.steps = 0  # Lease steps taken (each renew_seconds)
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop` is set: take or keep the Lease, act while it is held."""
        acting: asyncio.Task[None] | None = None
        try:
            while not stop.is_set():
                try:
                    leading = await self.elector.step()
                    self.api_answers = True
                except Failure as exc:
                    log.warning("the Lease could not be read or written: %s", exc)
                    self.api_answers, leading = False, self.elector.leading
                self.steps += 1
                if leading and acting is None:
                    log.info("leading as %s", self.elector.identity)
                    acting = asyncio.create_task(self._act())
                elif not leading and acting is not None:
                    log.info("no longer leading: stopping")
                    await _cancel(acting)
                    acting = None
                with suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.elector.times.renew_seconds)
        finally:
            if acting is not None:
                await _cancel(acting)
            await self.elector.release()

    async def _act(self) -> None:
        tasks = [
            asyncio.create_task(self._work()),
            asyncio.create_task(self._resync()),
            asyncio.create_task(self._follow(self._taskruns())),
            asyncio.create_task(self._follow(self._owned_by_label(Job))),
            asyncio.create_task(self._follow(self._owned_by_label(Pod))),
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                await _cancel(task)

    def enqueue(self, name: str) -> None:
        if name not in self._queued:
            self._queued.add(name)
            self._queue.put_nowait(name)

    async def _work(self) -> None:
        failures: dict[str, int] = {}
        while True:
            name = await self._queue.get()
            self._queued.discard(name)
            if not self.elector.leading:
                continue  # the Lease lapsed: `run` stops this task at its next step
            try:
                await self.reconciler.reconcile(name)
                failures.pop(name, None)
                self.api_answers = True
            except Exception as exc:  # one TaskRun never stops the others
                count = failures[name] = failures.get(name, 0) + 1
                delay = RETRY_SECONDS[min(count, len(RETRY_SECONDS)) - 1]
                if isinstance(exc, Failure):
                    log.warning("taskrun %s: %s; again in %g s", name, exc, delay)
                else:
                    log.exception("taskrun %s: reconciling failed; again in %g s", name, delay)
                asyncio.get_running_loop().call_later(delay, self.enqueue, name)

    async def _resync(self) -> None:
        while True:
            try:
                async for run in self.client.list(TaskRun, namespace=self.namespace):
                    if run.metadata is not None and run.metadata.name:
                        self.enqueue(run.metadata.name)
            except Failure as exc:
                log.warning("listing TaskRuns failed: %s", exc)
            await asyncio.sleep(self.resync_seconds)

    async def _follow(self, names: AsyncIterator[str]) -> None:
        async for name in names:
            self.enqueue(name)

    async def _taskruns(self) -> AsyncIterator[str]:
        attempt = 0
        while True:
            try:
                async for _, run in self.client.watch(TaskRun, namespace=self.namespace):
                    attempt = 0
                    if run.metadata is not None and run.metadata.name:
                        yield run.metadata.name
            except Failure as exc:
                log.warning("watching TaskRuns failed: %s", exc)
            attempt += 1
            await asyncio.sleep(RETRY_SECONDS[min(attempt, len(RETRY_SECONDS)) - 1])

    async def _owned_by_label(self, kind: type[Job] | type[Pod]) -> AsyncIterator[str]:
        attempt = 0
        while True:
            try:
                async for _, obj in self.client.watch(
                    kind, namespace=self.namespace, labels=dict(MANAGED_BY)
                ):
                    attempt = 0
                    labels = (obj.metadata.labels if obj.metadata else None) or {}
                    if labels.get(LABEL_TASK):
                        yield labels[LABEL_TASK]
            except Failure as exc:
                log.warning("watching %s failed: %s", kind.__name__, exc)
            attempt += 1
            await asyncio.sleep(RETRY_SECONDS[min(attempt, len(RETRY_SECONDS)) - 1])


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with suppress(asyncio.CancelledError, Exception):
        await task
