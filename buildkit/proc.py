"""The one seam for subprocesses: argument lists, never shell strings; output captured.

Every command is announced through `on_command` before it runs (the UI echoes it) and
its merged stdout/stderr is passed line by line to `on_output` (shown live in --debug).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from buildkit.errors import StageFailed, ToolMissingError

DEFAULT_TIMEOUT = 3600.0
TAIL_LINES = 40


def quote(argv: Sequence[str]) -> str:
    return shlex.join(argv)


@dataclass(frozen=True)
class CallResult:
    argv: tuple[str, ...]
    returncode: int
    output: str
    duration: float
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    @property
    def command(self) -> str:
        return quote(self.argv)

    def tail(self, lines: int = TAIL_LINES) -> str:
        return "\n".join(self.output.rstrip("\n").splitlines()[-lines:])


class Cancelled(StageFailed):
    """The run was stopped (fail-fast) while this command ran or before it started."""


@dataclass
class Runner:
    on_command: Callable[[str], None] = field(default=lambda _command: None)
    on_output: Callable[[str], None] = field(default=lambda _line: None)
    timeout: float = DEFAULT_TIMEOUT
    _cancelled: threading.Event = field(default_factory=threading.Event)
    _current: subprocess.Popen[str] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def cancel(self) -> None:
        """Stop: kill the command running now (its whole process group), start no other."""
        with self._lock:
            self._cancelled.set()
            if self._current is not None and self._current.poll() is None:
                _kill_group(self._current)

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def call(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> CallResult:
        argv = tuple(str(arg) for arg in argv)
        if self.cancelled:
            raise Cancelled(f"not started: {quote(argv)}")
        self.on_command(quote(argv))
        merged_env = {**os.environ, **env} if env else None
        started = time.monotonic()
        try:
            process = subprocess.Popen(
                argv,
                cwd=cwd,
                env=merged_env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                start_new_session=True,  # a timeout kills the whole process group
            )
        except FileNotFoundError:
            raise ToolMissingError(
                f"{argv[0]!r} is not installed or not on PATH",
                hint="install buildkit's tools: pip install -e '.[dev]' (or run through nox)",
            ) from None
        with self._lock:
            self._current = process
            if self._cancelled.is_set():  # cancelled between the check above and now
                _kill_group(process)
        timed_out = threading.Event()
        limit = self.timeout if timeout is None else timeout
        timer = threading.Timer(limit, _expire, args=(process, timed_out))
        timer.start()
        chunks: list[str] = []
        try:
            assert process.stdout is not None
            for line in process.stdout:
                chunks.append(line)
                self.on_output(line.rstrip("\n"))
            returncode = process.wait()
        finally:
            timer.cancel()
            if process.poll() is None:  # interrupted while reading: leave no orphans
                _kill_group(process)
                process.wait()
            with self._lock:
                self._current = None
        if self._cancelled.is_set():
            raise Cancelled(f"killed: {quote(argv)}", command=quote(argv), output="".join(chunks))
        output = "".join(chunks)
        if timed_out.is_set():
            output += f"\n[buildkit] killed after {limit:.0f} s (timeout)\n"
        return CallResult(argv, returncode, output, time.monotonic() - started, timed_out.is_set())


def _expire(process: subprocess.Popen[str], flag: threading.Event) -> None:
    flag.set()
    _kill_group(process)


def _kill_group(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
