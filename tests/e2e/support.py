"""What the end-to-end tests share: prerequisites, a real toolman process, an agent session.

Console scripts come from ``build/wheel-check/<service>/bin`` (buildkit's wheel
stage creates those venvs); MCP peers from ``ci/install-mcp-peers.sh``
(``$MCP_PEERS_DIR``, default ``build/mcp-peers``). A missing prerequisite skips
the test with the command that provides it, or fails it when
``BUILDKIT_REQUIRE_ALL=1`` (CI), so CI never passes by skipping.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import tarfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TextIO

import anyio
import httpx
from mcp import ClientSession, MCPError, StdioServerParameters
from mcp.client.session import MessageHandlerFnT
from mcp.client.stdio import stdio_client

from buildkit.config import CLAUDE_TARGET, load_project
from buildkit.deps.claude_code import BINARY_IN_PACKAGE, NPM_PLATFORMS
from tests import helpers

REPO = Path(__file__).resolve().parents[2]
WHEEL_CHECK = REPO / "build" / "wheel-check"
PEERS = Path(os.environ.get("MCP_PEERS_DIR") or REPO / "build" / "mcp-peers")
INSTALL_PEERS = "run `bash ci/install-mcp-peers.sh`"
DEV_TOKEN = "e2e-dev-token-0f3c"
READER_TOKEN = "e2e-reader-token-9a1d"


def require(ok: bool, missing: str, how: str) -> None:
    """Skip (or, with BUILDKIT_REQUIRE_ALL=1, fail) when a prerequisite is missing."""
    helpers.require(ok, f"{missing}; {how}")


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


def claude_code(directory: Path) -> Path:
    """The real Claude Code binary of this machine's platform, unpacked into `directory` from
    the npm tarball buildkit caches in build/claude-code/<version>/ (the pinned version)."""
    claude = load_project(REPO).claude
    assert claude is not None, "pyproject.toml has no [tool.buildkit.claude_image]"
    target = "linux/arm64" if platform.machine() in ("aarch64", "arm64") else "linux/amd64"
    cache = REPO / "build" / CLAUDE_TARGET / claude.version
    found = sorted(cache.glob(f"*-{NPM_PLATFORMS[target]}-{claude.version}.tgz"))
    require(
        bool(found),
        f"Claude Code {claude.version} for {target} is not in {cache.relative_to(REPO)}",
        "run `python -m buildkit wheelhouse --claude-image --services mcp_wrapper "
        f"--platform {target}` (nox -s tests does)",
    )
    binary = directory / "claude"
    with tarfile.open(found[0]) as archive, binary.open("wb") as out:
        source = archive.extractfile(BINARY_IN_PACKAGE)
        assert source is not None, f"{found[0].name} holds no {BINARY_IN_PACKAGE}"
        shutil.copyfileobj(source, out)
    binary.chmod(0o755)
    return binary


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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

    def reload(self) -> None:
        """Ask toolman to re-read its config file now (SIGHUP)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGHUP)

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

    def audit_lines(self) -> list[dict[str, Any]]:
        """toolman's audit lines so far (logger ``toolman.audit``); complete once stopped."""
        lines = self.log_path.read_text(errors="replace").splitlines()
        found = [json.loads(line) for line in lines if '"toolman.audit"' in line]
        return [line for line in found if line.get("logger") == "toolman.audit"]


# -- the agent side ---------------------------------------------------------------------

DEADLINE = 60.0  # seconds one scenario may take


@asynccontextmanager
async def agent(
    wrapper: Path,
    url: str,
    token: str | None,
    log: Path,
    message_handler: MessageHandlerFnT | None = None,
) -> AsyncIterator[ClientSession]:
    """A Claude-Code-like MCP client with mcp-wrapper as its stdio server."""
    env = {"MCP_TOOLMAN_SERVER_URL": url, "MCP_WRAPPER_TIMEOUT": "20"}
    if token is not None:
        env["MCP_TOOLMAN_TOKEN"] = token
    with log.open("a") as errlog:
        params = StdioServerParameters(command=str(wrapper), env=env)
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write, message_handler=message_handler) as session,
        ):
            await session.initialize()
            yield session


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    async def bounded() -> None:
        with anyio.fail_after(DEADLINE):
            await scenario()

    anyio.run(bounded)


def text_of(result: object) -> str:
    content = getattr(result, "content", [])
    return "".join(getattr(block, "text", "") for block in content)


def mcp_error_in(exc: BaseException) -> MCPError:
    """The MCPError inside the task-group exception groups the SDK raises on the way out."""
    if isinstance(exc, MCPError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            try:
                return mcp_error_in(inner)
            except AssertionError:
                continue
    raise AssertionError(f"no MCPError in {exc!r}") from exc
