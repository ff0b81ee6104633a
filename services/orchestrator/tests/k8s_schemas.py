"""Validation of Kubernetes objects against the official schemas, for the tests.

`kubernetes-validate` carries the OpenAPI schemas of each Kubernetes release; every object
is checked in its strict mode (an unknown field is an error) against each release from
1.33 (where native sidecars are GA) to the newest it ships. A TaskRun, a custom resource,
is checked against the openAPIV3Schema of our CRD with `jsonschema` (OpenAPI's `nullable`
written as JSON Schema's `null` type), as the API server would check it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jsonschema
import kubernetes_validate  # type: ignore[import-untyped]
import kubernetes_validate.utils  # type: ignore[import-untyped]
from packaging.version import Version

from orchestrator.backends.kubernetes.crd import task_run_crd

OLDEST = Version("1.33")
VERSIONS: list[str] = [v for v in kubernetes_validate.utils.all_versions() if Version(v) >= OLDEST]


def validate_everywhere(obj: Mapping[str, Any]) -> list[str]:
    """The Kubernetes versions `obj` was checked against; a ValidationError names the
    field that is wrong in which version."""
    assert VERSIONS, "kubernetes-validate ships no schema of Kubernetes 1.33 or newer"
    for version in VERSIONS:
        kubernetes_validate.validate(dict(obj), version, strict=True)
    return list(VERSIONS)


def as_json_schema(node: Any) -> Any:
    """OpenAPI v3 (as in a CRD) to JSON Schema: `nullable` and the boolean
    `exclusiveMinimum`; `x-kubernetes-*` keys are ignored by jsonschema anyway."""
    if isinstance(node, list):
        return [as_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: as_json_schema(value) for key, value in node.items() if key != "nullable"}
    if out.get("exclusiveMinimum") is True:
        out["exclusiveMinimum"] = out.pop("minimum")
    if node.get("nullable"):
        out["type"] = [node["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def taskrun_problems(taskrun: Mapping[str, Any]) -> list[str]:
    """What the API server would refuse in `taskrun`: `path: message` per problem."""
    crd = task_run_crd().to_dict()
    schema = as_json_schema(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    validator = jsonschema.Draft7Validator(schema)
    return sorted(
        f"{'.'.join(str(p) for p in error.absolute_path)}: {error.message}"
        for error in validator.iter_errors(dict(taskrun))
    )
