"""Shared test helpers: real MCP peers, a real toolman process, bounded waits.

Peers live outside the test environment (ci/install-mcp-peers.sh). A test
whose peer is missing is skipped with the fix, except under
BUILDKIT_REQUIRE_ALL=1 (CI), where it fails so nothing is silently skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import httpx
import pytest
from mcp import Client
from mcp.client.session import MessageHandlerFnT
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

T = TypeVar("T")

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parents[2]
PEERS_DIR = Path(os.environ.get("MCP_PEERS_DIR") or REPO / "build" / "mcp-peers")
SDK_SERVER = TESTS / "peers" / "sdk_server.py"
CLIENT_INFO = {"capabilities": {}, "clientInfo": {"name": "raw-test", "version": "1"}}


def initialize(version: str = "2025-11-25", request_id: int = 0) -> dict[str, Any]:
    """A raw initialize request."""
    params = {**CLIENT_INFO, "protocolVersion": version}
    return {"jsonrpc": "2.0", "id": request_id, "method": "initialize", "params": params}


def missing(what: str) -> NoReturn:
    """Skip for a missing peer, or fail when CI demands that everything runs."""
    message = f"{what}; run ci/install-mcp-peers.sh"
    if os.environ.get("BUILDKIT_REQUIRE_ALL") == "1":
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], T | None], *, timeout: float, what: str) -> T:
    """Poll ``check`` until it returns something truthy, at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def console_script(name: str) -> str:
    """The installed console script: tests exercise what users run."""
    found = shutil.which(name, path=os.path.dirname(sys.executable))
    if found is None:
        pytest.fail(f"console script {name!r} is not installed next to {sys.executable}")
    return found


@pytest.fixture(scope="session", autouse=True)
def no_child_left() -> Iterator[None]:
    """After the whole run, no process any test started may still be alive."""
    yield
    leftovers: set[int] = set()

    def none_left() -> bool:
        leftovers.clear()
        leftovers.update(descendants(os.getpid()))
        return not leftovers

    deadline = time.monotonic() + 15
    while not none_left() and time.monotonic() < deadline:
        time.sleep(0.1)
    if leftovers:
        commands = [command_line(pid) for pid in sorted(leftovers)]
        pytest.fail(f"processes left behind by the tests: {commands}")


@pytest.fixture(scope="session")
def peer_python() -> Path:
    python = PEERS_DIR / "venv" / "bin" / "python"
    if not python.exists():
        missing(f"no MCP peers venv at {python}")
    return python


@pytest.fixture(scope="session")
def sdk_server(peer_python: Path) -> dict[str, Any]:
    """Config entry for the SDK test server over stdio."""
    return {"command": str(peer_python), "args": [str(SDK_SERVER)]}


@pytest.fixture(scope="session")
def time_server(peer_python: Path) -> dict[str, Any]:
    if not list((PEERS_DIR / "venv" / "lib").glob("python3*/site-packages/mcp_server_time")):
        missing("mcp-server-time is not installed in the peers venv")
    return {
        "command": str(peer_python),
        "args": ["-m", "mcp_server_time", "--local-timezone", "UTC"],
    }


@pytest.fixture(scope="session")
def git_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("repo")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    (repo / "README").write_text("hello\n")
    for argv in (["init", "-q", "-b", "main"], ["add", "README"], ["commit", "-q", "-m", "first"]):
        subprocess.run(["git", "-C", str(repo), *argv], check=True, env=env, timeout=30)
    return repo


@pytest.fixture(scope="session")
def git_server(peer_python: Path, git_repo: Path) -> dict[str, Any]:
    if not list((PEERS_DIR / "venv" / "lib").glob("python3*/site-packages/mcp_server_git")):
        missing("mcp-server-git is not installed in the peers venv")
    return {"command": str(peer_python), "args": ["-m", "mcp_server_git", "-r", str(git_repo)]}


def stop_process(process: subprocess.Popen[Any]) -> None:
    """SIGTERM, then SIGKILL if it has not exited within 10 s; always reaped."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid``, from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]
    except OSError:
        return f"{pid} (exited)"


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@dataclass
class Toolman:
    """A real toolman process started from its console script with a config file."""

    directory: Path
    config: dict[str, Any]
    env: dict[str, str] | None = None
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.mcp_url = f"{self.base_url}/mcp"
        self.config_path = self.directory / "toolman.json"
        self.log_path = self.directory / "toolman.log"
        self.write_config(self.config)

    def write_config(self, config: dict[str, Any]) -> None:
        self.config = config
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(config))
        tmp.replace(self.config_path)  # atomic, like a ConfigMap update

    def start(self, *, ready: bool = True) -> Toolman:
        env = {**os.environ, "TOOLMAN_LOG_FORMAT": "json", **(self.env or {})}
        with self.log_path.open("ab") as log:  # a file, never an unread pipe that could fill up
            self.process = subprocess.Popen(
                [console_script("toolman"), "--config", str(self.config_path),
                 "--host", "127.0.0.1", "--port", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT, env=env,
            )  # fmt: skip
        if ready:
            wait_until(self._is_ready, timeout=60, what="toolman /ready")
        return self

    def _is_ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            pytest.fail(f"toolman exited with {self.process.returncode}:\n{self.log_text()}")
        try:
            return httpx.get(f"{self.base_url}/ready", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def ready(self) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(f"{self.base_url}/ready", timeout=5).json()
        return body

    def server_state(self, name: str) -> dict[str, Any]:
        state: dict[str, Any] = self.ready()["servers"][name]
        return state

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_records(self) -> list[dict[str, Any]]:
        records = []
        for line in self.log_text().splitlines():
            if line.startswith("{"):
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return records

    def audits(
        self, match: Callable[[dict[str, Any]], bool] = lambda _: True, *, count: int = 1
    ) -> list[dict[str, Any]]:
        """Audit records matching ``match``, waiting (bounded) until ``count`` are written.

        toolman batches its log lines per event-loop turn, so a line can land a
        few milliseconds after the call it describes has been answered.
        """

        def found() -> list[dict[str, Any]] | None:
            records = [
                r for r in self.log_records() if r.get("logger") == "toolman.audit" and match(r)
            ]
            return records if len(records) >= count else None

        return wait_until(found, timeout=10, what=f"{count} audit line(s)")

    def signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def stop(self) -> int:
        """SIGTERM and wait (bounded); SIGKILL only if it hangs, which fails the test."""
        process = self.process
        if process is None or process.poll() is not None:
            return process.returncode if process else 0
        process.terminate()
        try:
            return process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
            pytest.fail("toolman did not stop within 20 s of SIGTERM")


@pytest.fixture
def toolman_factory(tmp_path: Path) -> Iterator[Callable[..., Toolman]]:
    """Start toolman processes; every one is stopped (and checked for leftovers) at the end."""
    started: list[Toolman] = []

    def make(
        config: dict[str, Any], *, env: dict[str, str] | None = None, ready: bool = True
    ) -> Toolman:
        directory = tmp_path / f"toolman{len(started)}"
        directory.mkdir()
        toolman = Toolman(directory, config, env)
        started.append(toolman)
        return toolman.start(ready=ready)

    yield make
    for toolman in started:
        toolman.stop()


@asynccontextmanager
async def mcp_client(
    url: str,
    token: str | None = None,
    *,
    message_handler: MessageHandlerFnT | None = None,
    mode: str = "auto",
) -> AsyncIterator[Client]:
    """The official SDK's Streamable HTTP client, with a bearer token when given."""
    headers = {"Authorization": f"Bearer {token}"} if token else None
    async with create_mcp_http_client(headers=headers) as http:
        transport = streamable_http_client(url, http_client=http)
        async with Client(
            transport,
            message_handler=message_handler,
            mode=mode,
            read_timeout_seconds=60,
            cache=None,
        ) as client:
            yield client


@dataclass
class Running:
    process: subprocess.Popen[str]
    base_url: str


@pytest.fixture
def running_toolman() -> Iterator[Running]:
    """toolman with no config file at all (the bare /health case)."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key != "TOOLMAN_CONFIG_PATH"}
    process = subprocess.Popen(
        [console_script("toolman"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    base_url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if process.poll() is not None:
            pytest.fail(f"toolman exited with {process.returncode}")
        try:
            return httpx.get(f"{base_url}/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(up, timeout=20, what="toolman /health")
        yield Running(process, base_url)
    finally:
        stop_process(process)
