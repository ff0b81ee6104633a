"""What the API's handlers share: the store, the controller, the backend, the config."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from orchestrator.api.auth import TokenCheck
from orchestrator.backends.base import ExecutionBackend
from orchestrator.config import OrchestratorConfig
from orchestrator.controller.scheduler import Controller
from orchestrator.metrics import Metrics
from orchestrator.tasks.logs import LogArchive
from orchestrator.tasks.store import TaskStore


@dataclass(frozen=True)
class Runtime:
    config: OrchestratorConfig
    store: TaskStore
    backend: ExecutionBackend
    controller: Controller
    archive: LogArchive
    metrics: Metrics
    tokens: TokenCheck
    environ: Mapping[str, str]
    clock: Callable[[], float]
