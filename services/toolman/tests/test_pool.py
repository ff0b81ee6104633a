"""A pool of stdio processes for a stateless server (``"instances": N``), with real processes.

Concurrent calls spread over the copies (least calls in flight), a killed copy
is restarted while the others keep answering, a copy whose lists differ from
the first ready one is kept out of rotation, and ``instances`` is checked.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import SDK_SERVER, Toolman, mcp_client, wait_until

Factory = Callable[..., Toolman]
# Starts the SDK test server; the second process started gets one extra tool.
ODD_ONE_OUT = """
import fcntl, os, runpy, sys
counter = sys.argv.pop(1)
with open(counter, "a+") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    f.seek(0)
    n = len(f.read())
    f.write("x")
if n == 1:
    os.environ["TEST_SERVER_EXTRA_TOOLS"] = "only_in_one"
sys.argv[0] = sys.argv[1]
runpy.run_path(sys.argv.pop(1), run_name="__main__")
"""


def pool_ready(toolman: Toolman, count: int) -> list[int]:
    def pids() -> list[int] | None:
        state = toolman.server_state("test")
        found = [pid for pid in state.get("pids", []) if pid is not None]
        return found if state["state"] == "ready" and len(found) == count else None

    return wait_until(pids, timeout=60, what=f"{count} pool members ready")


async def pids_of_concurrent_calls(url: str, count: int) -> list[int]:
    async with mcp_client(url, mode="legacy") as client:

        async def pid() -> int:
            # long enough that all calls are in flight together even on a loaded machine
            result = await client.call_tool("test_sleep_pid", {"seconds": 2})
            assert result.structured_content is not None
            return int(result.structured_content["result"])

        return list(await asyncio.gather(*(pid() for _ in range(count))))


def test_concurrent_calls_spread_over_the_instances_and_a_killed_one_comes_back(
    toolman_factory: Factory, sdk_server: dict[str, Any]
) -> None:
    server = {**sdk_server, "instances": 3, "env": {"TEST_SERVER_EXTRA_TOOLS": ""}}
    config = {"servers": {"test": server}, "supervisor": {"backoff_initial_seconds": 0.1}}
    toolman = toolman_factory(config)
    members = pool_ready(toolman, 3)
    assert len(set(members)) == 3

    answered = asyncio.run(pids_of_concurrent_calls(toolman.mcp_url, 6))
    assert set(answered) == set(members)  # every instance took calls, none sat idle

    os.kill(members[0], signal.SIGKILL)
    wait_until(
        lambda: members[0] not in toolman.server_state("test")["pids"],
        timeout=30,
        what="the killed member noticed",
    )
    during = asyncio.run(pids_of_concurrent_calls(toolman.mcp_url, 4))
    assert members[0] not in during  # the others answer; nobody gets -32010
    back = pool_ready(toolman, 3)  # the killed one is already out of the list
    assert members[0] not in back
    assert set(back) - set(members)
    assert toolman.server_state("test")["restarts"] >= 1


def test_a_member_whose_lists_differ_is_kept_out_of_rotation(
    toolman_factory: Factory, peer_python: Path, tmp_path: Path
) -> None:
    counter = tmp_path / "started"
    server = {
        "command": str(peer_python),
        "args": ["-c", ODD_ONE_OUT, str(counter), str(SDK_SERVER)],
        "instances": 2,
    }
    toolman = toolman_factory({"servers": {"test": server}})
    members = pool_ready(toolman, 2)
    wait_until(
        lambda: "pool member out of rotation" in toolman.log_text(), timeout=30, what="warning"
    )
    answered = asyncio.run(pids_of_concurrent_calls(toolman.mcp_url, 4))
    assert len(set(answered)) == 1
    assert set(answered) < set(members)


def test_instances_must_be_a_whole_number_from_1_and_only_for_stdio(
    toolman_factory: Factory, sdk_server: dict[str, Any]
) -> None:
    for bad, key in (
        ({**sdk_server, "instances": 0}, "servers.test.instances"),
        ({"url": "http://127.0.0.1:9/mcp", "instances": 2}, "servers.test.instances"),
    ):
        toolman = toolman_factory({"servers": {"test": bad}}, ready=False)
        assert toolman.process is not None
        assert toolman.process.wait(timeout=30) == 2
        assert key in toolman.log_text()
