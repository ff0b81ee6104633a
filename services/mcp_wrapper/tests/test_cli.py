"""The command line as a user and a container health check see it."""

from __future__ import annotations

import os
import subprocess
from typing import Any

import pytest
from conftest import wrapper_script
from fake_toolman import FakeToolman, ServerThread

from mcp_wrapper import __version__


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MCP_")}
    return subprocess.run(
        [wrapper_script(), *args],
        capture_output=True,
        text=True,
        check=False,
        env=clean | env,
        stdin=subprocess.DEVNULL,
        timeout=30,
    )


def test_help_documents_the_environment_and_check() -> None:
    result = run("--help")
    assert result.returncode == 0
    for name in (
        "MCP_TOOLMAN_SERVER_URL",
        "MCP_WRAPPER_TIMEOUT",
        "MCP_WRAPPER_DEBUG",
        "MCP_TOOLMAN_TOKEN",
        "--check",
    ):
        assert name in result.stdout


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"mcp-wrapper {__version__}"
    assert __version__ != "0+unknown"


def test_check_succeeds_and_ends_its_session(fake: FakeToolman, server: ServerThread) -> None:
    result = run("--check", MCP_TOOLMAN_SERVER_URL=server.url)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [  # one line, for health checks
        f"mcp-wrapper: ok: fake-toolman 9.9 at {server.url} (protocol 2025-06-18)"
    ]
    assert [r.http_method for r in fake.received] == ["POST", "DELETE"]
    assert fake.sessions == set()


def test_check_fails_with_one_line_when_toolman_is_down() -> None:
    result = run(
        "--check", MCP_TOOLMAN_SERVER_URL="http://127.0.0.1:9/mcp", MCP_WRAPPER_TIMEOUT="5"
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(
        "mcp-wrapper: check failed: cannot connect to toolman at http://127.0.0.1:9/mcp"
    )


def test_check_fails_on_a_refused_token(fake: FakeToolman, server: ServerThread) -> None:
    fake.require_token = "right"
    result = run("--check", MCP_TOOLMAN_SERVER_URL=server.url, MCP_TOOLMAN_TOKEN="tok-zz9")
    assert result.returncode == 1
    assert "HTTP 401" in result.stderr
    assert "tok-zz9" not in result.stderr


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"MCP_WRAPPER_TIMEOUT": "soon"}, "MCP_WRAPPER_TIMEOUT"),
        ({"MCP_WRAPPER_TIMEOUT": "-1"}, "MCP_WRAPPER_TIMEOUT"),
        ({"MCP_TOOLMAN_SERVER_URL": "localhost:3000"}, "MCP_TOOLMAN_SERVER_URL"),
        ({"MCP_TOOLMAN_SERVER_URL": "http://user:pw@localhost/mcp"}, "MCP_TOOLMAN_TOKEN"),
        ({"MCP_WRAPPER_DEBUG": "maybe"}, "MCP_WRAPPER_DEBUG"),
        ({"MCP_TOOLMAN_TOKEN": "Bearer abc"}, "MCP_TOOLMAN_TOKEN"),
    ],
)
def test_bad_configuration_exits_2_naming_the_variable(env: dict[str, str], named: str) -> None:
    for args in ((), ("--check",)):
        result = run(*args, **env)
        assert result.returncode == 2
        assert result.stdout == ""
        assert named in result.stderr
        assert "Traceback" not in result.stderr


def test_stdin_from_a_file_works(fake: FakeToolman, server: ServerThread, tmp_path: Any) -> None:
    """Not a pipe: the thread-fed reader path (files and /dev/null cannot be polled)."""
    requests = tmp_path / "requests.jsonl"
    requests.write_text(
        '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18",'
        '"capabilities":{},"clientInfo":{"name":"file","version":"1"}}}\n'
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MCP_")}
    with requests.open("rb") as stdin:
        result = subprocess.run(
            [wrapper_script()],
            stdin=stdin,
            capture_output=True,
            check=False,
            env=clean | {"MCP_TOOLMAN_SERVER_URL": server.url},
            timeout=30,
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(b"\n") == 1
    assert b'"serverInfo"' in result.stdout


def test_stdin_dev_null_exits_zero_at_once() -> None:
    result = run(MCP_TOOLMAN_SERVER_URL="http://127.0.0.1:9/mcp")
    assert result.returncode == 0
    assert result.stdout == ""
