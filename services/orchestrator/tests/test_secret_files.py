"""A task's secret file is one `task_secrets.files` allows by its real path: no `..`, no
relative path, no symlink out of the allowed directory, no `*` across a `/` — at
submission (422 naming the field) and again at launch, where the value is read from
exactly the path that was checked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import AUTH, make_config, serve_in_process

from orchestrator.backends.base import LaunchError
from orchestrator.config import ConfigError, OrchestratorConfig, parse
from orchestrator.controller.launches import build_launch
from orchestrator.tasks.model import TaskCreate

pytestmark = pytest.mark.anyio


def secrets_dir(tmp_path: Path) -> tuple[Path, Path]:
    """`secrets/task-a` (allowed by the config) and `outside/private` (not)."""
    allowed = tmp_path / "secrets"
    allowed.mkdir()
    (allowed / "task-a").write_text("value-a\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "private").write_text("the orchestrator's own\n")
    return allowed, outside / "private"


def config_for(tmp_path: Path, allowed: Path) -> OrchestratorConfig:
    return make_config(tmp_path / "state", task_secrets={"files": [f"{allowed}/task-*"]})


async def post(config: OrchestratorConfig, secrets: dict[str, Any]) -> httpx.Response:
    async with serve_in_process(config) as api:
        body = {"prompt": "p", "secrets": secrets}
        return await api.post("/api/v1/tasks", json=body, headers=AUTH)


def launched_env(config: OrchestratorConfig, task: dict[str, Any]) -> dict[str, str]:
    spec = TaskCreate.model_validate(task["spec"] | {"files": []})
    return dict(build_launch(task["id"], spec, config, {}).env)


async def test_an_allowed_file_is_accepted_and_read_at_launch(tmp_path: Path) -> None:
    allowed, _ = secrets_dir(tmp_path)
    config = config_for(tmp_path, allowed)
    response = await post(config, {"KEY": {"file": f"{allowed}/task-a"}})
    assert response.status_code == 201, response.text
    assert "value-a" not in response.text
    assert launched_env(config, response.json())["KEY"] == "value-a"


@pytest.mark.parametrize(
    "path",
    ["{allowed}/../outside/private", "{allowed}/./task-a", "{allowed}/../../proc/self/environ"],
)
async def test_a_path_with_dot_dot_is_422_naming_the_file(tmp_path: Path, path: str) -> None:
    allowed, _ = secrets_dir(tmp_path)
    config = make_config(tmp_path / "state", task_secrets={"files": [f"{allowed}/*"]})
    response = await post(config, {"KEY": {"file": path.format(allowed=allowed)}})
    assert response.status_code == 422, response.text
    error = response.json()["detail"][0]
    assert error["loc"] == ["body", "secrets", "KEY", "file"]
    assert "absolute path without '.' or '..'" in error["msg"]


async def test_a_relative_path_is_422_naming_the_file(tmp_path: Path) -> None:
    allowed, _ = secrets_dir(tmp_path)
    response = await post(config_for(tmp_path, allowed), {"KEY": {"file": "secrets/task-a"}})
    assert response.status_code == 422, response.text
    error = response.json()["detail"][0]
    assert error["loc"] == ["body", "secrets", "KEY", "file"]
    assert "absolute path" in error["msg"]


async def test_a_symlink_out_of_the_allowed_directory_is_refused(tmp_path: Path) -> None:
    allowed, private = secrets_dir(tmp_path)
    (allowed / "task-link").symlink_to(private)
    response = await post(config_for(tmp_path, allowed), {"KEY": {"file": f"{allowed}/task-link"}})
    assert response.status_code == 422, response.text
    error = response.json()["detail"][0]
    assert error["loc"] == ["body", "secrets", "KEY"]
    assert "task_secrets.files" in error["msg"]
    assert str(private) not in error["msg"]  # where the link leads is not told


async def test_a_link_changed_after_submission_is_not_read_at_launch(tmp_path: Path) -> None:
    allowed, private = secrets_dir(tmp_path)
    (allowed / "task-b").write_text("value-b\n")
    (allowed / "task-link").symlink_to(allowed / "task-b")  # inside: allowed
    config = config_for(tmp_path, allowed)
    response = await post(config, {"KEY": {"file": f"{allowed}/task-link"}})
    assert response.status_code == 201, response.text
    assert launched_env(config, response.json())["KEY"] == "value-b"
    (allowed / "task-link").unlink()
    (allowed / "task-link").symlink_to(private)
    with pytest.raises(LaunchError) as refused:
        launched_env(config, response.json())
    message = str(refused.value)
    assert message.startswith(f"secrets.KEY: the orchestrator's file {allowed}/task-link")
    assert "task_secrets.files" in message


async def test_a_star_does_not_cross_a_slash(tmp_path: Path) -> None:
    allowed, _ = secrets_dir(tmp_path)
    (allowed / "task-dir").mkdir()
    (allowed / "task-dir" / "nested").write_text("nested\n")
    response = await post(
        config_for(tmp_path, allowed), {"KEY": {"file": f"{allowed}/task-dir/nested"}}
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "secrets", "KEY"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"task_secrets": {"files": ["run/secrets/*"]}}, "task_secrets.files: [0] 'run/"),
        ({"task_secrets": {"files": ["/run/secrets/../*"]}}, "task_secrets.files: [0]"),
        (
            {"agent": {"secrets": {"K": {"file": "/run/secrets/../../etc/shadow"}}}},
            "agent.secrets.K.file: must be an absolute path",
        ),
        (
            {"toolman": {"env": {"K": {"file": "keys/search"}}}},
            "toolman.env: K.file: must be an absolute path",
        ),
    ],
)
def test_the_operators_secret_paths_are_absolute(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse(raw, "config.json")
    assert str(refused.value).startswith(f"config.json: {message}")
