"""The conformance scenario server (peers/conformance_server.py) as a fixture, and toolman
in front of it.

Imported by the test modules that use it, so pytest finds the fixture there.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import TESTS, Toolman, free_port, stop_process, wait_until

SCENARIO_SERVER = TESTS / "peers" / "conformance_server.py"


def listening(port: int) -> bool:
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
            lambda: process.poll() is None and listening(port),
            timeout=30,
            what="the scenario server to listen",
        )
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        stop_process(process)


def passthrough(toolman_factory: Callable[..., Toolman], url: str) -> Toolman:
    """toolman mounting the scenario server at ``url`` without a prefix, once it is ready."""
    # "protocol": "2025": the scenario tools ask through the 2025 back channel
    # (ctx.session.create_message, elicit_form), which the SDK refuses on 2026-07-28
    # requests (NoBackChannelError); only a session keeps them working, for clients of
    # either era (a 2026-07-28 client gets them as input_required from toolman).
    scenarios = {"url": url, "prefix": False, "protocol": "2025"}
    toolman = toolman_factory({"servers": {"scenarios": scenarios}})
    wait_until(
        lambda: toolman.server_state("scenarios")["state"] == "ready",
        timeout=30,
        what="the scenario server ready behind toolman",
    )
    return toolman
