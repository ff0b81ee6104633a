"""Fixtures of the end-to-end tests; the helpers behind them live in support.py."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from tests.e2e import deployment
from tests.e2e.images import sweep, untag
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


# -- the orchestrator's platform (tests/e2e/deployment.py) ---------------------------------


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[docker.DockerClient]:
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except docker.errors.DockerException as exc:
        require(False, f"no Docker engine answers ({exc})", deployment.PREPARE)
        raise
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="session")
def platform_images(
    docker_engine: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[deployment.PlatformImages]:
    """Every image of the platform, built by buildkit from this tree (once per session)."""
    prefix = f"localhost:5000/e2e-platform-{deployment.RUN_ID}/platform"
    try:
        yield deployment.build_platform_images(
            docker_engine, prefix, tmp_path_factory.mktemp("platform-images")
        )
    finally:
        sweep(docker_engine, deployment.LABEL, deployment.RUN_ID)
        sweep(docker_engine, deployment.INSTANCE_LABEL, deployment.INSTANCE)
        untag(docker_engine, prefix)


@pytest.fixture(scope="session")
def task_network(docker_engine: docker.DockerClient) -> Iterator[str]:
    with deployment.e2e_network(docker_engine) as name:
        yield name


@pytest.fixture(scope="session")
def model_server(docker_engine: docker.DockerClient, task_network: str) -> deployment.ModelServer:
    return deployment.start_model_server(docker_engine, task_network)
