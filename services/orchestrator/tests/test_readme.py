"""The README's examples stay true: its complete config is accepted, and its example task
is one that config accepts (the same checks `POST /api/v1/tasks` makes)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from orchestrator.admission import env_refusal, repository_refusal
from orchestrator.config import OrchestratorConfig, parse, secret_allowed
from orchestrator.tasks.model import TaskCreate
from orchestrator.tasks.policy import toolman_config

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def example(after: str) -> Any:
    found = re.search(re.escape(after) + r".*?```json\n(.*?)```", README, re.S)
    assert found is not None, f"no JSON example after {after!r}"
    return json.loads(found.group(1))


def readme_config() -> OrchestratorConfig:
    return parse(example("A complete example:"), "README.md")


def test_the_complete_config_example_is_accepted() -> None:
    config = readme_config()
    assert set(config.toolman.config["servers"]) == {"git", "time", "search"}
    assert [token.name for token in config.auth.tokens] == ["ci", "alice", "ops"]


def test_the_example_task_is_accepted_by_the_example_config() -> None:
    config = readme_config()
    task = TaskCreate.model_validate(example("A task to submit"))
    sidecar = toolman_config(config.toolman.config, task.agent.name, task.tools)
    assert sidecar["agent_policies"][task.agent.name]["allowed_servers"] == ["git", "time"]
    for ref in task.secrets.values():
        assert secret_allowed(config, ref.env, ref.file)
    assert env_refusal(config, task.env, task.secrets) is None
    assert task.repository is not None
    assert repository_refusal(config, task.repository, {"GITHUB_TOKEN": "set"}) is None
