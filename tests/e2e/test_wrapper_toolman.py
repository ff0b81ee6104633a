"""An agent's view: the official MCP SDK's stdio client spawns mcp-wrapper, which forwards to a
real toolman process, which fronts real MCP servers (mcp-server-time, mcp-server-git)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import anyio
import pytest
from mcp import MCPError
from mcp.client.session import IncomingMessage

from tests.e2e.support import DEV_TOKEN, READER_TOKEN, Toolman, agent, mcp_error_in, run, text_of

pytestmark = pytest.mark.slow


def test_agent_initializes_lists_and_calls_tools(
    wrapper_script: Path, toolman: Toolman, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with agent(
            wrapper_script, toolman.url, DEV_TOKEN, tmp_path / "wrapper.log"
        ) as session:
            tools = {tool.name for tool in (await session.list_tools()).tools}
            assert {"time_get_current_time", "time_convert_time", "git_git_status"} <= tools
            now = await session.call_tool("time_get_current_time", {"timezone": "UTC"})
            assert not now.is_error
            assert json.loads(text_of(now))["timezone"] == "UTC"
            status = await session.call_tool(
                "git_git_status", {"repo_path": str(toolman_repo(toolman))}
            )
            assert not status.is_error, text_of(status)
            assert "main" in text_of(status)

    run(scenario)


def toolman_repo(toolman: Toolman) -> Path:
    config = json.loads(toolman.config_path.read_text())
    args: list[str] = config["servers"]["git"]["args"]
    return Path(args[args.index("--repository") + 1])


def test_per_agent_filtering_is_seen_through_the_wrapper(
    wrapper_script: Path, toolman: Toolman, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with agent(
            wrapper_script, toolman.url, READER_TOKEN, tmp_path / "wrapper.log"
        ) as session:
            tools = {tool.name for tool in (await session.list_tools()).tools}
            assert tools == {"time_get_current_time"}
            for name, arguments in [
                (
                    "time_convert_time",
                    {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"},
                ),
                ("git_git_status", {"repo_path": "."}),
            ]:
                with pytest.raises(MCPError) as refused:
                    await session.call_tool(name, arguments)
                assert name in refused.value.error.message
            allowed = await session.call_tool("time_get_current_time", {"timezone": "UTC"})
            assert not allowed.is_error

    run(scenario)


def test_policy_change_reaches_the_agent_on_the_get_stream(
    wrapper_script: Path, toolman: Toolman, tmp_path: Path
) -> None:
    """toolman reloads its config; tools/list_changed comes through the wrapper's GET stream."""
    changed = anyio.Event()

    async def on_message(message: IncomingMessage) -> None:
        if getattr(message, "method", None) == "notifications/tools/list_changed":
            changed.set()

    async def scenario() -> None:
        log = tmp_path / "wrapper.log"
        async with agent(wrapper_script, toolman.url, DEV_TOKEN, log, on_message) as session:
            assert "time_convert_time" in {t.name for t in (await session.list_tools()).tools}
            config = json.loads(toolman.config_path.read_text())
            config["agent_policies"]["dev"] = {"blocked_tools": ["time_convert_time"]}
            toolman.config_path.write_text(json.dumps(config))
            toolman.reload()
            with anyio.fail_after(20):
                await changed.wait()
            assert "time_convert_time" not in {t.name for t in (await session.list_tools()).tools}

    run(scenario)


def test_toolman_stopped_mid_session_gives_errors_then_recovers(
    wrapper_script: Path, toolman: Toolman, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with agent(
            wrapper_script, toolman.url, DEV_TOKEN, tmp_path / "wrapper.log"
        ) as session:
            assert not (
                await session.call_tool("time_get_current_time", {"timezone": "UTC"})
            ).is_error
            await anyio.to_thread.run_sync(toolman.stop)
            with pytest.raises(MCPError) as down:
                await session.call_tool("time_get_current_time", {"timezone": "UTC"})
            assert down.value.error.code == -32000
            assert "cannot connect to toolman" in down.value.error.message
            with pytest.raises(MCPError):
                await session.send_ping()
            await anyio.to_thread.run_sync(toolman.start)
            # A new toolman process knows no sessions: the wrapper re-initializes unseen.
            back = await session.call_tool("time_get_current_time", {"timezone": "UTC"})
            assert not back.is_error
            assert json.loads(text_of(back))["timezone"] == "UTC"
            assert "time_get_current_time" in {t.name for t in (await session.list_tools()).tools}

    run(scenario)
    assert "initializing a new one" in (tmp_path / "wrapper.log").read_text()


def test_agents_without_a_token_are_refused_with_a_hint(
    wrapper_script: Path, toolman: Toolman, tmp_path: Path
) -> None:
    async def scenario() -> None:
        with pytest.raises(BaseException) as refused:  # noqa: PT011 - an ExceptionGroup around it
            async with agent(wrapper_script, toolman.url, None, tmp_path / "wrapper.log"):
                pass
        error = mcp_error_in(refused.value)
        assert "401" in error.error.message
        assert "MCP_TOOLMAN_TOKEN" in error.error.message

    run(scenario)


def test_check_for_health_probes(wrapper_script: Path, toolman: Toolman) -> None:
    def check(**env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(wrapper_script), "--check"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env={"PATH": "/usr/bin:/bin", "MCP_TOOLMAN_SERVER_URL": toolman.url} | env,
        )

    ok = check(MCP_TOOLMAN_TOKEN=DEV_TOKEN)
    assert ok.returncode == 0, ok.stderr
    assert "ok: toolman" in ok.stderr
    refused = check()
    assert refused.returncode == 1
    assert "HTTP 401" in refused.stderr
    toolman.stop()
    down = check(MCP_TOOLMAN_TOKEN=DEV_TOKEN)
    assert down.returncode == 1
    assert "cannot connect to toolman" in down.stderr
