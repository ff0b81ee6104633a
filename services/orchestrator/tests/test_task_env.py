"""A task's `env` and `secrets` cannot change what the operator sets for every agent, nor
any name `tasks.env_denied` refuses (the model endpoint and key, the agent's MCP config,
proxies...): a 422 naming the variable and the rule at submission, and a failed launch
with the same words when the config changed after the task was accepted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import AUTH, make_config, serve_in_process

from orchestrator.backends.base import LaunchError
from orchestrator.config import OrchestratorConfig
from orchestrator.controller.launches import build_launch
from orchestrator.tasks.model import TaskCreate

pytestmark = pytest.mark.anyio

OPERATOR = {
    "env": {"ANTHROPIC_BASE_URL": "https://model.internal", "TEAM": "platform"},
    "secrets": {"ANTHROPIC_API_KEY": {"env": "MODEL_KEY"}, "GITHUB_TOKEN": {"env": "GIT_TOKEN"}},
}
ENVIRON = {"MODEL_KEY": "sk-operator", "GIT_TOKEN": "ghp-operator", "TASK_GIT": "ghp-task"}


def config_with(tmp_path: Path, **tasks: Any) -> OrchestratorConfig:
    return make_config(
        tmp_path / "state",
        agent=OPERATOR,
        tasks=tasks,
        task_secrets={"env": ["GIT_TOKEN", "TASK_GIT", "MODEL_KEY"]},
    )


async def submitted(config: OrchestratorConfig, **body: Any) -> tuple[int, dict[str, Any]]:
    async with serve_in_process(config, {"ORCHESTRATOR_TOKEN": "t", **ENVIRON}) as api:
        response = await api.post(
            "/api/v1/tasks",
            json={"prompt": "p", **body},
            headers={"Authorization": "Bearer t"},
        )
        return response.status_code, response.json()


@pytest.mark.parametrize(
    ("body", "location", "words"),
    [
        (
            {"env": {"ANTHROPIC_BASE_URL": "https://attacker.example"}},
            ["body", "env", "ANTHROPIC_BASE_URL"],
            "the operator sets ANTHROPIC_BASE_URL for every agent (agent.env",
        ),
        (
            {"env": {"TEAM": "mine"}},
            ["body", "env", "TEAM"],
            "the operator sets TEAM for every agent (agent.env",
        ),
        (
            {"env": {"GITHUB_TOKEN": "ghp-mine"}},
            ["body", "env", "GITHUB_TOKEN"],
            "the operator gives every agent GITHUB_TOKEN (agent.secrets",
        ),
        (
            {"env": {"CLAUDE_AGENT_MCP_CONFIG": "/workspace/mcp.json"}},
            ["body", "env", "CLAUDE_AGENT_MCP_CONFIG"],
            "tasks may not set CLAUDE_AGENT_MCP_CONFIG (rule 'CLAUDE_*' of tasks.env_denied",
        ),
        (
            {"env": {"ANTHROPIC_AUTH_TOKEN": "x"}},
            ["body", "env", "ANTHROPIC_AUTH_TOKEN"],
            "rule 'ANTHROPIC_*' of tasks.env_denied",
        ),
        ({"env": {"https_proxy": "http://x"}}, ["body", "env", "https_proxy"], "'*_proxy'"),
        ({"env": {"LD_PRELOAD": "/workspace/x.so"}}, ["body", "env", "LD_PRELOAD"], "'LD_*'"),
        (
            {"secrets": {"ANTHROPIC_API_KEY": {"env": "TASK_GIT"}}},
            ["body", "secrets", "ANTHROPIC_API_KEY"],
            "tasks may not set ANTHROPIC_API_KEY (rule 'ANTHROPIC_*'",
        ),
        (
            {"secrets": {"TEAM": {"env": "TASK_GIT"}}},
            ["body", "secrets", "TEAM"],
            "(agent.env",
        ),
    ],
)
async def test_a_name_the_operator_sets_or_denies_is_422(
    tmp_path: Path, body: dict[str, Any], location: list[str], words: str
) -> None:
    status, answer = await submitted(config_with(tmp_path), **body)
    assert status == 422, answer
    error = answer["detail"][0]
    assert error["loc"] == location
    assert words in error["msg"]


async def test_a_tasks_own_secret_replaces_the_operators_unless_denied(tmp_path: Path) -> None:
    config = config_with(tmp_path)
    status, task = await submitted(
        config, env={"LOG_LEVEL": "debug"}, secrets={"GITHUB_TOKEN": {"env": "TASK_GIT"}}
    )
    assert status == 201, task
    env = build_launch(task["id"], TaskCreate.model_validate(task["spec"]), config, ENVIRON).env
    assert env["GITHUB_TOKEN"] == "ghp-task"
    assert env["LOG_LEVEL"] == "debug"
    assert env["ANTHROPIC_API_KEY"] == "sk-operator"
    assert env["ANTHROPIC_BASE_URL"] == "https://model.internal"


async def test_the_operator_decides_the_deny_list(tmp_path: Path) -> None:
    """With per-task model keys allowed (the rule narrowed), a task may bring its key;
    a launch after the operator denies it again fails with the rule named."""
    narrowed = config_with(tmp_path, env_denied=["ANTHROPIC_BASE_URL", "CLAUDE_*"])
    status, task = await submitted(narrowed, secrets={"ANTHROPIC_API_KEY": {"env": "TASK_GIT"}})
    assert status == 201, task
    spec = TaskCreate.model_validate(task["spec"])
    assert build_launch(task["id"], spec, narrowed, ENVIRON).env["ANTHROPIC_API_KEY"] == "ghp-task"

    with pytest.raises(LaunchError) as refused:
        build_launch(task["id"], spec, config_with(tmp_path), ENVIRON)
    assert str(refused.value) == (
        "secrets.ANTHROPIC_API_KEY: tasks may not set ANTHROPIC_API_KEY (rule 'ANTHROPIC_*' "
        "of tasks.env_denied in the orchestrator's config)"
    )


async def test_an_env_accepted_before_the_operator_set_it_fails_at_launch(
    tmp_path: Path,
) -> None:
    before = make_config(tmp_path / "state")
    status, task = await submitted(before, env={"TEAM": "mine"})
    assert status == 201, task
    with pytest.raises(LaunchError, match=r"^env\.TEAM: the operator sets TEAM for every agent"):
        build_launch(
            task["id"], TaskCreate.model_validate(task["spec"]), config_with(tmp_path), ENVIRON
        )


async def test_plain_task_env_is_untouched(tmp_path: Path) -> None:
    async with serve_in_process(config_with(tmp_path)) as api:
        body = {"prompt": "p", "env": {"LOG_LEVEL": "debug", "PROJECT_NAME": "web"}}
        response = await api.post("/api/v1/tasks", json=body, headers=AUTH)
    assert response.status_code == 201, response.text
