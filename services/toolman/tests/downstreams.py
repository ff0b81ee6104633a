"""The conformance scenario server (peers/conformance_server.py) as a fixture.

Imported by the test modules that use it, so pytest finds the fixture there.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import TESTS, free_port, wait_until

SCENARIO_SERVER = TESTS / "peers" / "conformance_server.py"


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def scenario_server_url(peer_python: Path) -> Iterator[str]:
    """The scenario server over Streamable HTTP on 127.0.0.1; stopped after the module."""
    port = free_port()
    process = subprocess.Popen(
        [str(peer_python), str(SCENARIO_SERVER), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(
            lambda: process.poll() is None and _listening(port),
            timeout=30,
            what="the scenario server to listen",
        )
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
