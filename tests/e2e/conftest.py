"""Fixtures of the end-to-end tests; the helpers behind them live in support.py."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.support import INSTALL_PEERS, PEERS, Toolman, console_script, require


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    (repo / "README.md").write_text("e2e\n")
    return repo


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
