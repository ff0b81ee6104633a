"""The reference server that exercises the whole protocol (@modelcontextprotocol/server-everything):
once behind toolman, once as the wrapper's own upstream over Streamable HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mcp import ClientSession, StdioServerParameters, types
from mcp.client.context import ClientRequestContext
from mcp.client.stdio import stdio_client

from tests.e2e.support import DEV_TOKEN, Toolman, agent, free_port, run, text_of

pytestmark = pytest.mark.slow


@pytest.fixture
def toolman_everything(
    toolman_script: Path, everything_js: Path, tmp_path: Path
) -> Iterator[Toolman]:
    config = {
        "servers": {"everything": {"command": "node", "args": [str(everything_js), "stdio"]}},
        "auth": {"tokens": [{"agent": "dev", "env": "E2E_DEV_TOKEN"}]},
    }
    running = Toolman(toolman_script, config, tmp_path)
    try:
        yield running.start()
    finally:
        running.stop()


@pytest.fixture
def everything_http(everything_js: Path, tmp_path: Path) -> Iterator[str]:
    """server-everything over its own Streamable HTTP (SSE answers with event ids, GET stream)."""
    port = free_port()
    with (tmp_path / "everything.log").open("w") as log:
        process = subprocess.Popen(
            ["node", str(everything_js), "streamableHttp"],
            env=os.environ | {"PORT": str(port)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (tmp_path / "everything.log").read_text()
            try:
                httpx.get(f"http://127.0.0.1:{port}/mcp", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "server-everything did not listen within 30 s"
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def test_progress_flows_from_downstream_through_toolman_and_wrapper(
    wrapper_script: Path, toolman_everything: Toolman, tmp_path: Path
) -> None:
    seen: list[tuple[float, float | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total))

    async def scenario() -> None:
        async with agent(
            wrapper_script, toolman_everything.url, DEV_TOKEN, tmp_path / "w.log"
        ) as session:
            result = await session.call_tool(
                "everything_trigger-long-running-operation",
                {"duration": 0.6, "steps": 3},
                progress_callback=on_progress,
            )
            assert "Long running operation completed" in text_of(result)

    run(scenario)
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_wrapper_against_the_reference_http_server(
    wrapper_script: Path, everything_http: str, tmp_path: Path
) -> None:
    """Server-to-client requests (sampling) and progress over real SSE streams with event ids."""
    asked: list[str] = []
    steps: list[float] = []

    async def sampling(
        context: ClientRequestContext, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult | types.CreateMessageResultWithTools | types.ErrorData:
        content = params.messages[0].content
        asked.append(getattr(content, "text", ""))
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text="forty-two"), model="test"
        )

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        steps.append(progress)

    async def scenario() -> None:
        env = {"MCP_TOOLMAN_SERVER_URL": everything_http, "MCP_WRAPPER_TIMEOUT": "20"}
        with (tmp_path / "w.log").open("a") as errlog:
            params = StdioServerParameters(command=str(wrapper_script), env=env)
            async with (
                stdio_client(params, errlog=errlog) as (read, write),
                ClientSession(read, write, sampling_callback=sampling) as session,
            ):
                await session.initialize()
                echo = await session.call_tool("echo", {"message": "hi"})
                assert text_of(echo) == "Echo: hi"
                sampled = await session.call_tool(
                    "trigger-sampling-request", {"prompt": "meaning?"}
                )
                assert "forty-two" in text_of(sampled)
                await session.call_tool(
                    "trigger-long-running-operation",
                    {"duration": 0.3, "steps": 3},
                    progress_callback=on_progress,
                )

    run(scenario)
    assert len(asked) == 1
    assert "meaning?" in asked[0]
    assert steps == [1, 2, 3]
