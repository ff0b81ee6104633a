"""The controller: adopts the tasks a previous run left active, starts pending tasks in
submission order while fewer than `tasks.max_running` are active, removes finished
tasks' containers after `tasks.ttl_seconds`, and knows whether the backend answers.

A pending task is claimed with a compare-and-set to `starting` before anything is
created, and one Lifecycle follows it from there (lifecycle.py). While the backend does
not answer, nothing is claimed: submitted tasks wait as `pending`, in order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from contextlib import suppress

from orchestrator.backends.base import BackendUnavailable, ExecutionBackend
from orchestrator.config import OrchestratorConfig
from orchestrator.controller.lifecycle import ACTIVE, Lifecycle
from orchestrator.metrics import Metrics
from orchestrator.tasks.logs import LogArchive
from orchestrator.tasks.model import Phase
from orchestrator.tasks.store import TaskStore
from orchestrator.waiting import wait_at_most

log = logging.getLogger("orchestrator.controller")
TICK_SECONDS = 2.0  # the backend is pinged and the TTL swept at least this often


class Controller:
    def __init__(
        self,
        *,
        store: TaskStore,
        backend: ExecutionBackend,
        config: OrchestratorConfig,
        archive: LogArchive,
        metrics: Metrics,
        environ: Mapping[str, str],
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self.backend = backend
        self.config = config
        self.archive = archive
        self.metrics = metrics
        self.environ = environ
        self.clock = clock
        self.backend_ready = False
        self.backend_problem = "not checked yet"
        self._lifecycles: dict[str, tuple[Lifecycle, asyncio.Task[None]]] = {}
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self._strays_checked = False

    # -- the API's calls ------------------------------------------------------------------

    def wake(self) -> None:
        """Something changed (a task was submitted or ended): look again now."""
        self._wake.set()

    def cancel(self, task_id: str) -> None:
        found = self._lifecycles.get(task_id)
        if found is not None:
            found[0].cancel.set()
        self.wake()

    @property
    def active(self) -> int:
        return len(self._lifecycles)

    # -- running --------------------------------------------------------------------------

    async def start(self) -> None:
        for record in self.store.in_phases(*ACTIVE):
            log.info("task %s was %s before this start: adopting it", record.id, record.phase)
            self._follow(record.id)
        self._loop = asyncio.create_task(self._run(), name="controller")

    async def _remove_strays(self) -> None:
        """Containers and volumes of this instance that belong to no active or uncleaned
        task (a lost state directory, a crash between cleanup and its record): removed."""
        for task_id in await self.backend.task_ids():
            if task_id in self._lifecycles:
                continue
            record = self.store.get(task_id)
            if record is None or (record.phase.finished and record.cleaned_at is not None):
                known = "does not know" if record is None else "cleaned up already"
                log.warning("removing the containers of task %s: this store %s", task_id, known)
                await self.backend.cleanup(task_id)

    async def stop(self) -> None:
        """Stop following tasks; their containers keep running and are adopted next start."""
        tasks = [task for _, task in self._lifecycles.values()]
        if self._loop is not None:
            tasks.append(self._loop)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self._tick()
            except Exception:  # one bad tick must not end the controller
                log.exception("controller tick failed")
            await wait_at_most(self._wake, TICK_SECONDS)

    async def _tick(self) -> None:
        try:
            await self.backend.ping()
        except BackendUnavailable as exc:
            self._set_ready(False, str(exc))
            return
        self._set_ready(True, "")
        if not self._strays_checked:  # once per start, when the engine first answers
            await self._remove_strays()
            self._strays_checked = True
        self._start_pending()
        await self._sweep()

    def _set_ready(self, ready: bool, problem: str) -> None:
        if ready != self.backend_ready:
            level = logging.INFO if ready else logging.WARNING
            state = "answers" if ready else "does not answer"
            log.log(level, "backend %s%s", state, f": {problem}" if problem else "")
        self.backend_ready, self.backend_problem = ready, problem
        self.metrics.backend_up.set(1 if ready else 0)

    def _start_pending(self) -> None:
        free = self.config.tasks.max_running - self.active
        if free <= 0:
            return
        for record in self.store.page(phases=[Phase.PENDING], limit=free):
            claimed = self.store.transition(record.id, (Phase.PENDING,), Phase.STARTING)
            if claimed is not None:
                self._follow(record.id)

    def _follow(self, task_id: str) -> None:
        if task_id in self._lifecycles:
            return
        lifecycle = Lifecycle(self, task_id)
        task = asyncio.create_task(lifecycle.run(), name=f"task-{task_id}")
        self._lifecycles[task_id] = (lifecycle, task)
        task.add_done_callback(lambda _: self._ended(task_id))

    def _ended(self, task_id: str) -> None:
        entry = self._lifecycles.pop(task_id, None)
        if entry is not None and not entry[1].cancelled() and entry[1].exception() is not None:
            log.error("following task %s failed", task_id, exc_info=entry[1].exception())
        self.wake()

    async def _sweep(self) -> None:
        """Remove the containers and volumes of tasks finished more than ttl_seconds ago."""
        moment = self.clock() - self.config.tasks.ttl_seconds
        for record in self.store.finished_before(moment):
            if record.id in self._lifecycles:
                continue
            await self.backend.cleanup(record.id)
            self.store.update(record.id, cleaned_at=self.clock())
