"""One active task followed to its end: launched (or adopted), watched until the agent
exits, stopped on cancel or timeout, its logs kept and its final phase recorded.

Every step starts from what the store and the engine say now, so the same code serves
a fresh start and an orchestrator that restarts while the task runs: an agent that
started is adopted and watched, never started again; a launch that stopped half-way is
removed and done again (its agent never ran). If the engine goes away, the task keeps
its phase and the lifecycle tries again once the engine answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from contextlib import suppress
from typing import TYPE_CHECKING, TypeVar

from orchestrator.backends.base import (
    AgentState,
    BackendUnavailable,
    LaunchCancelled,
    LaunchError,
    Observation,
)
from orchestrator.controller.launches import build_launch
from orchestrator.tasks.audit import ToolCallCounter, count_tool_calls, last_words
from orchestrator.tasks.model import FINISHED, LogStream, Phase
from orchestrator.tasks.records import TaskRecord
from orchestrator.waiting import wait_at_most

if TYPE_CHECKING:
    from orchestrator.controller.scheduler import Controller

T = TypeVar("T")
log = logging.getLogger("orchestrator.controller")
ACTIVE = (Phase.STARTING, Phase.RUNNING)
RETRY_SECONDS = (0.5, 1, 2, 5)


class Cancelled(Exception):
    """The task was cancelled while this step ran."""


class Lifecycle:
    def __init__(self, controller: Controller, task_id: str) -> None:
        self.c = controller
        self.task_id = task_id
        self.cancel = asyncio.Event()

    async def run(self) -> None:
        attempt = 0
        while True:
            try:
                await self._step()
                return
            except asyncio.CancelledError:
                raise
            except BackendUnavailable as exc:
                delay = RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)]
                attempt += 1
                self.c.store.update(self.task_id, reason=f"waiting for the engine: {exc}")
                log.warning("task %s: %s; trying again in %s s", self.task_id, exc, delay)
                await self._sleep_or_cancel(delay)
            except Exception as exc:  # a defect here must not leave the task active forever
                log.exception("task %s: unexpected error", self.task_id)
                with suppress(Exception):
                    await self.c.backend.stop(self.task_id, 0)
                with suppress(Exception):
                    await self._keep_logs()  # what the task printed is still worth having
                self._finish_now(Phase.FAILED, None, f"internal error of the orchestrator: {exc!r}")
                return

    async def _step(self) -> None:
        record = self._record()
        if record is None or record.phase not in ACTIVE:
            return
        if record.cancel_requested:
            self.cancel.set()
        if record.phase is Phase.STARTING:
            record = await self._start(record)
            if record is None:
                return
        await self._watch(record)

    def _record(self) -> TaskRecord | None:
        return self.c.store.get(self.task_id)

    # -- starting ---------------------------------------------------------------------------

    async def _start(self, record: TaskRecord) -> TaskRecord | None:
        observed = await self.c.backend.observe(self.task_id)
        if observed.agent in (AgentState.RUNNING, AgentState.EXITED):
            return self._running(observed.started_at)  # started before a restart: adopt
        if self.cancel.is_set():
            await self.c.backend.cleanup(self.task_id)
            self._finish_now(Phase.CANCELLED, None, "cancelled before the agent started")
            return None
        try:
            spec = self.c.store.launch_spec(record)
            launch = await asyncio.to_thread(  # it may resolve the repository's host
                build_launch, self.task_id, spec, self.c.config, self.c.environ
            )
            timings = await self.c.backend.launch(launch, self.cancel)
        except LaunchCancelled:
            await self.c.backend.stop(self.task_id, 0)
            await self.c.backend.cleanup(self.task_id)
            self._finish_now(Phase.CANCELLED, None, "cancelled before the agent started")
            return None
        except LaunchError as exc:
            with suppress(BackendUnavailable):
                await self._keep_logs()
                await self.c.backend.cleanup(self.task_id)
            self._finish_now(Phase.FAILED, None, str(exc))
            return None
        metrics = self.c.metrics
        metrics.launch_seconds.labels("prepare").observe(timings.prepare)
        metrics.launch_seconds.labels("toolman_ready").observe(timings.toolman_ready)
        metrics.launch_seconds.labels("agent_start").observe(timings.agent_start)
        running = self._running(None) or self._record()
        if running is not None and running.phase is not Phase.RUNNING:
            return None  # another hand moved it on: nothing left to follow
        if running is not None and running.started_at is not None:
            since_submission = running.started_at - running.created_at
            metrics.start_seconds.observe(since_submission)
            log.info(
                "task %s running %.3f s after submission: prepare %.3f s, toolman ready "
                "%.3f s, agent start %.3f s",
                self.task_id,
                since_submission,
                timings.prepare,
                timings.toolman_ready,
                timings.agent_start,
                extra={
                    "task": self.task_id,
                    "start_seconds": round(since_submission, 4),
                    "prepare_seconds": round(timings.prepare, 4),
                    "toolman_ready_seconds": round(timings.toolman_ready, 4),
                    "agent_start_seconds": round(timings.agent_start, 4),
                },
            )
        return running

    def _running(self, started_at: float | None) -> TaskRecord | None:
        fields = {"reason": None} | ({"started_at": started_at} if started_at else {})
        return self.c.store.transition(self.task_id, (Phase.STARTING,), Phase.RUNNING, **fields)

    # -- running ----------------------------------------------------------------------------

    async def _watch(self, record: TaskRecord) -> None:
        assert record.started_at is not None
        if record.reason is not None:  # "waiting for the engine": it answers again
            self.c.store.update(self.task_id, reason=None)
        timeout = record.spec.timeout_seconds or self.c.config.tasks.default_timeout_seconds
        deadline = record.started_at + timeout
        counting = asyncio.create_task(self._count_tool_calls(record))
        try:
            while True:
                left = deadline - self.c.clock()
                try:
                    observed = await self._unless_cancelled(
                        self.c.backend.wait(self.task_id, max(left, 0))
                    )
                except Cancelled:
                    await self._end(Phase.CANCELLED, "cancelled by request", stop=True)
                    return
                if observed.agent is AgentState.EXITED:
                    await self._exited(observed)
                    return
                if observed.agent is not AgentState.RUNNING:
                    await self._end(
                        Phase.FAILED,
                        f"the agent container is {observed.agent.value}: it was removed or "
                        "the engine lost it; run the task again",
                        stop=True,
                    )
                    return
                if self.c.clock() >= deadline:
                    await self._end(
                        Phase.TIMED_OUT,
                        f"stopped after {timeout} s (timeout_seconds); give the task more "
                        "time or less to do",
                        stop=True,
                    )
                    return
        finally:
            counting.cancel()
            with suppress(asyncio.CancelledError, BackendUnavailable):
                await counting

    async def _exited(self, observed: Observation) -> None:
        code = observed.exit_code
        if code == 0:
            await self._end(Phase.SUCCEEDED, None, exit_code=0)
            return
        reason = f"the agent exited with code {code}"
        if observed.detail:
            reason += f" ({observed.detail})"
        await self._end(Phase.FAILED, reason, exit_code=code, explain=True)

    async def _count_tool_calls(self, record: TaskRecord) -> None:
        """Keep the task's tool-call summary current while toolman runs."""
        counter = ToolCallCounter(record.spec.agent.name)
        async for chunk in self.c.backend.logs(self.task_id, LogStream.TOOLMAN, follow=True):
            if counter.feed(chunk):
                self.c.store.update(self.task_id, tool_calls=counter.summary())

    # -- the end ----------------------------------------------------------------------------

    async def _end(
        self,
        phase: Phase,
        reason: str | None,
        *,
        exit_code: int | None = None,
        stop: bool = False,
        explain: bool = False,
    ) -> None:
        grace = self.c.config.tasks.stop_grace_seconds
        if stop:
            await self.c.backend.stop(self.task_id, grace)
            exit_code = (await self.c.backend.observe(self.task_id)).exit_code
        else:
            await self.c.backend.stop(self.task_id, grace)  # the sidecar, once the agent exited
        await self._keep_logs()
        if explain and reason is not None:
            reason += last_words(self.c.archive.lines(self.task_id, LogStream.AGENT))
        self._finish_now(phase, exit_code, reason)

    async def _keep_logs(self) -> None:
        for stream in LogStream:
            await self.c.archive.save(
                self.task_id, stream, self.c.backend.logs(self.task_id, stream, follow=False)
            )

    def _finish_now(self, phase: Phase, exit_code: int | None, reason: str | None) -> None:
        record = self._record()
        agent = record.spec.agent.name if record else ""
        calls = count_tool_calls(agent, self.c.archive.lines(self.task_id, LogStream.TOOLMAN))
        done = self.c.store.transition(
            self.task_id, ACTIVE, phase, exit_code=exit_code, reason=reason, tool_calls=calls
        )
        if done is not None and done.started_at is not None and done.finished_at is not None:
            self.c.metrics.duration_seconds.labels(phase.value).observe(
                done.finished_at - done.started_at
            )
        log.info("task %s %s%s", self.task_id, phase.value, f": {reason}" if reason else "")
        self.c.wake()

    # -- helpers ----------------------------------------------------------------------------

    async def _unless_cancelled(self, work: Awaitable[T]) -> T:
        job = asyncio.ensure_future(work)
        cancelled = asyncio.ensure_future(self.cancel.wait())
        try:
            await asyncio.wait({job, cancelled}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # the orchestrator stops: leave nothing running
            job.cancel()
            raise
        finally:
            cancelled.cancel()
        if job.done():
            return job.result()
        job.cancel()
        with suppress(asyncio.CancelledError, Exception):
            await job
        raise Cancelled

    async def _sleep_or_cancel(self, seconds: float) -> None:
        await wait_at_most(self.cancel, seconds)


__all__ = ["FINISHED", "Lifecycle"]
