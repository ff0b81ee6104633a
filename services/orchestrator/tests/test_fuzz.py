"""The OpenAPI schema fuzzed with schemathesis against the real server (the console
script under uvicorn, on a loopback port; its engine unreachable, so tasks stay pending):
no 5xx, every response of a documented status and shape, headers and content types as
documented, schema-violating requests refused, and the bearer auth not ignored.

Bounded and repeatable: at most 50 generated examples per operation, derandomized.

`positive_data_acceptance` is left out: the schema cannot say what only the server knows
(which MCP servers and secrets the operator allows, which cursors it gave out), so a
schema-valid request can rightly be a 422. `/ready` is 503 here by design: it is checked
to be exactly that instead of "not a server error".
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from conftest import (
    AUTH,
    NO_ENGINE,
    TOKEN,
    answers,
    free_port,
    start_orchestrator,
    stop,
    wait_until,
)
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, positive_data_acceptance

from orchestrator.app import create_app
from orchestrator.settings import Settings

# The schema the server serves, built by the same code without running anything (the
# fixture checks it is the one served): schemathesis's lazy fixture loader does not work
# with this pytest, and a schema loaded at import cannot come from a server not yet up.
OPENAPI = create_app(Settings(), environ={"ORCHESTRATOR_TOKEN": TOKEN}).openapi()
schema = schemathesis.openapi.from_dict(OPENAPI)


@dataclass
class Fuzzed:
    base_url: str
    known_task: str  # a task that exists (cancelled: following its log ends at once)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    port = free_port()
    env = {
        "ORCHESTRATOR_TOKEN": TOKEN,
        "ORCHESTRATOR_STATE_DIR": str(tmp_path_factory.mktemp("fuzz") / "state"),
        "DOCKER_HOST": NO_ENGINE,
    }
    process = start_orchestrator(["--host", "127.0.0.1", "--port", str(port)], env)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(base_url), timeout=20, what="the orchestrator")
        created = httpx.post(f"{base_url}/api/v1/tasks", json={"prompt": "p"}, headers=AUTH)
        task = created.json()["id"]
        httpx.post(f"{base_url}/api/v1/tasks/{task}/cancel", headers=AUTH)
        assert httpx.get(f"{base_url}/openapi.json").json() == OPENAPI
        yield Fuzzed(base_url, task)
    finally:
        stop(process)


@schema.parametrize()
@settings(
    max_examples=50,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_the_api_honours_its_schema(case: schemathesis.Case[Any], fuzzed: Fuzzed) -> None:
    task_id = str((case.path_parameters or {}).get("task_id", ""))
    if task_id and len(task_id) % 2 == 0:  # half the cases ask about a task that exists
        assert case.path_parameters is not None
        case.path_parameters["task_id"] = fuzzed.known_task
    excluded = [positive_data_acceptance]
    if case.path == "/ready":
        excluded.append(not_a_server_error)
    response = case.call_and_validate(
        base_url=fuzzed.base_url, headers=AUTH, excluded_checks=excluded, timeout=10
    )
    if case.path == "/ready" and case.method.upper() == "GET":
        assert response.status_code == 503
