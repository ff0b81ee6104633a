"""Shared helpers of the orchestrator's tests.

The in-process app (`serve_in_process`, the `api` fixture) is `create_app` with its real
lifespan, real SQLite store and the real Docker backend pointed at an engine address
nothing answers on (`NO_ENGINE`): tasks stay `pending` and `/ready` is 503, which is
what the orchestrator does while its engine is away, not a mock of it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx
import pytest
from asgi_lifespan import LifespanManager

from orchestrator.app import create_app
from orchestrator.config import OrchestratorConfig, parse
from orchestrator.settings import Settings

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Running:
    process: subprocess.Popen[str]
    base_url: str


def console_script(name: str) -> str:
    """The installed console script: tests exercise what users run."""
    found = shutil.which(name, path=os.path.dirname(sys.executable))
    if found is None:
        pytest.fail(f"console script {name!r} is not installed next to {sys.executable}")
    return found


TOKEN = "test-token-5b1e"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# An engine address nothing answers on: the backend is real, and unreachable.
NO_ENGINE = "unix:///nonexistent/docker.sock"
TESTS = Path(__file__).resolve().parent
REPO = TESTS.parents[2]
# The operator's servers tasks choose from (toolman's config; never started here).
TOOLMAN_BASE: dict[str, Any] = {
    "servers": {
        "time": {"command": "python3", "args": ["-m", "mcp_server_time"]},
        "git": {"command": "python3", "args": ["-m", "mcp_server_git"]},
    },
    "exposed_tools": {"git": ["git_status", "git_diff*", "git_log"]},
}


def require(condition: bool, reason: str) -> None:
    """Skip when a machine prerequisite is missing; fail instead where CI demands all
    (BUILDKIT_REQUIRE_ALL=1), the rule of the repository's tests/helpers.py."""
    if condition:
        return
    if os.environ.get("BUILDKIT_REQUIRE_ALL", "").strip().lower() in ("1", "true", "yes", "on"):
        pytest.fail(f"required prerequisite missing (BUILDKIT_REQUIRE_ALL=1): {reason}")
    pytest.skip(reason)


def wait_until(check: Callable[[], T | None], *, timeout: float, what: str) -> T:
    """Poll `check` until it returns something truthy, at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.02)


async def eventually(check: Callable[[], Awaitable[T | None]], *, timeout: float, what: str) -> T:
    """`wait_until` for the event loop: polls without blocking it."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        await anyio.sleep(0.02)


def make_config(state_dir: Path, **sections: Any) -> OrchestratorConfig:
    """A config for tests: unreachable engine, these servers, `sections` on top."""
    raw: dict[str, Any] = {
        "state_dir": str(state_dir),
        "docker": {"host": NO_ENGINE},
        "toolman": {"config": TOOLMAN_BASE},
        "task_secrets": {"env": ["GIT_TOKEN", "UNSET_TOKEN"]},
    }
    for key, value in sections.items():
        base = raw.get(key)
        raw[key] = {**base, **value} if isinstance(base, dict) else value
    return parse(raw, "the test's config")


@asynccontextmanager
async def serve_in_process(
    config: OrchestratorConfig, environ: Mapping[str, str] | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan running, behind httpx's ASGI transport."""
    env = {"ORCHESTRATOR_TOKEN": TOKEN, "GIT_TOKEN": "s3cret"} if environ is None else environ
    app = create_app(Settings(config=config), environ=env)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://orchestrator") as client:
            yield client


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the in-process app with the default test config; no token sent."""
    async with serve_in_process(make_config(tmp_path / "state")) as client:
        yield client


async def submit(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    """A task created through the API (201), as the API answered it."""
    response = await client.post("/api/v1/tasks", json={"prompt": "do it", **body}, headers=AUTH)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def start_orchestrator(args: list[str], env: Mapping[str, str]) -> subprocess.Popen[str]:
    """`orchestrator ...` from its console script, output (both streams) to a pipe."""
    return subprocess.Popen(
        [console_script("orchestrator"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **env},
    )


def stop(process: subprocess.Popen[Any]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def answers(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/health", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture
def running_orchestrator(tmp_path: Path) -> Iterator[Running]:
    """The console script serving on a free loopback port, its engine unreachable."""
    port = free_port()
    env = {
        "ORCHESTRATOR_TOKEN": TOKEN,
        "ORCHESTRATOR_STATE_DIR": str(tmp_path / "state"),
        "DOCKER_HOST": NO_ENGINE,
    }
    process = start_orchestrator(["--host", "127.0.0.1", "--port", str(port)], env)
    base_url = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            if process.poll() is not None:
                output = process.stdout.read() if process.stdout else ""
                pytest.fail(f"orchestrator exited with {process.returncode}: {output}")
            return answers(base_url)

        wait_until(up, timeout=20, what="the orchestrator to answer /health")
        yield Running(process, base_url)
    finally:
        stop(process)


# -- the client: `orchestrator task ...` as a person runs it -------------------------------

CLIENT_TIMEOUT = 60.0  # the bound of one client command
TOKEN_ENV = "ORCHESTRATOR_TOKEN"


def client_env(url: str | None, token: str | None = TOKEN) -> dict[str, str]:
    """This environment with the client's variables set (or unset when None)."""
    env = {k: v for k, v in os.environ.items() if k not in ("ORCHESTRATOR_URL", TOKEN_ENV)}
    if url is not None:
        env["ORCHESTRATOR_URL"] = url
    if token is not None:
        env[TOKEN_ENV] = token
    return env


def task_cli(
    url: str | None,
    *args: str,
    token: str | None = TOKEN,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """`orchestrator task ARGS` from the console script, with ORCHESTRATOR_URL and
    ORCHESTRATOR_TOKEN in its environment; at most CLIENT_TIMEOUT seconds."""
    return subprocess.run(
        [console_script("orchestrator"), "task", *args],
        capture_output=True,
        text=True,
        input=stdin,
        env=client_env(url, token),
        timeout=CLIENT_TIMEOUT,
        check=False,
    )


def task_created(url: str, *args: str) -> str:
    """The id `orchestrator task run ARGS` printed (it must succeed)."""
    result = task_cli(url, "run", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()
