"""The HTTP application: `create_app(settings)` builds it with its store, backend and
controller; tests pass their own backend, clock and environment."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from orchestrator import __version__
from orchestrator.api import health, tasks
from orchestrator.api.auth import NOT_CONFIGURED, TokenCheck
from orchestrator.api.guard import RequestGuard
from orchestrator.api.views import method_not_allowed
from orchestrator.backends.base import ExecutionBackend
from orchestrator.config import ConfigError, OrchestratorConfig
from orchestrator.controller.scheduler import Controller
from orchestrator.metrics import Metrics
from orchestrator.runtime import Runtime
from orchestrator.settings import Settings
from orchestrator.tasks.logs import LogArchive
from orchestrator.tasks.store import TaskStore

log = logging.getLogger("orchestrator")
BackendFactory = Callable[
    [OrchestratorConfig, httpx.AsyncClient, Mapping[str, str]], ExecutionBackend
]


def docker_backend(
    config: OrchestratorConfig, http: httpx.AsyncClient, environ: Mapping[str, str]
) -> ExecutionBackend:
    from orchestrator.backends.docker import DockerBackend, DockerOptions
    from toolman.secrets import resolve_secret

    environment = dict(environ)
    if config.docker.host:
        environment["DOCKER_HOST"] = config.docker.host
    toolman_env = {
        name: resolve_secret(value, f"toolman.env.{name}", environ)
        for name, value in config.toolman.env.items()
    }
    return DockerBackend(
        DockerOptions(
            agent_image=config.agent.image,
            toolman_image=config.toolman.image,
            network=config.docker.network,
            user=config.docker.user,
            instance=config.docker.instance,
            toolman_env=toolman_env,
            toolman_cpu=config.toolman.resources.cpu,
            toolman_memory_bytes=config.toolman_memory,
            pids_limit=config.docker.pids_limit,
            ready_timeout_seconds=config.toolman.ready_timeout_seconds,
            max_workspace_bytes=config.tasks.max_workspace_bytes,
            clone_timeout_seconds=config.tasks.clone_timeout_seconds,
            environment=environment,
        ),
        http,
    )


def open_store(settings: Settings, clock: Callable[[], float] = time.time) -> TaskStore:
    """The task database of the state directory, and with it the directory's lock."""
    return TaskStore(settings.state_dir / "tasks.db", clock)


def create_app(
    settings: Settings | None = None,
    *,
    backend_factory: BackendFactory = docker_backend,
    environ: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.time,
    store: TaskStore | None = None,
) -> FastAPI:
    """`store`: one already open (`orchestrator serve` opens it before serving, so a state
    directory it cannot use is one line, not a traceback); the app closes it at shutdown.
    Without one, the lifespan opens `<state_dir>/tasks.db`."""
    settings = settings or Settings()
    environ = os.environ if environ is None else environ
    config = settings.config
    try:  # fails before serving anything
        tokens = TokenCheck.from_config(config.auth, environ)
    except ConfigError as exc:  # auth.tokens of the config file: name the file too
        raise ConfigError(f"{settings.config_path or 'the config'}: {exc}") from None
    if not tokens.configured:
        log.warning("%s; the task API answers 503 until then", NOT_CONFIGURED)

    given = store

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = settings.state_dir
        store = given or open_store(settings, clock)
        async with httpx.AsyncClient(timeout=httpx.Timeout(10.0)) as http:
            backend = backend_factory(config, http, environ)
            metrics = Metrics(store.counts)
            archive = LogArchive(state / "logs")
            controller = Controller(
                store=store,
                backend=backend,
                config=config,
                archive=archive,
                metrics=metrics,
                environ=environ,
                clock=clock,
            )
            app.state.runtime = Runtime(
                config, store, backend, controller, archive, metrics, tokens, environ, clock
            )
            app.state.tokens = tokens
            await controller.start()
            try:
                yield
            finally:
                await controller.stop()
                await backend.close()
                store.close()

    app = FastAPI(
        title="orchestrator",
        version=__version__,
        description="Runs coding-agent tasks: each an agent container beside a toolman sidecar.",
        lifespan=lifespan,
    )
    app.add_middleware(RequestGuard, tokens=tokens, max_body_bytes=config.tasks.max_request_bytes)
    app.add_exception_handler(405, method_not_allowed)
    app.include_router(health.router)
    app.include_router(tasks.router)
    return app
