"""The Kubernetes API as the controller sees it: lightkube's async client, the TaskRun
resource type, and the HTTP status of a failed call.

lightkube raises `ApiError` (a subclass of its HTTP client's `HTTPStatusError`) when the
server answers a `Status` as `application/json`; a server that adds a charset to that
header (kmock's emulator does) gets the base class. `status_of` reads the code from
either, so callers test one number: 404 (gone), 409 (already there).
"""

from __future__ import annotations

from typing import Any

import httpx2
from lightkube import AsyncClient, KubeConfig
from lightkube.generic_resource import create_namespaced_resource

from orchestrator.backends.kubernetes.options import GROUP, KIND, PLURAL, VERSION

TaskRun = create_namespaced_resource(GROUP, VERSION, KIND, PLURAL)
NOT_FOUND = 404
CONFLICT = 409
Failure = httpx2.HTTPError


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of a failed call; None when no answer came (connection lost)."""
    if isinstance(exc, httpx2.HTTPStatusError):
        return exc.response.status_code
    return None


def client_for(
    server: str | None, namespace: str, *, token: str = "", field_manager: str = "orchestrator"
) -> AsyncClient:
    """A client of `server` (a URL), or of the cluster the process runs in (None: the
    service account's token and CA, as every in-cluster client finds them)."""
    config: Any
    if server is None:
        config = KubeConfig.from_env()
    else:
        config = KubeConfig.from_dict({
            "clusters": [{"name": "api", "cluster": {"server": server.rstrip("/")}}],
            "users": [{"name": "orchestrator", "user": {"token": token or "-"}}],
            "contexts": [{
                "name": "api",
                "context": {"cluster": "api", "user": "orchestrator", "namespace": namespace},
            }],
            "current-context": "api",
        })  # fmt: skip
    return AsyncClient(config, namespace=namespace, field_manager=field_manager)
