"""Following a task: its log copied to a sink until the task has ended, while a watcher
thread keeps a status line up to date.

The log endpoint (`?follow=true`) holds a pending task's request open until it runs and
ends the stream when the container stops. The phase is recorded a moment later, so the
end of a stream is only a hint: the task decides. A stream that breaks (the orchestrator
restarted, a proxy gave up) is opened again; the API has no offset, and a log replays
from its start each time, so the bytes already copied are skipped. An orchestrator that
stays unreachable for `Pacing.reconnect_seconds` ends the follow with its `ApiError`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol

from orchestrator.client.errors import ApiError, Kind
from orchestrator.client.http import ApiClient
from orchestrator.client.task import Task

RETRIED = (Kind.STREAM, Kind.UNREACHABLE)


@dataclass(frozen=True)
class Pacing:
    poll_seconds: float = 1.0  # between looks at the phase once a log stream has ended
    status_seconds: float = 1.0  # between the status line's looks at the phase
    reconnect_seconds: float = 60.0  # how long an unreachable orchestrator is retried
    watch_join_seconds: float = 5.0  # how long the watcher may take to notice it should stop


class Sink(Protocol):
    def write(self, chunk: bytes) -> None: ...

    def flush(self) -> None: ...


class Status(Protocol):
    def show(self, task: Task) -> None: ...

    def note(self, text: str) -> None: ...


@dataclass
class Offset:
    """How many bytes of the log the sink already has."""

    copied: int = 0


def copy_log(
    api: ApiClient, task_id: str, stream: str, sink: Sink, offset: Offset, *, follow: bool
) -> None:
    """One request's worth of the log into `sink`, skipping what it already has."""
    seen = 0
    with api.logs(task_id, stream, follow=follow) as chunks:
        for chunk in chunks:
            start = max(0, offset.copied - seen)
            seen += len(chunk)
            if start < len(chunk):
                sink.write(chunk[start:])
                offset.copied = seen
                sink.flush()


def follow(
    api: ApiClient,
    task_id: str,
    sink: Sink,
    *,
    stream: str = "agent",
    status: Status | None = None,
    pacing: Pacing = Pacing(),
    clock: Callable[[], float] = time.monotonic,
) -> Task:
    """Copy the log until the task has ended; the ended task. `ApiError` when the
    orchestrator refuses (404, 401) or stays unreachable."""
    stop = threading.Event()
    offset = Offset()
    lost_since: float | None = None
    with Watcher(api, task_id, status, pacing, stop):
        while True:
            broke: ApiError | None = None
            try:
                copy_log(api, task_id, stream, sink, offset, follow=True)
            except ApiError as exc:
                if exc.kind not in RETRIED:
                    raise
                broke = exc
            try:
                task = api.get(task_id)
            except ApiError as exc:
                if exc.kind not in RETRIED:
                    raise
                lost_since = lost_since if lost_since is not None else clock()
                if clock() - lost_since >= pacing.reconnect_seconds:
                    raise ApiError(
                        exc.kind,
                        f"{exc.message}; the task goes on: "
                        f"`orchestrator task logs {task_id} -f` follows it again",
                    ) from exc
                if status is not None:
                    status.note(f"reconnecting: {exc.message}")
                stop.wait(pacing.poll_seconds)
                continue
            lost_since = None
            if status is not None:
                status.show(task)
            if task.finished:
                if broke is not None:
                    _tail(api, task_id, stream, sink, offset)
                return task
            stop.wait(pacing.poll_seconds)  # the container stopped a moment ago, or a break


def _tail(api: ApiClient, task_id: str, stream: str, sink: Sink, offset: Offset) -> None:
    """After a break, the rest of an ended task's log, from the log it keeps."""
    try:
        copy_log(api, task_id, stream, sink, offset, follow=False)
    except ApiError as exc:
        if exc.kind not in RETRIED:
            raise


class Watcher:
    """A thread that shows the task's phase every `status_seconds` while the log streams."""

    def __init__(
        self,
        api: ApiClient,
        task_id: str,
        status: Status | None,
        pacing: Pacing,
        stop: threading.Event,
    ) -> None:
        self.api = api
        self.task_id = task_id
        self.status = status
        self.pacing = pacing
        self.stop = stop
        self.thread: threading.Thread | None = None

    def __enter__(self) -> Watcher:
        if self.status is not None:
            self.thread = threading.Thread(target=self._run, name="task-status", daemon=True)
            self.thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=self.pacing.watch_join_seconds)

    def _run(self) -> None:
        assert self.status is not None
        while not self.stop.wait(self.pacing.status_seconds):
            try:
                task = self.api.get(self.task_id)
            except ApiError:
                continue  # the main loop decides what a lost orchestrator means
            if not self.stop.is_set():
                self.status.show(task)
