from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest


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
# An engine address nothing answers on: the backend is real, and unreachable.
NO_ENGINE = "unix:///nonexistent/docker.sock"


@pytest.fixture
def running_orchestrator(tmp_path: Path) -> Iterator[Running]:
    port = free_port()
    env = os.environ | {
        "ORCHESTRATOR_TOKEN": TOKEN,
        "ORCHESTRATOR_STATE_DIR": str(tmp_path / "state"),
        "DOCKER_HOST": NO_ENGINE,
    }
    process = subprocess.Popen(
        [console_script("orchestrator"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None:
                output = process.stdout.read() if process.stdout else ""
                pytest.fail(f"orchestrator exited with {process.returncode}: {output}")
            try:
                httpx.get(f"{base_url}/health", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    pytest.fail("orchestrator did not answer /health within 20 s")
                time.sleep(0.05)
        yield Running(process, base_url)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
