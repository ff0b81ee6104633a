"""toolman's console script as a task's sidecar runs it: a generated config as its file,
`AGENT_NAME` in its environment, JSON logs to a file; up once `/ready` answers (which
needs no token: the orchestrator polls it without one)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from conftest import console_script, free_port, stop, wait_until


@contextmanager
def running_toolman(
    config: Mapping[str, Any], agent: str, directory: Path
) -> Iterator[tuple[str, Path]]:
    """toolman on a free loopback port: its base URL and its log file."""
    path = directory / "toolman.json"
    path.write_text(json.dumps(config))
    port = free_port()
    log = directory / "toolman.log"
    env = {
        **os.environ,
        "AGENT_NAME": agent,
        "TOOLMAN_HOST": "127.0.0.1",
        "TOOLMAN_PORT": str(port),
        "TOOLMAN_LOG_FORMAT": "json",
    }
    with log.open("wb") as output:
        process = subprocess.Popen(
            [console_script("toolman"), "--config", str(path)],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            assert process.poll() is None, log.read_text()
            try:
                return httpx.get(f"{url}/ready", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(ready, timeout=30, what="toolman to be ready")
        yield url, log
    finally:
        stop(process)
