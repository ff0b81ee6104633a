"""Cross-service end-to-end fixtures: the services as installed from their wheels, real MCP peers.

Console scripts come from ``build/wheel-check/<service>/bin`` (buildkit's wheel
stage creates those venvs); MCP peers from ``ci/install-mcp-peers.sh``
(``$MCP_PEERS_DIR``, default ``build/mcp-peers``). A missing prerequisite skips
the test with the command that provides it — or fails it when
``BUILDKIT_REQUIRE_ALL=1`` (CI), so CI never passes by skipping.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
WHEEL_CHECK = REPO / "build" / "wheel-check"
PEERS = Path(os.environ.get("MCP_PEERS_DIR") or REPO / "build" / "mcp-peers")
INSTALL_PEERS = "run `bash ci/install-mcp-peers.sh`"
DEV_TOKEN = "e2e-dev-token-0f3c"
READER_TOKEN = "e2e-reader-token-9a1d"


def require(ok: bool, missing: str, how: str) -> None:
    """Skip (or, with BUILDKIT_REQUIRE_ALL=1, fail) when a prerequisite is missing."""
    if ok:
        return
    message = f"{missing}; {how}"
    if os.environ.get("BUILDKIT_REQUIRE_ALL") == "1":
        pytest.fail(f"required prerequisite missing (BUILDKIT_REQUIRE_ALL=1): {message}")
    pytest.skip(message)


def console_script(service: str, script: str) -> Path:
    path = WHEEL_CHECK / service / "bin" / script
    require(
        os.access(path, os.X_OK),
        f"{path.relative_to(REPO)} is not installed",
        f"build the wheels (`nox -s wheels`), or for development: "
        f"`uv venv build/wheel-check/{service} && uv pip install "
        f"--python build/wheel-check/{service}/bin/python -e services/{service}`",
    )
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def wrapper_script() -> Path:
    return console_script("mcp_wrapper", "mcp-wrapper")


@pytest.fixture(scope="session")
def toolman_script() -> Path:
    return console_script("toolman", "toolman")


@pytest.fixture(scope="session")
def peers_python() -> Path:
    python = PEERS / "venv" / "bin" / "python"
    probe = [str(python), "-c", "import mcp_server_time, mcp_server_git"]
    ok = python.exists() and subprocess.run(probe, capture_output=True, check=False).returncode == 0
    require(
        ok, f"mcp-server-time / mcp-server-git are not installed in {PEERS}/venv", INSTALL_PEERS
    )
    return python


@pytest.fixture(scope="session")
def everything_js() -> Path:
    script = PEERS / "node/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
    require(
        script.is_file(),
        f"@modelcontextprotocol/server-everything is not in {PEERS}/node",
        INSTALL_PEERS,
    )
    return script


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    (repo / "README.md").write_text("e2e\n")
    return repo


class Toolman:
    """A real toolman process on one loopback port, which can be stopped and started again."""

    def __init__(self, script: Path, config: dict[str, Any], workdir: Path) -> None:
        self.script = script
        self.port = free_port()
        self.config_path = workdir / "toolman.json"
        self.config_path.write_text(json.dumps(config))
        self.log_path = workdir / "toolman.log"
        self.env = os.environ | {"E2E_DEV_TOKEN": DEV_TOKEN, "E2E_READER_TOKEN": READER_TOKEN}
        self.process: subprocess.Popen[bytes] | None = None
        self._log: TextIO | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def start(self, timeout: float = 60.0) -> Toolman:
        self._log = self.log_path.open("a")
        self.process = subprocess.Popen(
            [
                str(self.script),
                "--config",
                str(self.config_path),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.env,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"toolman exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/ready", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"toolman was not ready within {timeout} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture
def toolman(
    toolman_script: Path, peers_python: Path, git_repo: Path, tmp_path: Path
) -> Iterator[Toolman]:
    """toolman fronting mcp-server-time and mcp-server-git, with two agents.

    ``dev`` may use everything; ``reader`` only the time server, and not convert_time.
    """
    config = {
        "servers": {
            "time": {
                "command": str(peers_python),
                "args": ["-m", "mcp_server_time", "--local-timezone", "UTC"],
            },
            "git": {
                "command": str(peers_python),
                "args": ["-m", "mcp_server_git", "--repository", str(git_repo)],
            },
        },
        "agent_policies": {
            "dev": {},
            "reader": {"allowed_servers": ["time"], "blocked_tools": ["time_convert_time"]},
        },
        "auth": {
            "tokens": [
                {"agent": "dev", "env": "E2E_DEV_TOKEN"},
                {"agent": "reader", "env": "E2E_READER_TOKEN"},
            ]
        },
    }
    running = Toolman(toolman_script, config, tmp_path)
    try:
        yield running.start()
    finally:
        running.stop()
