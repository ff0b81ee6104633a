"""The config file: every documented key parses, every mistake names its key."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import console_script

from toolman.config import HttpServer, StdioServer, load, parse
from toolman.errors import ConfigError
from toolman.secrets import sha256_hex

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_example() -> dict[str, Any]:
    blocks = re.findall(r"```json\n(.*?)```", README.read_text(), re.S)
    example: dict[str, Any] = json.loads(max(blocks, key=len))
    return example


def test_the_readme_example_is_a_valid_config(tmp_path: Path) -> None:
    secret = tmp_path / "ops-token"
    secret.write_text("ops-secret\n")
    example = readme_example()
    example["auth"]["tokens"][2]["file"] = str(secret)
    env = {"SEARCH_API_AUTH": "Bearer s3cret", "CODER_TOKEN": "coder-secret"}
    config = parse(example, env)
    assert list(config.servers) == ["git", "time", "search"]  # "everything" is disabled
    git = config.servers["git"]
    assert isinstance(git, StdioServer)
    assert git.args == ("-m", "mcp_server_git", "--repository", "/workspace")
    search = config.servers["search"]
    assert isinstance(search, HttpServer)
    assert dict(search.headers)["Authorization"] == "Bearer s3cret"
    assert config.tokens == {
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08": "reviewer",
        sha256_hex("coder-secret"): "coder",
        sha256_hex("ops-secret"): "ops",
    }
    assert config.rules.allow_unknown_tools is False
    assert config.http.page_size == 100
    assert "s3cret" not in repr(config)


def test_an_empty_config_is_valid() -> None:
    config = parse({}, {})
    assert config.servers == {}
    assert config.separator == "_"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"server": {}}, "server: unknown key (did you mean 'servers'?)"),
        (
            {"servers": {"git": {"comand": "x"}}},
            "servers.git.comand: unknown key (did you mean 'command'?)",
        ),
        (
            {"servers": {"git": {"command": "x", "args": "-v"}}},
            "servers.git.args: expected a list of strings, got a string",
        ),
        (
            {"servers": {"git": {"command": "x", "args": [1]}}},
            "servers.git.args[0]: expected a non-empty string, got a number",
        ),
        ({"servers": {"git": {}}}, "servers.git: needs either 'command' (stdio) or 'url'"),
        (
            {"servers": {"bad name": {"command": "x"}}},
            "servers.bad name: 'bad name' is not allowed",
        ),
        (
            {"servers": {"r": {"url": "ftp://x"}}},
            "servers.r.url: 'ftp://x' must start with http:// or https://",
        ),
        (
            {"servers": {"git": {"command": "x", "timeout_seconds": "5"}}},
            "servers.git.timeout_seconds: expected a number",
        ),
        (
            {"servers": {"git": {"command": "x", "env": {"K": {"env": "UNSET_VAR_X"}}}}},
            "servers.git.env.K.env: environment variable UNSET_VAR_X is not set",
        ),
        (
            {"exposed_tools": {"gti": ["*"]}, "servers": {"git": {"command": "x"}}},
            "exposed_tools.gti: unknown server 'gti' (did you mean 'git'?)",
        ),
        (
            {
                "servers": {"git": {"command": "x"}},
                "agent_policies": {"a": {"allowed_servers": ["gti"]}},
            },
            "agent_policies.a.allowed_servers[0]: unknown server 'gti' (did you mean 'git'?)",
        ),
        (
            {"agent_policies": {"a": {"blocked": []}}},
            "agent_policies.a.blocked: unknown key (did you mean 'blocked_tools'?)",
        ),
        (
            {"default_policy": {"allow_unknown_tools": "yes"}},
            "default_policy.allow_unknown_tools: expected true or false",
        ),
        (
            {"auth": {"tokens": [{"agent": "a", "token": "plain"}]}},
            "auth.tokens[0].token: unknown key",
        ),
        ({"auth": {"tokens": [{"agent": "a"}]}}, "the token itself never goes in the config file"),
        (
            {"auth": {"tokens": [{"agent": "a", "sha256": "abc"}]}},
            "auth.tokens[0].sha256: expected 64 hex digits",
        ),
        ({"http": {"max_body_bytes": 10}}, "http.max_body_bytes: 10 is out of range"),
        ({"naming": {"separator": "/"}}, "naming.separator: '/' is not allowed"),
        (
            {"supervisor": {"backoff_initial_seconds": 5, "backoff_max_seconds": 1}},
            "supervisor.backoff_max_seconds: 1 is out of range",
        ),
    ],
)
def test_mistakes_are_named_by_their_key(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(raw, {})
    assert message in str(caught.value)


def test_token_files_and_duplicate_tokens(tmp_path: Path) -> None:
    token = tmp_path / "t"
    token.write_text("same")
    raw = {
        "auth": {
            "tokens": [
                {"agent": "a", "file": str(token)},
                {"agent": "b", "sha256": sha256_hex("same")},
            ]
        }
    }
    with pytest.raises(
        ConfigError, match=r"auth.tokens\[1\]: the same token is already given to agent 'a'"
    ):
        parse(raw, {})
    with pytest.raises(ConfigError, match="cannot read"):
        parse({"auth": {"tokens": [{"agent": "a", "file": str(tmp_path / "missing")}]}}, {})


def test_load_names_the_file_and_the_json_error(tmp_path: Path) -> None:
    path = tmp_path / "toolman.json"
    path.write_text('{"servers": {,}}')
    with pytest.raises(ConfigError, match=rf"{path}: not valid JSON: .* at line 1"):
        load(path, {})
    with pytest.raises(ConfigError, match="cannot read config file"):
        load(tmp_path / "absent.json", {})


def test_check_config_from_the_console_script(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps({"servers": {"a": {"command": "x"}}, "agent_policies": {"r": {}}}))
    bad.write_text(
        json.dumps(
            {
                "servers": {"a": {"command": "x"}},
                "agent_policies": {"r": {"allowed_servers": ["b"]}},
            }
        )
    )
    ok = subprocess.run([console_script("toolman"), "--config", str(good), "--check-config"],
                        capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
    refused = subprocess.run([console_script("toolman"), "--config", str(bad), "--check-config"],
                             capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
    missing = subprocess.run([console_script("toolman"), "--config", str(tmp_path / "none.json")],
                             capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
    assert ok.returncode == 0
    assert "OK (1 servers, 1 agent policies)" in ok.stdout
    assert refused.returncode == 2
    assert "agent_policies.r.allowed_servers[0]: unknown server 'b'" in refused.stderr
    assert missing.returncode == 2
    assert "cannot read config file" in missing.stderr
