"""`orchestrator task run --follow` and `task logs -f` against a real orchestrator process.

Its engine is unreachable, so a task stays `pending` and the log request is held open:
what is tested here is what a follower sees when the task is cancelled under it, or when
Ctrl-C stops it. A task that runs (its log streamed, its exit code) needs the real images:
the end-to-end tests cover it; test_client_seams.py covers the same logic at httpx's seam.
"""

from __future__ import annotations

import queue
import signal
import subprocess
import threading
from collections.abc import Callable
from typing import IO

import httpx
from conftest import (
    AUTH,
    CLIENT_TIMEOUT,
    Running,
    client_env,
    console_script,
    task_cli,
    task_created,
)

LINE_TIMEOUT = 30.0


class Lines:
    """A stream of a child process, read line by line by a thread; each wait bounded."""

    def __init__(self, stream: IO[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, wanted: Callable[[str], bool]) -> str:
        while True:
            try:
                line = self._queue.get(timeout=LINE_TIMEOUT)
            except queue.Empty:
                raise AssertionError(f"no such line within {LINE_TIMEOUT} s: {self.seen}") from None
            if line is None:
                raise AssertionError(f"the stream ended without such a line: {self.seen}")
            self.seen.append(line)
            if wanted(line):
                return line

    def rest(self) -> str:
        """Everything after what was waited for, once the process has ended."""
        lines: list[str] = []
        while (line := self._queue.get(timeout=LINE_TIMEOUT)) is not None:
            lines.append(line)
        return "".join(lines)


def follow_in_background(url: str) -> tuple[subprocess.Popen[str], Lines, str]:
    """`orchestrator task run --follow`, once it shows the task pending: the process, its
    stderr and the task's id. SIGINT is restored to its default for the child, as in a
    terminal (a shell's background job would ignore it)."""
    process = subprocess.Popen(
        [console_script("orchestrator"), "task", "run", "--prompt", "wait", "--follow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=client_env(url),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509
    )
    assert process.stderr is not None
    stderr = Lines(process.stderr)
    line = stderr.wait_for(lambda text: text.rstrip().endswith(": pending"))
    task_id = line.split()[1].rstrip(":")
    return process, stderr, task_id


def test_follow_ends_with_the_outcome_when_the_task_is_cancelled(
    running_orchestrator: Running,
) -> None:
    url = running_orchestrator.base_url
    process, stderr, task_id = follow_in_background(url)
    try:
        cancelled = httpx.post(f"{url}/api/v1/tasks/{task_id}/cancel", headers=AUTH, timeout=10)
        assert cancelled.status_code == 202
        assert process.wait(timeout=CLIENT_TIMEOUT) == 130
        rest = stderr.rest()
        assert f"task {task_id} cancelled: " in rest
        assert "tool calls 0 allowed / 0 refused" in rest
        assert process.stdout is not None
        assert process.stdout.read() == ""  # no log: the task never ran
    finally:
        process.kill()
        process.wait(timeout=CLIENT_TIMEOUT)


def test_ctrl_c_stops_following_and_says_how_to_cancel(running_orchestrator: Running) -> None:
    url = running_orchestrator.base_url
    process, stderr, task_id = follow_in_background(url)
    try:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=CLIENT_TIMEOUT) == 130
        rest = stderr.rest()
        assert f"`orchestrator task cancel {task_id}`" in rest
        assert "Traceback" not in rest
    finally:
        process.kill()
        process.wait(timeout=CLIENT_TIMEOUT)
    still = task_cli(url, "get", task_id, "--json")
    assert '"phase": "pending"' in still.stdout  # following stopped; the task did not


def test_logs_follow_of_an_ended_task_returns(running_orchestrator: Running) -> None:
    url = running_orchestrator.base_url
    task_id = task_created(url, "--prompt", "never mind")
    assert task_cli(url, "cancel", task_id).returncode == 0
    result = task_cli(url, "logs", task_id, "-f")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
