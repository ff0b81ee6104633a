"""The README's examples stay true: its complete config is accepted, and its example task
is one that config accepts (the same checks `POST /api/v1/tasks` makes)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from k8s_schemas import taskrun_problems

from orchestrator.admission import env_refusal, repository_refusal
from orchestrator.backends.kubernetes.inputs import TaskRunRef
from orchestrator.backends.kubernetes.render import options_from, render_task
from orchestrator.config import OrchestratorConfig, parse, secret_allowed
from orchestrator.tasks.model import TaskCreate
from orchestrator.tasks.policy import toolman_config

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
EXAMPLE_CONFIG = (
    Path(__file__).resolve().parents[3] / "deploy" / "overlays" / "example" / "config.json"
)


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


def yaml_example(after: str) -> Any:
    found = re.search(re.escape(after) + r".*?```yaml\n(.*?)```", README, re.S)
    assert found is not None, f"no YAML example after {after!r}"
    return yaml.safe_load(found.group(1))


def test_the_kubernetes_example_taskrun_is_valid_and_its_job_is_the_one_shown() -> None:
    run = yaml_example("### One task, end to end")
    assert taskrun_problems(run) == []
    config = parse(json.loads(EXAMPLE_CONFIG.read_text(encoding="utf-8")), "example config")
    job = yaml_example("<summary>The rendered Job")
    uid = job["metadata"]["ownerReferences"][0]["uid"]  # the API server's, in the example
    owner = TaskRunRef(run["metadata"]["name"], run["metadata"]["namespace"], uid)
    clone_image = job["spec"]["template"]["spec"]["initContainers"][0]["image"]
    spec = TaskCreate.model_validate(run["spec"])
    rendered = render_task(owner, spec, config, options_from(config, clone_image))
    assert rendered.job.to_dict() == job, "regenerate the README's Job with the command shown"
