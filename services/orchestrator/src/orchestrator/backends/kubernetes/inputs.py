"""One task's inputs as Kubernetes objects: a ConfigMap with the prompt, the workspace
files and the generated toolman config, and a Secret with the agent's toolman token.

The toolman config is made by the same code as on Docker (`tasks.policy.toolman_config`,
checked by toolman's own parser); the Secret holds the token, the ConfigMap only its
SHA-256. A task's secrets become `secretKeyRef`s: on Kubernetes a task names a key of a
Secret in its namespace by the path where Kubernetes would mount it,
`{"file": "/run/secrets/<secret>/<key>"}`; the orchestrator never reads the value.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lightkube.models.meta_v1 import ObjectMeta, OwnerReference
from lightkube.resources.core_v1 import ConfigMap, Secret

from orchestrator.backends.base import LaunchError
from orchestrator.backends.kubernetes.options import (
    API_VERSION,
    KIND,
    SecretKeyRef,
    inputs_name,
    labels,
)
from orchestrator.config import SecretSource
from orchestrator.tasks.model import SecretRef, TaskCreate, file_bytes
from orchestrator.tasks.policy import PolicyError, toolman_config
from toolman.secrets import sha256_hex

PROMPT_KEY = "prompt"
TOOLMAN_KEY = "toolman.json"
FILES_KEY = "files.json"
TOKEN_KEY = "toolman-token"  # noqa: S105 - a key name
CONFIGMAP_LIMIT = 1024 * 1024  # the API server's limit on one object
SECRET_PATH = re.compile(r"^/run/secrets/([a-z0-9]([-a-z0-9.]*[a-z0-9])?)/([-._a-zA-Z0-9]+)$")


@dataclass(frozen=True)
class TaskRunRef:
    """The TaskRun that owns what is rendered (its uid makes the owner reference)."""

    name: str
    namespace: str
    uid: str

    def owner(self) -> OwnerReference:
        return OwnerReference(
            apiVersion=API_VERSION,
            kind=KIND,
            name=self.name,
            uid=self.uid,
            controller=True,
            blockOwnerDeletion=True,
        )

    def meta(self, name: str, role: str) -> ObjectMeta:
        return ObjectMeta(
            name=name,
            namespace=self.namespace,
            labels=labels(self.name, role),
            ownerReferences=[self.owner()],
        )


@dataclass(frozen=True)
class FileEntry:
    """A workspace file: its ConfigMap key, its path in the workspace, its mode."""

    key: str
    path: str
    executable: bool = False


@dataclass(frozen=True)
class TaskInputs:
    config_map: ConfigMap
    secret: Secret
    files: tuple[FileEntry, ...]
    secret_env: Mapping[str, SecretKeyRef] = field(default_factory=dict)


def secret_key_ref(field: str, file: str | None) -> SecretKeyRef:
    """The Secret key a secret reference names; LaunchError naming `field`."""
    found = SECRET_PATH.fullmatch(file or "")
    if found is None:
        raise LaunchError(
            f"{field}: on Kubernetes a secret is a key of a Secret in the task's "
            'namespace, written {"file": "/run/secrets/<secret>/<key>"}'
        )
    return SecretKeyRef(secret=found.group(1), key=found.group(3))


def render_inputs(
    owner: TaskRunRef,
    spec: TaskCreate,
    base: Mapping[str, Any],
    token: str | None = None,
    operator_secrets: Mapping[str, SecretRef | SecretSource] | None = None,
) -> TaskInputs:
    """The ConfigMap and the Secret of one task. LaunchError (naming the field) when the
    task cannot run on Kubernetes as written. `operator_secrets` are the config's
    `agent.secrets`, given to every agent (the task's own come after them)."""
    if spec.repository is not None and spec.repository.credentials is not None:
        raise LaunchError(
            "repository.credentials: not supported on the kubernetes backend; clone a "
            "repository that needs none, or run the task on the docker backend"
        )
    token = token or secrets.token_urlsafe(32)
    try:
        sidecar = toolman_config(base, spec.agent.name, spec.tools, token_sha256=sha256_hex(token))
    except PolicyError as exc:
        raise LaunchError(str(exc)) from exc
    entries = tuple(
        FileEntry(f"file-{index}", file.path, file.executable)
        for index, file in enumerate(spec.files)
    )
    binary = {
        entry.key: base64.b64encode(file_bytes(file)).decode()
        for entry, file in zip(entries, spec.files, strict=True)
    }
    index = [{"key": e.key, "path": e.path, "executable": e.executable} for e in entries]
    data = {
        PROMPT_KEY: spec.prompt,
        TOOLMAN_KEY: json.dumps(sidecar, indent=2, sort_keys=True),
        FILES_KEY: json.dumps(index),
    }
    size = sum(len(v) for v in data.values()) + sum(len(v) for v in binary.values())
    if size > CONFIGMAP_LIMIT:
        raise LaunchError(
            f"files: the prompt and files take {size} bytes as a ConfigMap; Kubernetes "
            f"keeps at most {CONFIGMAP_LIMIT} — put large inputs in the repository"
        )
    name = inputs_name(owner.name)
    config_map = ConfigMap(
        metadata=owner.meta(name, "inputs"), data=data, binaryData=binary or None
    )
    secret = Secret(
        metadata=owner.meta(name, "inputs"),
        type="Opaque",
        data={TOKEN_KEY: base64.b64encode(token.encode()).decode()},
    )
    secret_env = {
        name: secret_key_ref(f"agent.secrets.{name}", source.file)
        for name, source in (operator_secrets or {}).items()
    } | {name: secret_key_ref(f"secrets.{name}", ref.file) for name, ref in spec.secrets.items()}
    return TaskInputs(config_map, secret, entries, secret_env)
