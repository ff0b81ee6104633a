"""The TaskRun CustomResourceDefinition: its spec schema is the API's task model.

`TaskCreate.model_json_schema()` (what `POST /api/v1/tasks` validates) is turned into
the structural OpenAPI v3 schema Kubernetes requires: references inlined, `X | None` as
`nullable`, dict keys' patterns dropped (Kubernetes has no `propertyNames` or
`patternProperties`), an open dict's values as `additionalProperties`, JSON Schema's
numeric `exclusiveMinimum` as OpenAPI's boolean one, and unknown fields pruned by the
API server rather than refused. What the schema cannot say (a key's pattern, "exactly
one of env or file") the controller checks with the task model itself before it acts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from lightkube.resources.apiextensions_v1 import CustomResourceDefinition

from orchestrator.backends.kubernetes.options import GROUP, KIND, PLURAL, SINGULAR, VERSION
from orchestrator.tasks.model import Phase, TaskCreate, ToolCalls

# What JSON Schema says that OpenAPI v3 in a CRD either cannot or need not.
DROPPED = frozenset({"title", "examples", "default", "propertyNames", "$defs"})
KEPT = frozenset({
    "type", "description", "properties", "required", "items", "enum", "pattern",
    "minLength", "maxLength", "minimum", "maximum", "minItems", "maxItems",
    "minProperties", "maxProperties", "format", "nullable", "exclusiveMinimum",
    "additionalProperties",
})  # fmt: skip


SCHEMA_VALUED = frozenset({"properties", "items", "patternProperties"})


class SchemaError(ValueError):
    """The task model has a construct this converter does not know (a programming error)."""


def structural(schema: Mapping[str, Any], defs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One JSON Schema node of the task model as a structural OpenAPI v3 node."""
    defs = schema.get("$defs", {}) if defs is None else defs
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        extra = {k: v for k, v in schema.items() if k != "$ref"}
        return structural({**defs[name], **extra}, defs)
    if "anyOf" in schema:
        options = [o for o in schema["anyOf"] if o.get("type") != "null"]
        if len(options) != 1 or len(options) == len(schema["anyOf"]):
            raise SchemaError(f"only `X | None` unions are supported, not {schema['anyOf']}")
        rest = {k: v for k, v in schema.items() if k != "anyOf"}
        return {**structural({**options[0], **rest}, defs), "nullable": True}
    node: dict[str, Any] = {}
    for key, value in schema.items():
        if key not in DROPPED:
            node.update(_keyword(key, value, defs))
    return node


def _keyword(key: str, given: object, defs: Mapping[str, Any]) -> dict[str, Any]:
    """One keyword of a node, as OpenAPI v3 in a CRD says it (maybe nothing)."""
    if key in SCHEMA_VALUED and not isinstance(given, Mapping):
        raise SchemaError(f"{key!r} is not an object in the task model's schema")
    value: Any = given
    if key == "properties":
        return {key: {name: structural(sub, defs) for name, sub in value.items()}}
    if key == "items":
        return {key: structural(value, defs)}
    if key == "patternProperties":
        (values,) = value.values()  # a dict with constrained keys: its values' schema
        return {"additionalProperties": structural(values, defs)}
    if key == "additionalProperties":
        # `false` (extra="forbid"): the API server prunes unknown fields instead
        return {key: structural(value, defs)} if isinstance(value, Mapping) else {}
    if key == "exclusiveMinimum":
        return {"minimum": value, "exclusiveMinimum": True}
    if key in KEPT:
        return {key: value}
    raise SchemaError(f"the task model uses {key!r}, which a CRD schema cannot carry")


def status_schema() -> dict[str, Any]:
    time = {"type": "string", "format": "date-time"}
    condition = {
        "type": "object",
        "required": ["type", "status"],
        "properties": {
            "type": {"type": "string"},
            "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
            "reason": {"type": "string"},
            "message": {"type": "string"},
            "lastTransitionTime": time,
        },
    }
    return {
        "type": "object",
        "properties": {
            "phase": {"type": "string", "enum": [phase.value for phase in Phase]},
            "reason": {"type": "string"},
            "exitCode": {"type": "integer"},
            "jobName": {"type": "string"},
            "startedAt": time,
            "finishedAt": time,
            "observedGeneration": {"type": "integer", "format": "int64"},
            "toolCalls": structural(ToolCalls.model_json_schema()),
            "conditions": {
                "type": "array",
                "items": condition,
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"],
            },
        },
    }


def task_run_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "An agent task: the API's task model as a Kubernetes resource.",
        "required": ["spec"],
        "properties": {
            "spec": structural(TaskCreate.model_json_schema()),
            "status": status_schema(),
        },
    }


def task_run_crd() -> CustomResourceDefinition:
    columns = [
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Agent", "type": "string", "jsonPath": ".spec.agent.name"},
        {"name": "Exit", "type": "integer", "jsonPath": ".status.exitCode", "priority": 1},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    crd = CustomResourceDefinition.from_dict({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "plural": PLURAL,
                "singular": SINGULAR,
                "listKind": f"{KIND}List",
                "shortNames": ["tr"],
                "categories": ["orchestrator"],
            },
            "versions": [{
                "name": VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": columns,
                "schema": {"openAPIV3Schema": task_run_schema()},
            }],
        },
    })  # fmt: skip
    return cast(CustomResourceDefinition, crd)
