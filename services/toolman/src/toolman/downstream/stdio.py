"""A downstream MCP server run as a child process, newline-delimited JSON on stdin/stdout.

The child gets its own process group so that shutting it down also ends
whatever it spawned (``npx`` wrappers, shells). ``close`` always reaps: SIGTERM
to the group, a bounded wait, then SIGKILL and a second bounded wait. On Linux
the child also gets SIGKILL from the kernel if toolman itself dies without a
shutdown (``kill -9``, OOM), so no server outlives its gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Mapping

import orjson

from toolman.downstream.base import Connection, Message, NotificationHandler
from toolman.errors import TransportClosed
from toolman.servers import StdioServer

log = logging.getLogger("toolman.downstream")

# Only these variables of toolman's own environment reach a child: toolman's
# environment may hold agent tokens that downstream servers must not see.
INHERITED_ENV = (
    "HOME",
    "LANG",
    "LC_ALL",
    "LOGNAME",
    "PATH",
    "SHELL",
    "TERM",
    "TMPDIR",
    "TZ",
    "USER",
)
MAX_LINE = 64 * 1024 * 1024
TERMINATE_GRACE_SECONDS = 3.0


def _parent_death_signal() -> Callable[[], None] | None:
    """A pre-exec hook that asks Linux to SIGKILL the child when toolman dies."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    pr_set_pdeathsig = 1

    def hook() -> None:  # runs in the forked child: no imports, no allocation-heavy work
        prctl(pr_set_pdeathsig, signal.SIGKILL)

    return hook


PARENT_DEATH_SIGNAL = _parent_death_signal()


def child_env(config: StdioServer, environ: Mapping[str, str]) -> dict[str, str]:
    env = {key: environ[key] for key in INHERITED_ENV if key in environ}
    env.update(config.env)
    return env


class StdioConnection(Connection):
    def __init__(self, config: StdioServer, on_notification: NotificationHandler) -> None:
        super().__init__(config.name, on_notification)
        self._config = config
        self._process: asyncio.subprocess.Process | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    async def start(self) -> None:
        config = self._config
        self._process = await asyncio.create_subprocess_exec(
            config.command,
            *config.args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=child_env(config, os.environ),
            cwd=config.cwd,
            start_new_session=True,
            preexec_fn=PARENT_DEATH_SIGNAL,  # one prctl call; toolman runs no threads
            limit=MAX_LINE,
        )
        self._tasks = [
            asyncio.create_task(self._read_stdout(), name=f"{self.server}-stdout"),
            asyncio.create_task(self._read_stderr(), name=f"{self.server}-stderr"),
            asyncio.create_task(self._watch_exit(), name=f"{self.server}-wait"),
        ]

    async def _send(self, message: Message) -> None:
        process = self._process
        if process is None or process.stdin is None or self.closed.is_set():
            raise TransportClosed(self.close_reason or "not started")
        if process.stdin.is_closing():
            raise TransportClosed("stdin closed: the process is exiting")
        try:
            process.stdin.write(orjson.dumps(message) + b"\n")
            await process.stdin.drain()
        except (OSError, RuntimeError) as exc:  # uvloop raises RuntimeError for a closed pipe
            raise TransportClosed(f"stdin closed: {exc}") from None

    async def _read_stdout(self) -> None:
        assert self._process is not None
        assert self._process.stdout is not None
        stdout = self._process.stdout
        while True:
            try:
                line = await stdout.readline()
            except ValueError:  # a line above MAX_LINE: the stream cannot be resynchronised
                self._mark_closed(f"sent a message larger than {MAX_LINE} bytes")
                return
            if not line:
                return  # EOF: _watch_exit reports the exit status
            if line.isspace():
                continue
            try:
                message = orjson.loads(line)
            except orjson.JSONDecodeError:
                log.warning("non-JSON line on stdout ignored", extra={"server": self.server})
                continue
            self._receive(message)

    async def _read_stderr(self) -> None:
        assert self._process is not None
        assert self._process.stderr is not None
        stderr = self._process.stderr
        while True:
            try:
                line = await stderr.readline()
            except ValueError:
                continue  # an overlong stderr line is dropped, not fatal
            if not line:
                return
            text = line.decode("utf-8", "replace").rstrip()
            if text:
                log.info(text[:2000], extra={"server": self.server, "stream": "stderr"})

    async def _watch_exit(self) -> None:
        assert self._process is not None
        code = await self._process.wait()
        self._mark_closed(f"process exited with code {code}")
        self._kill_group(signal.SIGKILL)  # leftovers of a crashed server

    def _kill_group(self, sig: signal.Signals) -> None:
        if self._process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, sig)

    async def close(self) -> None:
        process = self._process
        self._mark_closed("closed by toolman")
        if process is not None:
            if process.returncode is None:
                if process.stdin is not None:
                    process.stdin.close()
                self._kill_group(signal.SIGTERM)
                try:
                    await asyncio.wait_for(process.wait(), TERMINATE_GRACE_SECONDS)
                except TimeoutError:
                    self._kill_group(signal.SIGKILL)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(process.wait(), TERMINATE_GRACE_SECONDS)
            self._kill_group(signal.SIGKILL)  # grandchildren that outlived the leader
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
