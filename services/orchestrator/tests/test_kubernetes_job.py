"""The Job, ConfigMap and Secret the Kubernetes backend renders for a task: valid for
every Kubernetes release from 1.33 on (the official schemas, strict), toolman a native
sidecar the agent waits for, the restricted Pod Security profile, and the task's inputs
where the containers read them."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from conftest import TOOLMAN_BASE
from k8s_schemas import validate_everywhere

from orchestrator.backends.base import LaunchError
from orchestrator.backends.kubernetes.inputs import TaskRunRef
from orchestrator.backends.kubernetes.options import KubernetesOptions
from orchestrator.backends.kubernetes.render import RenderedTask, options_from, render_task
from orchestrator.config import parse
from orchestrator.tasks.model import TaskCreate
from toolman.secrets import sha256_hex

OWNER = TaskRunRef("fix-tests", "agents", "6b1f0c9e-1d1e-4c55-9a43-5b8f3c1f0a10")
MODEL_KEY = {"ANTHROPIC_API_KEY": {"file": "/run/secrets/anthropic/api-key"}}
CONFIG = parse({
    "toolman": {"config": TOOLMAN_BASE},
    "agent": {"env": {"LOG_FORMAT": "json"}, "secrets": MODEL_KEY},
    "task_secrets": {"files": ["/run/secrets/github/*", "/run/secrets/*-task/*"]},
})  # fmt: skip
FULL: dict[str, Any] = {
    "prompt": "Make the tests pass",
    "repository": {"url": "https://git.example.test/team/app", "commit": "0123abcd"},
    "files": [
        {"path": "notes/plan.md", "content": "# plan"},
        {"path": "run.sh", "content": base64.b64encode(b"#!/bin/sh\n").decode(),
         "encoding": "base64", "executable": True},
    ],
    "agent": {"name": "coder", "model": "claude-sonnet-4"},
    "tools": {"servers": ["time", "git"], "blocked_tools": ["git_diff*"]},
    "env": {"LOG_LEVEL": "debug"},
    "secrets": {"GITHUB_TOKEN": {"file": "/run/secrets/github/token"}},
    "timeout_seconds": 1800,
    "resources": {"cpu": 1.5, "memory": "2Gi"},
    "labels": {"team": "web"},
}  # fmt: skip
EXAMPLES = {"minimal": {"prompt": "hi"}, "full": FULL}


def rendered(body: dict[str, Any], token: str = "tok-123") -> RenderedTask:
    return render_task(OWNER, TaskCreate.model_validate(body), CONFIG, KubernetesOptions(), token)


def pod_spec(job: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = job["spec"]["template"]["spec"]
    return spec


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_every_rendered_object_is_valid_in_each_supported_kubernetes(example: str) -> None:
    task = rendered(EXAMPLES[example])
    for obj in (task.config_map, task.secret, task.job):
        assert validate_everywhere(obj.to_dict())[0] == "1.33.0"


def test_toolman_is_a_native_sidecar_the_agent_waits_for() -> None:
    pod = pod_spec(rendered(FULL).job.to_dict())
    assert [c["name"] for c in pod["initContainers"]] == ["clone", "files", "toolman"]
    toolman = pod["initContainers"][-1]
    assert toolman["restartPolicy"] == "Always"
    assert toolman["startupProbe"]["httpGet"] == {"path": "/ready", "port": 3000}
    (agent,) = pod["containers"]
    env = {e["name"]: e for e in agent["env"]}
    assert env["MCP_TOOLMAN_SERVER_URL"]["value"] == "http://localhost:3000/mcp"
    assert env["MCP_TOOLMAN_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "key": "toolman-token",
        "name": "fix-tests-task",
    }
    assert env["GITHUB_TOKEN"]["valueFrom"]["secretKeyRef"] == {"key": "token", "name": "github"}
    assert env["ANTHROPIC_API_KEY"]["valueFrom"]["secretKeyRef"] == {
        "key": "api-key",
        "name": "anthropic",
    }
    assert env["LOG_LEVEL"]["value"] == "debug"
    assert env["LOG_FORMAT"]["value"] == "json"
    assert agent["args"][-2:] == ["--model", "claude-sonnet-4"]
    assert agent["resources"]["limits"] == {"cpu": "1500m", "memory": str(2 * 1024**3)}


def test_the_job_fails_once_on_an_agent_failure_and_retries_a_disruption() -> None:
    job = rendered(FULL).job.to_dict()
    spec = job["spec"]
    assert spec["backoffLimit"] == 0
    assert spec["activeDeadlineSeconds"] == 1800
    assert spec["ttlSecondsAfterFinished"] == KubernetesOptions().ttl_seconds_after_finished
    rules = spec["podFailurePolicy"]["rules"]
    assert rules[0] == {
        "action": "Ignore",
        "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
    }
    assert rules[1]["action"] == "FailJob"
    assert rules[1]["onExitCodes"] == {"containerName": "agent", "operator": "NotIn", "values": [0]}
    default = rendered({"prompt": "hi"}).job.to_dict()["spec"]["activeDeadlineSeconds"]
    assert default == CONFIG.tasks.default_timeout_seconds  # as on Docker


def test_the_pod_meets_the_restricted_pod_security_profile() -> None:
    pod = pod_spec(rendered(FULL).job.to_dict())
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod["initContainers"] + pod["containers"]:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False, container["name"]
        assert context["capabilities"] == {"drop": ["ALL"]}, container["name"]
        assert context["runAsNonRoot"] is True, container["name"]
    assert all("hostPath" not in volume for volume in pod["volumes"])


def test_every_object_is_owned_by_its_taskrun() -> None:
    task = rendered(FULL)
    for obj in (task.config_map, task.secret, task.job):
        (owner,) = obj.to_dict()["metadata"]["ownerReferences"]
        assert owner["kind"] == "TaskRun"
        assert owner["uid"] == OWNER.uid
        assert owner["controller"] is True


def test_the_inputs_carry_the_prompt_files_and_the_generated_toolman_config() -> None:
    task = rendered(FULL, token="tok-123")
    data = task.config_map.to_dict()["data"]
    assert data["prompt"] == "Make the tests pass"
    config = json.loads(data["toolman.json"])
    assert sorted(config["servers"]) == ["git", "time"]
    assert config["agent_policies"]["coder"]["blocked_tools"] == ["git_diff*"]
    assert config["auth"] == {"tokens": [{"agent": "coder", "sha256": sha256_hex("tok-123")}]}
    assert "tok-123" not in json.dumps(task.config_map.to_dict())
    token = task.secret.to_dict()["data"]["toolman-token"]
    assert base64.b64decode(token) == b"tok-123"
    binary = task.config_map.to_dict()["binaryData"]
    index = json.loads(data["files.json"])
    assert [(e["path"], e["executable"]) for e in index] == [
        ("notes/plan.md", False),
        ("run.sh", True),
    ]
    assert base64.b64decode(binary[index[1]["key"]]) == b"#!/bin/sh\n"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"secrets": {"TOKEN": {"env": "HOST_TOKEN"}}}, "secrets.TOKEN"),
        ({"secrets": {"TOKEN": {"file": "/etc/passwd"}}}, "secrets.TOKEN"),
        # a Secret of the namespace task_secrets.files does not allow
        ({"secrets": {"TOKEN": {"file": "/run/secrets/orchestrator-api/token"}}}, "secrets.TOKEN"),
        # another task's toolman token: never, whatever the globs allow
        ({"secrets": {"TOKEN": {"file": "/run/secrets/t1-task/toolman-token"}}}, "secrets.TOKEN"),
        ({"env": {"NODE_OPTIONS": "--require /x.js"}}, "env.NODE_OPTIONS"),
        ({"repository": {"url": "https://127.0.0.1/team/app"}}, "repository.url"),
        (
            {"repository": {"url": "https://git.example.test/a", "credentials": {"env": "T"}}},
            "repository.credentials",
        ),
        ({"tools": {"servers": ["nope"]}}, "tools.servers"),
        ({"files": [{"path": "big.bin", "content": "x" * (1024 * 1024)}]}, "files"),
    ],
)
def test_a_task_kubernetes_cannot_run_is_refused_naming_the_field(
    change: dict[str, Any], field: str
) -> None:
    with pytest.raises(LaunchError, match=rf"^{field}\b"):
        rendered({"prompt": "hi", **change})


def test_an_operator_secret_from_the_orchestrators_environment_is_refused() -> None:
    config = parse({"toolman": {"config": TOOLMAN_BASE}})  # the default: ANTHROPIC_API_KEY env
    spec = TaskCreate.model_validate({"prompt": "hi"})
    with pytest.raises(LaunchError, match=r"^agent\.secrets\.ANTHROPIC_API_KEY: on Kubernetes"):
        render_task(OWNER, spec, config, KubernetesOptions())


def test_a_name_too_long_for_a_job_is_refused() -> None:
    owner = TaskRunRef("x" * 64, "agents", OWNER.uid)
    spec = TaskCreate.model_validate({"prompt": "hi"})
    with pytest.raises(LaunchError, match=r"^metadata\.name"):
        render_task(owner, spec, CONFIG, KubernetesOptions())


def test_the_operators_toolman_and_task_settings_reach_the_job() -> None:
    config = parse({
        "toolman": {
            "config": TOOLMAN_BASE,
            "env": {"LOG_LEVEL": "debug", "GITHUB_TOKEN": {"file": "/run/secrets/gh/token"}},
            "resources": {"cpu": 0.5, "memory": "256Mi"},
            "ready_timeout_seconds": 30,
        },
        "agent": {"secrets": MODEL_KEY},
        "tasks": {"ttl_seconds": 120, "clone_timeout_seconds": 45},
    })  # fmt: skip
    spec = TaskCreate.model_validate({
        "prompt": "hi", "repository": {"url": "https://git.example.test/team/app"}
    })  # fmt: skip
    job = render_task(OWNER, spec, config, options_from(config)).job.to_dict()
    assert job["spec"]["ttlSecondsAfterFinished"] == 120
    init = {c["name"]: c for c in pod_spec(job)["initContainers"]}
    toolman = init["toolman"]
    env = {e["name"]: e for e in toolman["env"]}
    assert env["LOG_LEVEL"] == {"name": "LOG_LEVEL", "value": "debug"}
    assert env["GITHUB_TOKEN"]["valueFrom"] == {"secretKeyRef": {"key": "token", "name": "gh"}}
    assert toolman["resources"]["limits"] == {"cpu": "500m", "memory": str(256 << 20)}
    assert toolman["startupProbe"]["failureThreshold"] == 30
    assert init["clone"]["command"][:3] == ["timeout", "--kill-after=10", "45"]
    assert validate_everywhere(job)[0] == "1.33.0"


def test_a_toolman_env_from_the_orchestrators_environment_is_refused() -> None:
    config = parse({"toolman": {"config": TOOLMAN_BASE, "env": {"T": {"env": "HOST_T"}}}})
    with pytest.raises(LaunchError, match=r"^toolman\.env\.T: on Kubernetes"):
        options_from(config)
