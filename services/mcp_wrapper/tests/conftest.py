"""Fixtures: a fake toolman on loopback, the real ``mcp-wrapper`` script in a subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import IO, Any

import pytest
from fake_toolman import FakeToolman, ServerThread

INIT_PARAMS = {
    "protocolVersion": "2025-06-18",
    "capabilities": {"sampling": {}},
    "clientInfo": {"name": "unit-test-client", "version": "1.0"},
}


def wrapper_script() -> str:
    found = shutil.which("mcp-wrapper", path=os.path.dirname(sys.executable))
    assert found, (
        "mcp-wrapper is not installed in this environment; "
        "install it with: pip install -e 'services/mcp_wrapper[test]'"
    )
    return found


class Wrapper:
    """The real mcp-wrapper process, driven over its stdin/stdout pipes with bounded waits."""

    def __init__(self, url: str, **env: str) -> None:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(("MCP_", "BUILDKIT_"))}
        full_env |= {"MCP_TOOLMAN_SERVER_URL": url} | env
        self.process = subprocess.Popen(
            [wrapper_script()],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=full_env,
        )
        assert self.process.stdout
        assert self.process.stderr
        self._lines: queue.Queue[bytes | None] = queue.Queue()
        self.stderr_lines: list[str] = []
        self._pumps = [
            threading.Thread(target=self._pump_stdout, args=(self.process.stdout,), daemon=True),
            threading.Thread(target=self._pump_stderr, args=(self.process.stderr,), daemon=True),
        ]
        for pump in self._pumps:
            pump.start()
        self.raw_stdout: list[bytes] = []

    def _pump_stdout(self, stream: IO[bytes]) -> None:
        for line in stream:
            self._lines.put(line)
        self._lines.put(None)

    def _pump_stderr(self, stream: IO[bytes]) -> None:
        for line in stream:
            self.stderr_lines.append(line.decode(errors="replace"))

    @property
    def stderr(self) -> str:
        return "".join(self.stderr_lines)

    def send(self, message: dict[str, Any] | bytes) -> None:
        assert self.process.stdin
        data = message if isinstance(message, bytes) else json.dumps(message).encode() + b"\n"
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def request(
        self, request_id: int | str, method: str, params: dict[str, Any] | None = None
    ) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)

    def call_tool(self, request_id: int | str, name: str, **arguments: Any) -> None:
        self.request(request_id, "tools/call", {"name": name, "arguments": arguments})

    def read_json(self, timeout: float = 10.0) -> Any:
        """The next stdout line, parsed as JSON (an array for a batch answer)."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no output within {timeout} s; stderr:\n{self.stderr}") from None
        assert line is not None, f"stdout closed; stderr:\n{self.stderr}"
        self.raw_stdout.append(line)
        assert line.endswith(b"\n")
        return json.loads(line)

    def read(self, timeout: float = 10.0) -> dict[str, Any]:
        """The next stdout line, parsed: every line must be exactly one JSON-RPC message."""
        message = self.read_json(timeout)
        line = self.raw_stdout[-1]
        assert isinstance(message, dict), line
        assert message.get("jsonrpc") == "2.0", line
        return message

    def read_answer(self, request_id: int | str, timeout: float = 10.0) -> dict[str, Any]:
        """Read until the answer to ``request_id``; other messages are kept in ``extra``."""
        deadline = time.monotonic() + timeout
        while True:
            message = self.read(max(0.0, deadline - time.monotonic()))
            if "method" not in message and message.get("id") == request_id:
                return message
            self.extra.append(message)

    extra: list[dict[str, Any]]

    def assert_silent(self, seconds: float) -> None:
        try:
            line = self._lines.get(timeout=seconds)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected output: {line!r}")

    def initialize(self) -> dict[str, Any]:
        self.request("init", "initialize", INIT_PARAMS)
        answer = self.read_answer("init")
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return answer

    def close_stdin(self) -> None:
        assert self.process.stdin
        self.process.stdin.close()

    def wait(self, timeout: float = 10.0) -> int:
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        for pump in self._pumps:
            pump.join(timeout=5)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None and not stream.closed:
                with contextlib.suppress(BrokenPipeError):
                    stream.close()


@pytest.fixture
def fake() -> FakeToolman:
    return FakeToolman()


@pytest.fixture
def server(fake: FakeToolman) -> Iterator[ServerThread]:
    thread = ServerThread(fake).start()
    yield thread
    thread.stop()


@pytest.fixture
def spawn(server: ServerThread) -> Iterator[Any]:
    started: list[Wrapper] = []

    def start(url: str | None = None, **env: str) -> Wrapper:
        wrapper = Wrapper(url or server.url, **env)
        wrapper.extra = []
        started.append(wrapper)
        return wrapper

    yield start
    for wrapper in started:
        wrapper.kill()
