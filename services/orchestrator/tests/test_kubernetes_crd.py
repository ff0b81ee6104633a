"""The TaskRun CRD: a valid CustomResourceDefinition in each supported Kubernetes, its
schema structural (as the API server demands) and the API's task model, so a TaskRun
the API would refuse is refused by the API server too, naming the field."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from conftest import REPO
from k8s_schemas import taskrun_problems, validate_everywhere
from test_kubernetes_job import FULL

from orchestrator.backends.kubernetes.crd import task_run_crd

CRD_FILE = REPO / "deploy" / "base" / "taskrun-crd.yaml"


def crd() -> dict[str, Any]:
    return task_run_crd().to_dict()


def taskrun(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "orchestrator.5dlabs.io/v1alpha1",
        "kind": "TaskRun",
        "metadata": {"name": "fix-tests", "namespace": "agents"},
        "spec": spec,
    }


def nodes(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from nodes(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from nodes(schema["additionalProperties"], f"{path}{{}}")


def test_the_crd_is_valid_in_each_supported_kubernetes() -> None:
    assert validate_everywhere(crd())


def test_the_crd_is_namespaced_with_a_status_subresource_and_printer_columns() -> None:
    spec = crd()["spec"]
    assert spec["scope"] == "Namespaced"
    (version,) = spec["versions"]
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["Phase"] == ".status.phase"
    assert columns["Agent"] == ".spec.agent.name"
    assert columns["Age"] == ".metadata.creationTimestamp"


def test_the_schema_is_structural() -> None:
    """The API server's rules: a type on every node, no `properties` beside
    `additionalProperties`, no keyword OpenAPI v3 in a CRD lacks."""
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in nodes(schema):
        assert "type" in node, f"{path or '.'} has no type"
        assert not ("properties" in node and "additionalProperties" in node), path
        assert not {"$ref", "anyOf", "title", "examples", "const", "propertyNames"} & set(node)


def test_deploy_carries_the_crd_the_task_model_renders() -> None:
    shipped = yaml.safe_load(CRD_FILE.read_text(encoding="utf-8"))
    assert shipped == crd(), (
        f"{CRD_FILE} is out of date: python -m orchestrator.backends.kubernetes.render "
        "--crd > deploy/base/taskrun-crd.yaml"
    )


def test_a_taskrun_of_a_valid_task_passes_the_schema() -> None:
    assert taskrun_problems(taskrun(FULL)) == []
    assert taskrun_problems(taskrun({"prompt": "hi"})) == []


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({}, ": 'spec' is a required property"),
        ({"files": []}, "spec: 'prompt' is a required property"),
        ({"prompt": "hi", "timeout_seconds": "60"}, "spec.timeout_seconds: '60' is not"),
        ({"prompt": "hi", "timeout_seconds": 0}, "spec.timeout_seconds: 0 is less than"),
        ({"prompt": "hi", "agent": {"name": "Bad Name"}}, "spec.agent.name: 'Bad Name' does not"),
        ({"prompt": "hi", "resources": {"cpu": 0}}, "spec.resources.cpu: 0 is less than or"),
        ({"prompt": "hi", "env": {"A": 1}}, "spec.env.A: 1 is not of type 'string'"),
    ],
)
def test_a_bad_taskrun_is_refused_naming_the_field(spec: dict[str, Any], field: str) -> None:
    obj = taskrun(spec)
    if not spec:
        del obj["spec"]
    problems = taskrun_problems(obj)
    assert any(p.startswith(field) for p in problems), problems
