"""`claude-agent`, the claude-code image's entrypoint, as a real process. Claude Code
itself cannot run a task here (it needs an API key and the internet), so a small script
named by CLAUDE_BINARY stands in for it and records how it was called; the image test
in tests/test_claude_image.py runs the real binary."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

AGENT = shutil.which("claude-agent", path=os.path.dirname(sys.executable))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def fake_claude(tmp_path: Path) -> Path:
    script = tmp_path / "claude"
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = --version ]; then echo "9.9.9 (Claude Code)"; exit 0; fi\n'
        f'printf "%s\\n" "$@" > {tmp_path}/argv\n'
        f'printf "%s" "$ANTHROPIC_API_KEY" > {tmp_path}/key\n'
        f"cat > {tmp_path}/stdin\n"
        'exit "${FAKE_EXIT:-0}"\n'
    )
    script.chmod(0o755)
    return script


def agent(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    assert AGENT, "claude-agent is not installed next to this interpreter"
    return subprocess.Popen(
        [AGENT, *args],
        env={**os.environ, **env},
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@dataclass
class Answer:
    status_code: int
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


def get(url: str) -> Answer:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return Answer(response.status, response.read())
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, exc.read())


def health(port: int, deadline: float = 15) -> Answer:
    end = time.monotonic() + deadline
    while True:
        try:
            return get(f"http://127.0.0.1:{port}/health")
        except urllib.error.URLError:
            if time.monotonic() > end:
                raise
            time.sleep(0.05)


def test_serve_answers_health_with_claudes_version_and_stops_on_sigterm(fake_claude: Path) -> None:
    port = free_port()
    process = agent(
        "serve", env={"CLAUDE_BINARY": str(fake_claude), "CLAUDE_AGENT_PORT": str(port)}
    )
    try:
        answer = health(port)
        assert answer.status_code == 200
        assert answer.json() == {
            "status": "ok",
            "mode": "serve",
            "claude": {"version": "9.9.9 (Claude Code)"},
        }
        assert get(f"http://127.0.0.1:{port}/nope").status_code == 404
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        process.kill()
        process.wait(timeout=10)


def test_health_is_503_when_claude_code_does_not_run(tmp_path: Path) -> None:
    port = free_port()
    process = agent(
        "serve", env={"CLAUDE_BINARY": str(tmp_path / "missing"), "CLAUDE_AGENT_PORT": str(port)}
    )
    try:
        answer = health(port)
        assert answer.status_code == 503
        body = answer.json()
        assert isinstance(body, dict)
        assert "is not installed" in body["error"]
    finally:
        process.kill()
        process.wait(timeout=10)


def test_direct_runs_one_task_with_toolmans_tools(fake_claude: Path, tmp_path: Path) -> None:
    env = {
        "CLAUDE_BINARY": str(fake_claude),
        "CLAUDE_AGENT_PORT": str(free_port()),
        "CLAUDE_API_KEY": "sk-old-name",
        "CLAUDE_AGENT_MCP_CONFIG": "/etc/x/mcp.json",
        "FAKE_EXIT": "3",
    }
    env.pop("ANTHROPIC_API_KEY", None)
    process = agent("direct", "--task", "fix the bug", "--", "--verbose", env=env)
    assert process.wait(timeout=30) == 3  # Claude Code's own exit status
    assert (tmp_path / "argv").read_text().splitlines() == [
        "-p",
        "fix the bug",
        "--mcp-config",
        "/etc/x/mcp.json",
        "--verbose",
    ]
    assert (tmp_path / "key").read_text() == "sk-old-name"


def test_direct_task_file_goes_to_claude_on_stdin(fake_claude: Path, tmp_path: Path) -> None:
    """A prompt longer than one argument may be (128 KiB) reaches Claude Code whole."""
    prompt = "Refactor the parser.\n" + "context " * 40_000
    task = tmp_path / "prompt"
    task.write_text(prompt)
    env = {"CLAUDE_BINARY": str(fake_claude), "CLAUDE_AGENT_PORT": str(free_port())}
    process = agent("direct", "--task-file", str(task), "--", "--model", "m", env=env)
    assert process.wait(timeout=30) == 0
    argv = (tmp_path / "argv").read_text().splitlines()
    assert argv == ["-p", "--mcp-config", "/etc/claude-code/mcp.json", "--model", "m"]
    assert (tmp_path / "stdin").read_text() == prompt


def test_direct_task_file_missing_exits_2(fake_claude: Path, tmp_path: Path) -> None:
    env = {"CLAUDE_BINARY": str(fake_claude), "CLAUDE_AGENT_PORT": str(free_port())}
    process = agent("direct", "--task-file", str(tmp_path / "nope"), env=env)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 2
    assert "cannot read --task-file" in stderr
    assert str(tmp_path / "nope") in stderr


def test_subprocess_passes_arguments_and_the_given_key(fake_claude: Path, tmp_path: Path) -> None:
    env = {"CLAUDE_BINARY": str(fake_claude), "CLAUDE_AGENT_PORT": str(free_port())}
    process = agent("subprocess", "--api-key", "sk-given", "--", "--model", "x", env=env)
    assert process.wait(timeout=30) == 0
    assert (tmp_path / "argv").read_text().splitlines() == ["--model", "x"]
    assert (tmp_path / "key").read_text() == "sk-given"


def test_direct_without_claude_code_says_so(tmp_path: Path) -> None:
    env = {"CLAUDE_BINARY": str(tmp_path / "missing"), "CLAUDE_AGENT_PORT": str(free_port())}
    process = agent("direct", "--task", "x", env=env)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 127
    assert "is not installed or not on PATH" in stderr


def test_bad_port_and_bad_mode_exit_2(fake_claude: Path) -> None:
    process = agent("serve", env={"CLAUDE_BINARY": str(fake_claude), "CLAUDE_AGENT_PORT": "http"})
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 2
    assert "CLAUDE_AGENT_PORT='http' is not a port number" in stderr
    unknown = agent("dance", env={})
    unknown.communicate(timeout=30)
    assert unknown.returncode == 2
