"""The orchestrator's config file: every mistake is named by its key, and through the
console script a bad config is one line and exit 2, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import NO_ENGINE, TOKEN, TOOLMAN_BASE, console_script

from orchestrator.config import ConfigError, parse


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"taskz": {}}, "taskz: unknown key (did you mean 'tasks'?)"),
        (
            {"tasks": {"max_runing": 2}},
            "tasks.max_runing: unknown key (did you mean 'max_running'?)",
        ),
        ({"docker": {"netwrok": "x"}}, "docker.netwrok: unknown key (did you mean 'network'?)"),
        (
            {"tasks": {"max_running": 0}},
            "tasks.max_running: Input should be greater than or equal to 1",
        ),
        ({"docker": {"user": "root"}}, "docker.user: String should match pattern"),
        (
            {"toolman": {"resources": {"memory": "1x"}}},
            "toolman.resources.memory: '1x' is not a memory quantity",
        ),
        ({"tasks": "four"}, "tasks: expected an object, got a string"),
        ([], "expected an object, got a list"),
        (
            {"docker": {"network": "host"}},
            "docker.network: 'host' cannot hold one toolman per task",
        ),
        ({"docker": {"network": "container:abc"}}, "docker.network: 'container:abc' cannot hold"),
        (
            {"toolman": {"config": {"servers": {"time": {"comand": "x"}}}}},
            "toolman.config: toolman refuses it: servers.time.comand: unknown key "
            "(did you mean 'command'?)",
        ),
        (
            {"toolman": {"config": {**TOOLMAN_BASE, "agent_policies": {}}}},
            "toolman.config: toolman refuses it: toolman.config.agent_policies: unknown key",
        ),
    ],
)
def test_a_bad_config_names_the_key(raw: Any, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse(raw, "config.json")
    assert str(refused.value).startswith(f"config.json: {message}")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {"ORCHESTRATOR_TOKEN": TOKEN, "DOCKER_HOST": NO_ENGINE, **(env or {})}
    return subprocess.run(
        [console_script("orchestrator"), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **environment},
        timeout=30,
        check=False,
    )


def test_check_config_prints_the_config_and_exits_0(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"tasks": {"max_running": 2}, "toolman": {"config": TOOLMAN_BASE}}))
    # The state directory is a server's: checking a config does not need it.
    result = run("serve", "--check-config", "--config", str(path), "--state-dir", "/dev/null/x")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["tasks"]["max_running"] == 2
    assert printed["tasks"]["ttl_seconds"] == 600  # the defaults are filled in
    assert set(printed["toolman"]["config"]["servers"]) == {"time", "git"}


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ('{"tasks": {"max_running": 2,}}', "not valid JSON"),
        ('{"taskz": {}}', "taskz: unknown key (did you mean 'tasks'?)"),
        ('{"docker": {"network": "host"}}', "docker.network"),
        ('{"toolman": {"config": {"servers": 3}}}', "toolman.config: toolman refuses it"),
        ('{"auth": {"tokens": [{"name": "ci", "sha256": "abc"}]}}', "auth.tokens[0].sha256"),
    ],
)
def test_a_bad_config_is_one_line_and_exit_2(tmp_path: Path, content: str, words: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(content)
    serving = ["serve", "--host", "127.0.0.1", "--port", "1"]  # refused before it binds
    for args in (["serve", "--check-config"], serving) if "JSON" in words else [serving]:
        result = run(*args, "--config", str(path), "--state-dir", str(tmp_path / "state"))
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert lines == [lines[0]], result.stderr  # one line, no traceback
        assert lines[0].startswith(f"orchestrator: error: {path}: ")
        assert words in lines[0]
    if "auth.tokens" not in words:  # the file itself is read before anything is made
        assert not (tmp_path / "state").exists()


def test_a_missing_config_file_is_one_line(tmp_path: Path) -> None:
    result = run("serve", "--check-config", "--config", str(tmp_path / "nope.json"))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"orchestrator: error: cannot read config file {tmp_path / 'nope.json'}: "
        "No such file or directory"
    )
