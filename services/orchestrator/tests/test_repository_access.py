"""A task's repository: no credentials in its URL (they would be shown on every GET and
in reasons); credentials by reference instead, resolved only at launch; and only hosts
the operator allows, never the orchestrator's own loopback or the cloud metadata
address — refused at submission where the URL says so, at launch once the host is
resolved (the real resolver, for `localhost`: no traffic)."""

from __future__ import annotations

import re
import socket
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import AUTH, make_config, serve_in_process

from orchestrator.backends.base import LaunchError
from orchestrator.config import OrchestratorConfig
from orchestrator.controller.launches import build_launch
from orchestrator.tasks.model import TaskCreate
from orchestrator.tasks.repository_guard import address_problem

pytestmark = pytest.mark.anyio

ENVIRON = {"ORCHESTRATOR_TOKEN": "test-token-5b1e", "GIT_TOKEN": "ghp-s3cret"}


async def post(config: OrchestratorConfig, repository: dict[str, Any]) -> httpx.Response:
    async with serve_in_process(config, ENVIRON) as api:
        body = {"prompt": "p", "repository": repository}
        return await api.post("/api/v1/tasks", json=body, headers=AUTH)


def launch_of(config: OrchestratorConfig, task: dict[str, Any]) -> Any:
    return build_launch(task["id"], TaskCreate.model_validate(task["spec"]), config, ENVIRON)


def refused(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    error: dict[str, Any] = response.json()["detail"][0]
    return error


async def test_credentials_in_the_url_are_refused_naming_the_field(tmp_path: Path) -> None:
    response = await post(
        make_config(tmp_path / "state"), {"url": "https://x-access-token:ghp-abc@github.com/o/r"}
    )
    error = refused(response)
    assert error["loc"] == ["body", "repository", "url"]
    assert "must not contain credentials" in error["msg"]
    assert "repository.credentials" in error["msg"]


async def test_credentials_by_reference_reach_the_launch_only(tmp_path: Path) -> None:
    # No network denied: the host is not looked up (this test makes no traffic).
    config = make_config(tmp_path / "state", tasks={"repository_networks_denied": []})
    response = await post(
        config, {"url": "https://git.internal.example/o/r", "credentials": {"env": "GIT_TOKEN"}}
    )
    assert response.status_code == 201, response.text
    task = response.json()
    assert task["spec"]["repository"]["credentials"] == {
        "env": "GIT_TOKEN",
        "file": None,
        "username": "x-access-token",
    }
    assert "ghp-s3cret" not in response.text
    launch = launch_of(config, task)
    assert launch.repository_credentials == ("x-access-token", "ghp-s3cret")
    assert "ghp-s3cret" not in repr(launch)
    assert "ghp-s3cret" not in launch.repository.url


@pytest.mark.parametrize(
    ("repository", "location", "words"),
    [
        (
            {"url": "https://gitlab.example/o/r", "credentials": {"env": "HOME"}},
            ["body", "repository", "credentials"],
            "HOME is not one tasks may use; an operator can add it to task_secrets.env",
        ),
        (
            {"url": "git://example.com/r", "credentials": {"env": "GIT_TOKEN"}},
            ["body", "repository"],
            "credentials need an http(s):// URL",
        ),
        (
            {
                "url": "https://gitlab.example/o/r",
                "credentials": {"env": "GIT_TOKEN", "username": "a:b"},
            },
            ["body", "repository", "credentials", "username"],
            "pattern",
        ),
    ],
)
async def test_a_bad_credentials_reference_is_422(
    tmp_path: Path, repository: dict[str, Any], location: list[str], words: str
) -> None:
    error = refused(await post(make_config(tmp_path / "state"), repository))
    assert error["loc"] == location
    assert words in error["msg"]


@pytest.mark.parametrize(
    ("url", "network"),
    [
        ("git://127.0.0.1:9418/r.git", "127.0.0.0/8"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.0.0/16"),
        ("http://[::1]:8080/r.git", "::1/128"),
        ("http://[::ffff:127.0.0.1]/r.git", "127.0.0.0/8"),
        ("http://0.0.0.0:8080/r.git", "0.0.0.0/8"),
    ],
)
async def test_an_address_in_a_denied_network_is_refused_at_submission(
    tmp_path: Path, url: str, network: str
) -> None:
    error = refused(await post(make_config(tmp_path / "state"), {"url": url}))
    assert error["loc"] == ["body", "repository", "url"]
    assert f"is in {network}, a network tasks may not fetch from" in error["msg"]
    assert "tasks.repository_networks_denied" in error["msg"]


async def test_a_name_that_resolves_to_loopback_fails_at_launch(tmp_path: Path) -> None:
    config = make_config(tmp_path / "state")
    response = await post(config, {"url": "git://localhost:9418/r.git"})
    assert response.status_code == 201, response.text  # no lookup while submitting
    with pytest.raises(LaunchError) as failed:
        launch_of(config, response.json())
    assert re.fullmatch(
        r"repository\.url: the host localhost \((127\.0\.0\.1|::1)\) is in "
        r"(127\.0\.0\.0/8|::1/128), a network tasks may not fetch from "
        r"\(tasks\.repository_networks_denied in the orchestrator's config\)",
        str(failed.value),
    ), failed.value


async def test_the_operator_may_allow_loopback(tmp_path: Path) -> None:
    config = make_config(tmp_path / "state", tasks={"repository_networks_denied": []})
    response = await post(config, {"url": "git://127.0.0.1:9418/r.git"})
    assert response.status_code == 201, response.text
    assert launch_of(config, response.json()).repository.url == "git://127.0.0.1:9418/r.git"


async def test_only_the_hosts_the_operator_lists(tmp_path: Path) -> None:
    config = make_config(
        tmp_path / "state", tasks={"repository_hosts": ["github.com", "*.git.example"]}
    )
    error = refused(await post(config, {"url": "https://gitlab.com/o/r"}))
    assert error["loc"] == ["body", "repository", "url"]
    assert (
        "the host gitlab.com is not one tasks may fetch from (tasks.repository_hosts"
        in (error["msg"])
    )
    allowed = await post(config, {"url": "https://Code.Git.Example/o/r"})
    assert allowed.status_code == 201, allowed.text


def test_every_resolved_address_is_checked() -> None:
    """A name with one public and one metadata address is refused (the resolver is the
    seam: no name here resolves like that)."""

    def resolve(host: str, port: None, **_: Any) -> list[tuple[Any, ...]]:
        assert host == "mixed.example"
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", 0)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", 0)),
        ]

    denied = [IPv4Network("169.254.0.0/16")]
    problem = address_problem("https://mixed.example/o/r", denied, resolve)
    assert problem is not None
    assert "mixed.example (169.254.169.254) is in 169.254.0.0/16" in problem
