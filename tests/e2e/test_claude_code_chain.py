"""The real Claude Code runs MCP tools through the real chain, outside containers:
Claude Code → mcp-wrapper (stdio) → toolman → mcp-server-time.

Real: the Claude Code binary (the pinned npm package buildkit caches in build/claude-code),
mcp-wrapper and toolman (their console scripts), toolman's policy (conftest's ``reader``
agent: the time server only, and not ``time_convert_time``), and the official
mcp-server-time. The one fake is the model: no model API is reachable here, so
``model_api.py`` scripts the Messages API answers through ``ANTHROPIC_BASE_URL`` and records
what Claude Code sent — which is how these tests see the tools offered to the model.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.model_api import ModelAPI, Record, marker
from tests.e2e.support import DEADLINE, READER_TOKEN, Toolman, claude_code

AGENT = "reader"
ALLOWED = "mcp__toolman__time_get_current_time"
HIDDEN = "mcp__toolman__time_convert_time"
ASK_TIME = "What time is it in UTC? " + marker("tool", tool=ALLOWED, args={"timezone": "UTC"})


@pytest.fixture(scope="session")
def claude(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return claude_code(tmp_path_factory.mktemp("claude-code"))


@dataclass(frozen=True)
class Agent:
    """Claude Code as a headless agent: ``claude -p``, toolman its only MCP server."""

    claude: Path
    mcp_config: Path
    home: Path
    workspace: Path

    @contextmanager
    def start(self, api: ModelAPI, prompt: str, *args: str) -> Iterator[subprocess.Popen[str]]:
        """Claude Code running `prompt`; its output in ``self.home/out``, ``err``."""
        command = [str(self.claude), "-p", prompt, "--mcp-config", str(self.mcp_config)]
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(self.home),
            "ANTHROPIC_BASE_URL": api.url,
            "ANTHROPIC_API_KEY": "sk-test",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",  # no telemetry, no update checks
            "ENABLE_TOOL_SEARCH": "false",  # MCP tools offered up front, not via ToolSearch
        }
        with (self.home / "out").open("w") as out, (self.home / "err").open("w") as err:
            process = subprocess.Popen(
                [*command, "--strict-mcp-config", *args],
                stdout=out,
                stderr=err,
                env=env,
                cwd=self.workspace,
                text=True,
            )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)

    def run(self, api: ModelAPI, prompt: str, *args: str) -> tuple[int, str]:
        """Claude Code's exit code and stdout; its stderr must be empty."""
        with self.start(api, prompt, *args) as process:
            code = process.wait(timeout=DEADLINE)
        assert self.stderr() == "", self.stderr()
        return code, self.stdout()

    def stdout(self) -> str:
        return (self.home / "out").read_text()

    def stderr(self) -> str:
        return (self.home / "err").read_text()


@pytest.fixture
def agent(claude: Path, wrapper_script: Path, toolman: Toolman, tmp_path: Path) -> Agent:
    server = {
        "type": "stdio",
        "command": str(wrapper_script),
        "env": {"MCP_TOOLMAN_SERVER_URL": toolman.url, "MCP_TOOLMAN_TOKEN": READER_TOKEN},
    }
    config = tmp_path / "mcp.json"
    config.write_text(json.dumps({"mcpServers": {"toolman": server}}))
    for directory in ("home", "workspace"):
        (tmp_path / directory).mkdir()
    return Agent(claude, config, tmp_path / "home", tmp_path / "workspace")


def main_turns(api: ModelAPI) -> list[Record]:
    return [record for record in api.requests() if record.get("main")]


def toolman_tools(turn: Record) -> list[str]:
    return [name for name in turn["tools"] if name.startswith("mcp__toolman__")]


def audited(toolman: Toolman) -> list[tuple[str, str, str, str]]:
    """Every audit line toolman wrote, once it has stopped (so nothing is still unwritten)."""
    toolman.stop()
    return [(a["agent"], a["name"], a["decision"], a["outcome"]) for a in toolman.audit_lines()]


@pytest.mark.parametrize("allowed", [ALLOWED, "mcp__toolman"], ids=["one-tool", "server-wide"])
def test_claude_code_calls_an_allowed_tool_through_the_wrapper_and_toolman(
    agent: Agent, toolman: Toolman, allowed: str
) -> None:
    with ModelAPI.start() as api:
        code, stdout = agent.run(api, ASK_TIME, "--allowedTools", allowed)
        turns = main_turns(api)

    assert code == 0
    assert [toolman_tools(turn) for turn in turns] == [[ALLOWED], [ALLOWED]]
    assert turns[0]["tool_results"] == []
    [result] = turns[1]["tool_results"]
    assert not result["is_error"]
    answer = json.loads(result["content"])  # the real time server's answer, unchanged
    assert answer["timezone"] == "UTC"
    assert answer["datetime"].endswith("+00:00")
    assert result["content"] in stdout  # the model's final text, which quotes it
    assert audited(toolman) == [(AGENT, "time_get_current_time", "allowed", "ok")]


def test_a_hidden_tool_is_never_offered_and_a_call_to_it_never_leaves_claude_code(
    agent: Agent, toolman: Toolman
) -> None:
    prompt = marker(
        "tool",
        tool=HIDDEN,
        args={"source_timezone": "UTC", "time": "12:00", "target_timezone": "Europe/Paris"},
    )
    with ModelAPI.start() as api:
        code, _ = agent.run(api, prompt, "--allowedTools", "mcp__toolman")
        turns = main_turns(api)

    assert code == 0
    assert toolman_tools(turns[0]) == [ALLOWED]
    [result] = turns[1]["tool_results"]
    assert result["is_error"]
    assert f"No such tool available: {HIDDEN}" in result["content"]
    assert audited(toolman) == []


def test_a_model_api_error_makes_claude_code_exit_non_zero(agent: Agent) -> None:
    with ModelAPI.start() as api:
        code, stdout = agent.run(api, marker("error", message="scripted refusal"))
        turns = main_turns(api)

    assert code == 1
    assert stdout.strip() == "API Error: 400 scripted refusal"
    # Claude Code retries a 400 with fewer beta features; every attempt got the error.
    assert turns
    assert {turn["answer"] for turn in turns} == {"error 400"}


def test_a_held_run_is_in_flight_until_released_and_streams_json_events(agent: Agent) -> None:
    prompt = marker("hold", tool=ALLOWED, args={"timezone": "UTC"}, key="held")
    stream = ("--output-format", "stream-json", "--verbose")
    with (
        ModelAPI.start() as api,
        agent.start(api, prompt, "--allowedTools", "mcp__toolman", *stream) as process,
    ):
        api.wait(lambda model: model.holding() == ["held"], DEADLINE)
        assert process.poll() is None  # the tool has run; the final answer is held
        httpx.post(f"{api.url}/_control/release/held", timeout=10).raise_for_status()
        assert process.wait(timeout=DEADLINE) == 0
        turns = main_turns(api)

    assert turns[-1]["hold"] == "released"
    events: list[dict[str, Any]] = [json.loads(line) for line in agent.stdout().splitlines()]
    init, result = events[0], events[-1]
    assert (init["type"], init["subtype"]) == ("system", "init")
    assert [s["status"] for s in init["mcp_servers"] if s["name"] == "toolman"] == ["connected"]
    assert [name for name in init["tools"] if name.startswith("mcp__")] == [ALLOWED]
    assert (result["type"], result["is_error"], result["num_turns"]) == ("result", False, 2)
    assert turns[-1]["tool_results"][0]["content"] in result["result"]


def test_sigterm_during_a_held_run_ends_claude_code_with_143_and_drops_the_request(
    agent: Agent,
) -> None:
    prompt = marker("hold", tool=ALLOWED, args={"timezone": "UTC"}, key="cancelled")
    with (
        ModelAPI.start() as api,
        agent.start(api, prompt, "--allowedTools", "mcp__toolman") as process,
    ):
        api.wait(lambda model: model.holding() == ["cancelled"], DEADLINE)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=DEADLINE) == 143
        api.wait(lambda model: main_turns(model)[-1].get("hold") == "client_gone", DEADLINE)


def test_the_model_api_answers_claude_codes_other_requests() -> None:
    """What Claude Code may also send: a connectivity HEAD, token counts, non-streaming calls,
    helper requests without tools (never scripted), and a malformed marker (a clear 400)."""
    with ModelAPI.start() as api, httpx.Client(base_url=api.url, timeout=10) as client:
        assert client.head("/api/hello").status_code == 200
        counted = client.post("/v1/messages/count_tokens?beta=true", json={"messages": []})
        assert counted.json()["input_tokens"] >= 0
        turn = {"messages": [{"role": "user", "content": marker("text", text="hi")}]}
        scripted = client.post("/v1/messages", json={**turn, "tools": [{"name": "Read"}]})
        assert scripted.json()["content"] == [{"type": "text", "text": "hi"}]
        helper = client.post("/v1/messages", json=turn)
        assert helper.json()["content"] == [{"type": "text", "text": "ok"}]
        bad = {"messages": [{"role": "user", "content": "[[scenario:tool {oops}]]"}]}
        refused = client.post("/v1/messages", json={**bad, "tools": [{"name": "Read"}]})
        assert refused.status_code == 400
        assert refused.json()["error"]["type"] == "invalid_request_error"
        records = client.get("/_control/requests").json()
    assert [(r["method"], r.get("main"), r.get("answer")) for r in records] == [
        ("HEAD", None, None),
        ("POST", None, None),
        ("POST", True, "text"),
        ("POST", False, "text"),
        ("POST", True, "error 400"),
    ]
