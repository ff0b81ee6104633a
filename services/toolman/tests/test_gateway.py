"""Listing and calling through a real toolman with real downstream servers and the SDK client.

One toolman serves three real servers (the SDK test server, mcp-server-time,
mcp-server-git) to three agents with different policies and tokens.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Toolman, initialize, mcp_client
from mcp import Client
from mcp.shared.exceptions import MCPError

REVIEWER, CODER, GUEST = "reviewer-token-0123456789", "coder-token-0123456789", "guest-token-01234"
GIT_EXPOSED = ["git_status", "git_log", "git_diff*", "git_show", "git_branch"]


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory,
    sdk_server: dict[str, Any],
    time_server: dict[str, Any],
    git_server: dict[str, Any],
) -> Iterator[Toolman]:
    config = {
        "servers": {"test": sdk_server, "time": time_server, "git": git_server},
        "exposed_tools": {"git": GIT_EXPOSED},
        "agent_policies": {
            "reviewer": {"allowed_servers": ["git", "test"], "blocked_tools": ["test_fail"]},
            "coder": {
                "allowed_tools": ["time/*", "test_echo", "test_add", "test_count", "test_fail"]
            },
            "guest": {"allowed_servers": ["time"]},
        },
        "auth": {
            "tokens": [
                {"agent": "reviewer", "sha256": digest(REVIEWER)},
                {"agent": "coder", "env": "CODER_TOKEN"},
                {"agent": "guest", "file": str(write_secret(tmp_path_factory.mktemp("s"), GUEST))},
            ]
        },
        "http": {"page_size": 3},
    }
    toolman = Toolman(tmp_path_factory.mktemp("gateway"), config, {"CODER_TOKEN": CODER}).start()
    yield toolman
    toolman.stop()


def write_secret(directory: Path, token: str) -> Path:
    path = directory / "token"
    path.write_text(token + "\n")
    return path


async def all_tool_names(client: Client) -> list[str]:
    names: list[str] = []
    cursor = None
    for _page in range(50):
        result = await client.list_tools(cursor=cursor)
        names += [tool.name for tool in result.tools]
        cursor = result.next_cursor
        if cursor is None:
            return names
    pytest.fail("tools/list never ended")


def test_each_agent_lists_exactly_what_its_policy_allows(gateway: Toolman) -> None:
    async def scenario() -> dict[str, list[str]]:
        seen = {}
        for agent, token in (("reviewer", REVIEWER), ("coder", CODER), ("guest", GUEST)):
            async with mcp_client(gateway.mcp_url, token) as client:
                seen[agent] = await all_tool_names(client)
        return seen

    seen = asyncio.run(scenario())
    git = {"git_git_status", "git_git_log", "git_git_diff", "git_git_diff_staged"}
    git |= {"git_git_diff_unstaged", "git_git_show", "git_git_branch"}
    test_tools = {"test_echo", "test_add", "test_pid", "test_sleep", "test_sleep_pid", "test_count"}
    test_tools |= {"test_protocol", "test_confirm", "test_client_capabilities"}
    assert set(seen["reviewer"]) == git | test_tools  # test_fail blocked, git_commit not exposed
    assert set(seen["coder"]) == {
        "time_get_current_time", "time_convert_time",
        "test_echo", "test_add", "test_count", "test_fail",
    }  # fmt: skip
    assert set(seen["guest"]) == {"time_get_current_time", "time_convert_time"}
    for names in seen.values():
        assert len(names) == len(set(names)), "pagination repeated a tool"


def test_calls_reach_the_real_servers(gateway: Toolman) -> None:
    async def scenario() -> tuple[Any, Any, Any]:
        async with mcp_client(gateway.mcp_url, REVIEWER) as reviewer:
            status = await reviewer.call_tool(
                "git_git_status", {"repo_path": gateway_repo(gateway)}
            )
            added = await reviewer.call_tool("test_add", {"a": 2, "b": 3})
        async with mcp_client(gateway.mcp_url, CODER) as coder:
            now = await coder.call_tool("time_get_current_time", {"timezone": "UTC"})
        return status, added, now

    status, added, now = asyncio.run(scenario())
    assert not status.is_error
    assert "On branch main" in status.content[0].text
    assert added.structured_content == {"result": 5}
    assert now.structured_content is not None
    assert now.structured_content["timezone"] == "UTC"


def gateway_repo(toolman: Toolman) -> str:
    return str(toolman.config["servers"]["git"]["args"][-1])


def test_a_hidden_tool_called_by_name_is_refused_and_audited(gateway: Toolman) -> None:
    async def scenario() -> list[MCPError]:
        errors = []
        async with mcp_client(gateway.mcp_url, REVIEWER) as reviewer:
            for name, args in (("test_fail", {"message": "x"}), ("git_git_commit", {})):
                with pytest.raises(MCPError) as caught:
                    await reviewer.call_tool(name, args)
                errors.append(caught.value)
        async with mcp_client(gateway.mcp_url, CODER) as coder:
            with pytest.raises(MCPError) as caught:
                await coder.call_tool("git_git_status", {"repo_path": "/"})
            errors.append(caught.value)
        return errors

    errors = asyncio.run(scenario())
    assert [e.code for e in errors] == [-32602, -32602, -32602]
    assert "Unknown tool: test_fail" in errors[0].error.message
    refused = ("test_fail", "git_git_commit", "git_git_status")
    records = gateway.audits(lambda r: r["outcome"] == "refused" and r["name"] in refused, count=3)
    audits = {(r["agent"], r["name"]): r for r in records}
    assert audits[("reviewer", "test_fail")]["decision"] == "blocked"
    assert audits[("reviewer", "test_fail")]["outcome"] == "refused"
    assert audits[("reviewer", "git_git_commit")]["decision"] == "not_exposed"
    assert audits[("coder", "git_git_status")]["decision"] == "not_allowed"
    assert REVIEWER not in gateway.log_text()
    assert CODER not in gateway.log_text()


def test_allowed_calls_are_audited_with_outcome_and_duration(gateway: Toolman) -> None:
    async def scenario() -> Any:
        async with mcp_client(gateway.mcp_url, CODER) as coder:
            return await coder.call_tool("test_fail", {"message": "boom"})

    result = asyncio.run(scenario())
    assert result.is_error  # a tool error is the tool's answer, passed through untouched
    assert "boom" in result.content[0].text
    audit = gateway.audits(lambda r: r["agent"] == "coder" and r["name"] == "test_fail")[-1]
    assert audit["decision"] == "allowed"
    assert audit["outcome"] == "tool_error"
    assert audit["server"] == "test"
    assert audit["duration_ms"] > 0


def test_pages_follow_the_configured_size_and_bad_cursors_are_rejected(gateway: Toolman) -> None:
    async def scenario() -> tuple[int, str | None, MCPError]:
        async with mcp_client(gateway.mcp_url, REVIEWER) as client:
            first = await client.list_tools()
            with pytest.raises(MCPError) as caught:
                await client.list_tools(cursor="not-a-cursor")
            return len(first.tools), first.next_cursor, caught.value

    size, cursor, error = asyncio.run(scenario())
    assert size == 3
    assert cursor is not None
    assert error.code == -32602


def test_progress_is_relayed_from_the_downstream(gateway: Toolman) -> None:
    updates: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append((progress, total, message))

    async def scenario() -> Any:
        async with mcp_client(gateway.mcp_url, CODER) as coder:
            return await coder.call_tool("test_count", {"steps": 3}, progress_callback=on_progress)

    result = asyncio.run(scenario())
    assert result.structured_content == {"result": "counted 3"}
    assert updates == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]


def test_resources_and_prompts_follow_the_server_policy(gateway: Toolman) -> None:
    async def scenario() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with mcp_client(gateway.mcp_url, REVIEWER) as reviewer:
            out["resources"] = [str(r.uri) for r in (await reviewer.list_resources()).resources]
            templates = (await reviewer.list_resource_templates()).resource_templates
            out["templates"] = [t.uri_template for t in templates]
            out["item"] = (await reviewer.read_resource("test://items/7")).contents[0]
            out["prompts"] = [p.name for p in (await reviewer.list_prompts()).prompts]
            prompt = await reviewer.get_prompt("test_greet", {"name": "Ada"})
            out["prompt"] = prompt.messages[0].content
        for mode in ("legacy", "auto"):
            async with mcp_client(gateway.mcp_url, GUEST, mode=mode) as guest:
                out["guest_resources"] = (await guest.list_resources()).resources
                with pytest.raises(MCPError) as read_error:
                    await guest.read_resource("test://greeting")
                with pytest.raises(MCPError) as prompt_error:
                    await guest.get_prompt("test_greet", {"name": "Ada"})
                out[mode] = (read_error.value.code, prompt_error.value.code)
        return out

    out = asyncio.run(scenario())
    assert out["resources"] == ["test://greeting"]
    assert sorted(out["templates"]) == ["test://asking/{question}", "test://items/{item_id}"]
    assert out["item"].text == "item 7"
    assert out["prompts"] == ["test_greet"]
    assert "Ada" in out["prompt"].text
    assert out["guest_resources"] == []
    assert out["legacy"] == (-32002, -32602)
    assert out["auto"] == (-32602, -32602)  # 2026-07-28: a missing resource is -32602 (SEP-2164)


def test_tokens_are_required_and_sessions_belong_to_their_agent(gateway: Toolman) -> None:
    init = initialize("2025-06-18")
    accept = {"accept": "application/json, text/event-stream"}
    with httpx.Client(base_url=gateway.base_url, timeout=10, headers=accept) as http:
        missing = http.post("/mcp", json=init)
        wrong = http.post("/mcp", json=init, headers={"authorization": "Bearer nope"})
        basic = http.post("/mcp", json=init, headers={"authorization": "Basic abc"})
        ok = http.post("/mcp", json=init, headers={"authorization": f"Bearer {REVIEWER}"})
        session = ok.headers["mcp-session-id"]
        ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
        stolen = http.post(
            "/mcp",
            json=ping,
            headers={"authorization": f"Bearer {CODER}", "mcp-session-id": session},
        )
        own = http.post(
            "/mcp",
            json=ping,
            headers={"authorization": f"Bearer {REVIEWER}", "mcp-session-id": session},
        )
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert wrong.status_code == 401
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
    assert basic.status_code == 401
    assert ok.status_code == 200
    assert ok.json()["result"]["protocolVersion"] == "2025-06-18"
    assert stolen.status_code == 404
    assert own.status_code == 200
    assert own.json() == {"jsonrpc": "2.0", "id": 2, "result": {}}


def test_the_sdk_client_gets_the_same_view_in_auto_2026_and_in_legacy_mode(
    gateway: Toolman,
) -> None:
    async def scenario(mode: str) -> tuple[str, list[str]]:
        async with mcp_client(gateway.mcp_url, GUEST, mode=mode) as client:
            tools = await client.list_tools()
            return client.protocol_version, sorted(tool.name for tool in tools.tools)

    modern, legacy = asyncio.run(scenario("auto")), asyncio.run(scenario("legacy"))
    assert modern[0] == "2026-07-28"
    assert legacy[0] == "2025-11-25"
    assert modern[1] == legacy[1]
    assert len(modern[1]) == 2
