"""deploy/: what `kubectl apply -k deploy/overlays/example` installs, built with the real
kustomize (Debian 13's, installed by ci/kubernetes-tools.sh) and every object checked
against the official schemas of each supported Kubernetes release."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest
import yaml
from conftest import REPO, require
from k8s_emulator import NAMESPACE, cluster, now
from k8s_schemas import validate_everywhere
from test_kubernetes_controller import gone
from test_kubernetes_tasks_api import api, task_in

from orchestrator.backends.kubernetes.api import TaskRun
from orchestrator.config import parse

DEPLOY = REPO / "deploy"
TARGETS = ["base", "overlays/example"]


def build(target: str) -> list[dict[str, Any]]:
    kustomize = shutil.which("kustomize")
    require(kustomize is not None, "kustomize is not installed (bash ci/kubernetes-tools.sh)")
    assert kustomize is not None
    result = subprocess.run(
        [kustomize, "build", str(DEPLOY / target)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def by_kind(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {obj["kind"]: obj for obj in objects}


@pytest.mark.parametrize("target", TARGETS)
def test_every_object_kustomize_builds_is_valid_in_each_supported_kubernetes(
    target: str,
) -> None:
    objects = build(target)
    kinds = sorted(obj["kind"] for obj in objects)
    assert {
        "CustomResourceDefinition", "ServiceAccount", "Role", "RoleBinding",
        "Deployment", "Service", "NetworkPolicy",
    } <= set(kinds)  # fmt: skip
    for obj in objects:
        validate_everywhere(obj)


def test_the_example_overlay_installs_into_a_restricted_namespace_with_pinned_images() -> None:
    objects = by_kind(build("overlays/example"))
    namespace = objects["Namespace"]["metadata"]
    assert namespace["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    deployment = objects["Deployment"]
    assert deployment["metadata"]["namespace"] == namespace["name"]
    assert deployment["spec"]["replicas"] == 2
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "ghcr.io/5dlabs/platform/orchestrator:v1.0.0"


def test_the_deployment_has_probes_and_a_restricted_security_context() -> None:
    deployment = by_kind(build("base"))["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "orchestrator"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    context = container["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}


def test_the_role_is_namespaced_and_grants_no_more_than_the_controller_uses() -> None:
    objects = by_kind(build("base"))
    assert "ClusterRole" not in objects
    assert "ClusterRoleBinding" not in objects
    granted = {
        (group, resource, verb, tuple(rule.get("resourceNames", ())))
        for rule in objects["Role"]["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    crd, lease = (
        ("orchestrator.5dlabs.io", ()),
        ("coordination.k8s.io", ("orchestrator-controller",)),
    )
    wanted = {
        *((crd[0], "taskruns", verb, ()) for verb in ("get", "list", "watch", "create", "patch")),
        (crd[0], "taskruns/status", "patch", ()),
        (crd[0], "taskruns/finalizers", "update", ()),  # owner references blocking deletion
        *(("batch", "jobs", verb, ()) for verb in ("get", "watch", "create", "delete")),
        *(
            ("", kind, verb, ())
            for kind in ("configmaps", "secrets")
            for verb in ("get", "create", "delete")  # get: whose it is, before a delete
        ),
        ("", "pods", "list", ()),
        ("", "pods", "watch", ()),
        ("", "pods/log", "get", ()),  # the task API's /logs, toolman's audit lines
        ("coordination.k8s.io", "leases", "create", ()),  # a create has no name to limit to
        *((lease[0], "leases", verb, lease[1]) for verb in ("get", "patch")),
    }
    assert granted == wanted
    binding = objects["RoleBinding"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "orchestrator"}]


@pytest.mark.anyio
async def test_the_role_grants_exactly_what_a_tasks_life_asks_of_the_api_server() -> None:
    """Every call the controller and its API make over tasks' lives (submitted, run to
    the end, read, listed, their logs, one cancelled, one deleted; the Lease taken,
    renewed, released) is one the Role grants; and it grants no verb they do not call,
    but `taskruns/finalizers` update: the API server's condition for setting
    blockOwnerDeletion in an owner reference, not a call."""
    rules = by_kind(build("base"))["Role"]["rules"]
    async with cluster() as k8s:
        async with api(k8s) as http:
            done = (await http.post("/api/v1/tasks", json={"prompt": "hi"})).json()["id"]
            await task_in(http, done, "starting")
            k8s.serve_log(done, "working\n")
            await k8s.run_pod(done, {"terminated": {"exitCode": 0, "startedAt": now()}})
            await k8s.job_condition(done, "Complete")
            await task_in(http, done, "succeeded")
            assert (await http.get(f"/api/v1/tasks/{done}/logs")).status_code == 200
            assert (await http.get("/api/v1/tasks", params={"label": "a=b"})).status_code == 200
            assert (await http.get("/metrics")).status_code == 200
            stopped = (await http.post("/api/v1/tasks", json={"prompt": "hi"})).json()["id"]
            await task_in(http, stopped, "starting")
            assert (await http.post(f"/api/v1/tasks/{stopped}/cancel")).status_code == 202
            await task_in(http, stopped, "cancelled")
            await k8s.client.delete(TaskRun, done, namespace=NAMESPACE)
            await gone(k8s, TaskRun, done)
        calls = k8s.calls()

    def granted(group: str, resource: str, verb: str, name: str) -> bool:
        return any(
            group in rule["apiGroups"]
            and resource in rule["resources"]
            and verb in rule["verbs"]
            and name in rule.get("resourceNames", [name])
            for rule in rules
        )

    assert sorted(call for call in calls if not granted(*call)) == []
    every = {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    unused = every - {(group, resource, verb) for group, resource, verb, _ in calls}
    assert unused == {("orchestrator.5dlabs.io", "taskruns/finalizers", "update")}


@pytest.mark.parametrize("target", TARGETS)
def test_the_config_it_installs_is_one_the_orchestrator_accepts(target: str) -> None:
    objects = build(target)
    (config_map,) = [o for o in objects if o["kind"] == "ConfigMap"]
    config = parse(json.loads(config_map["data"]["config.json"]), f"{target}'s config.json")
    deployment = by_kind(objects)["Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["ORCHESTRATOR_CLONE_IMAGE"] == container["image"]  # the same release
    tag = container["image"].rsplit(":", 1)[1]
    assert config.agent.image.endswith(f":{tag}")
    assert config.toolman.image.endswith(f":{tag}")
    mounted = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert mounted["config"]["configMap"]["name"] == config_map["metadata"]["name"]
