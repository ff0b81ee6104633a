"""A task's tool policy as toolman gets it: the generated config is parsed by toolman's
own loader, and what the agent may call is asked of toolman's own decision code
(`PolicyRules.decide`), so these tests state what the sidecar will actually do."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import TOOLMAN_BASE
from pydantic import ValidationError

from orchestrator.tasks.model import ToolPolicy
from orchestrator.tasks.policy import PolicyError, check_base, toolman_config
from toolman.config import Config, load, parse
from toolman.errors import ConfigError


def sidecar(tmp_path: Path, base: dict[str, Any], agent: str, policy: ToolPolicy) -> Config:
    """The config as the toolman sidecar reads it: a JSON file, through toolman's loader."""
    path = tmp_path / "toolman.json"
    path.write_text(json.dumps(toolman_config(base, agent, policy)))
    return load(path, {})


def may_call(config: Config, agent: str, server: str, tool: str) -> str:
    exposed = f"{server}{config.separator}{tool}"
    return config.rules.decide(agent, server, tool, exposed).reason


def test_the_agent_gets_exactly_the_chosen_servers(tmp_path: Path) -> None:
    config = sidecar(tmp_path, TOOLMAN_BASE, "coder", ToolPolicy(servers=["time"]))
    assert set(config.servers) == {"time"}  # git is not even started
    assert may_call(config, "coder", "time", "get_current_time") == "allowed"
    assert may_call(config, "coder", "git", "git_status") == "server_not_allowed"
    # Any other agent name (a misconfigured AGENT_NAME) sees nothing at all.
    assert may_call(config, "someone-else", "time", "get_current_time") == "server_not_allowed"


def test_no_servers_means_no_tools(tmp_path: Path) -> None:
    config = sidecar(tmp_path, TOOLMAN_BASE, "coder", ToolPolicy())
    assert dict(config.servers) == {}
    assert may_call(config, "coder", "time", "get_current_time") == "server_not_allowed"


def test_allowed_and_blocked_tools_narrow_what_the_operator_exposes(tmp_path: Path) -> None:
    policy = ToolPolicy(
        servers=["time", "git"],
        allowed_tools=["git/git_diff*", "time_*"],
        blocked_tools=["time_convert_time"],
    )
    config = sidecar(tmp_path, TOOLMAN_BASE, "coder", policy)
    assert may_call(config, "coder", "git", "git_diff_staged") == "allowed"  # the glob
    assert may_call(config, "coder", "git", "git_diff") == "allowed"
    assert may_call(config, "coder", "git", "git_status") == "not_allowed"
    # The operator's exposure stays: git_commit is not exposed, whatever the task says.
    assert may_call(config, "coder", "git", "git_commit") == "not_exposed"
    assert may_call(config, "coder", "time", "get_current_time") == "allowed"
    assert may_call(config, "coder", "time", "convert_time") == "blocked"


def test_a_glob_can_widen_nothing_beyond_the_exposure(tmp_path: Path) -> None:
    policy = ToolPolicy(servers=["git"], allowed_tools=["*"])
    config = sidecar(tmp_path, TOOLMAN_BASE, "coder", policy)
    assert may_call(config, "coder", "git", "git_log") == "allowed"
    assert may_call(config, "coder", "git", "git_push") == "not_exposed"


def test_an_unknown_server_names_the_field_and_the_closest_server() -> None:
    with pytest.raises(PolicyError) as refused:
        toolman_config(TOOLMAN_BASE, "coder", ToolPolicy(servers=["time", "gti"]))
    assert refused.value.field == "tools.servers[1]"
    assert refused.value.message == "unknown server 'gti' (did you mean 'git'?)"


REMOTE = {
    "servers": {
        "search": {
            "url": "https://search.internal.example/mcp",
            "headers": {"Authorization": {"env": "SEARCH_API_AUTH"}},
        }
    }
}


def test_a_base_config_with_env_references_is_checked_without_the_variables(
    tmp_path: Path,
) -> None:
    """The references are resolved in the toolman container; the orchestrator checks
    their shape only (toolman itself refuses the config where the variable is unset)."""
    with pytest.raises(ConfigError, match="SEARCH_API_AUTH is not set"):
        parse(REMOTE, {})
    check_base(REMOTE)
    generated = toolman_config(REMOTE, "coder", ToolPolicy(servers=["search"]))
    assert generated["servers"]["search"]["headers"] == {
        "Authorization": {"env": "SEARCH_API_AUTH"}  # still a reference: no value in it
    }
    config = parse(generated, {"SEARCH_API_AUTH": "Bearer x"})  # as in the sidecar
    assert may_call(config, "coder", "search", "query") == "allowed"


@pytest.mark.parametrize(
    ("base", "words"),
    [
        ({"agent_policies": {}}, "toolman.config.agent_policies: unknown key"),
        ({"auth": {"tokens": []}}, "toolman.config.auth: unknown key"),
        ({"servers": {"x": {"comand": "y"}}}, "servers.x"),
    ],
)
def test_a_base_config_toolman_would_refuse_is_refused(base: dict[str, Any], words: str) -> None:
    with pytest.raises(ConfigError, match=words.replace(".", r"\.")):
        check_base(base)


def test_a_server_named_twice_is_refused_naming_it() -> None:
    with pytest.raises(ValidationError, match="'time' is given twice"):
        ToolPolicy.model_validate({"servers": ["time", "git", "time"]})
