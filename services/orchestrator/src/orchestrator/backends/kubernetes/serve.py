"""`orchestrator controller`: the TaskRun controller as a process, as the Deployment in
deploy/ runs it, with `/health` and `/api/v1/health` (the process answers), `/ready` (the
Kubernetes API answered the last call) for its probes, and `/metrics` (TaskRuns by phase;
while the API server does not answer, still 200: `orchestrator_backend_up 0`, no counts).
Requests pass the Docker app's RequestGuard (401 before any body is read, 413 past
tasks.max_request_bytes) and its 405 handler.

    orchestrator controller [--namespace NS] [--server URL] [--identity NAME] ...

In a cluster it finds the API server, its token and CA as every in-cluster client does,
and its namespace in ORCHESTRATOR_NAMESPACE (the Deployment sets it from the pod's own);
the identity in the Lease is the pod's name (ORCHESTRATOR_POD_NAME). `--server` points
it at another API server (plain HTTP, for an emulator or `kubectl proxy`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse

from orchestrator import __version__
from orchestrator.api import health
from orchestrator.api.auth import TokenCheck
from orchestrator.api.guard import RequestGuard
from orchestrator.api.views import method_not_allowed
from orchestrator.backends.base import LaunchError
from orchestrator.backends.kubernetes import tasks_api
from orchestrator.backends.kubernetes.api import Failure, client_for
from orchestrator.backends.kubernetes.controller import TaskRunController
from orchestrator.backends.kubernetes.inputs import secret_key_ref
from orchestrator.backends.kubernetes.options import KubernetesOptions
from orchestrator.backends.kubernetes.render import options_from
from orchestrator.backends.kubernetes.taskruns import TaskRuns
from orchestrator.metrics import CONTENT_TYPE, Metrics
from orchestrator.settings import Settings, SettingsError, parse_log_level, parse_port
from orchestrator.tasks.model import Phase

NAME = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
# A scrape waits at most this long for the TaskRuns' list: within Prometheus' default
# scrape_timeout (10 s), so a slow API server reads as down, not as a failed scrape.
METRICS_LIST_SECONDS = 5.0
log = logging.getLogger("orchestrator.kubernetes")


@dataclass(frozen=True)
class ControllerSettings:
    base: Settings
    namespace: str
    identity: str
    server: str | None
    options: KubernetesOptions


def settings_from(args: argparse.Namespace, env: Mapping[str, str]) -> ControllerSettings:
    """SettingsError naming the option or variable at fault."""
    base = Settings.from_env(env, config_path=args.config)
    base = replace(
        base,
        host=args.host or base.host,
        port=parse_port("--port", args.port, base.port),
        log_level=parse_log_level(args.log_level) if args.log_level else base.log_level,
    )
    namespace = args.namespace or env.get("ORCHESTRATOR_NAMESPACE", "")
    if not re.match(NAME, namespace):
        raise SettingsError(
            "--namespace (ORCHESTRATOR_NAMESPACE) must name a namespace, e.g. agents"
            + (f"; {namespace!r} is not a DNS label" if namespace else "")
        )
    identity = args.identity or env.get("ORCHESTRATOR_POD_NAME") or socket.gethostname()
    clone_image = args.clone_image or env.get("ORCHESTRATOR_CLONE_IMAGE") or None
    try:
        options = options_from(base.config, clone_image)
        if "max_running" in base.config.tasks.model_fields_set:
            raise ValueError(
                "tasks.max_running: not applied on Kubernetes (the cluster schedules the "
                "Jobs: bound them with a ResourceQuota on count/jobs.batch); remove it"
            )
        for name, source in base.config.agent.secrets.items():  # fail at start, not per task
            secret_key_ref(f"agent.secrets.{name}", source.file)
    except (ValueError, LaunchError) as exc:
        raise SettingsError(f"{base.config_path or 'the config'}: {exc}") from None
    return ControllerSettings(base, namespace, identity, args.server, options)


def create_controller_app(settings: ControllerSettings, environ: Mapping[str, str]) -> FastAPI:
    """The probes and `/api/v1/tasks` (taskruns.py), the controller in its lifespan."""
    state: dict[str, TaskRunController] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = client_for(settings.server, settings.namespace, field_manager="orchestrator")
        controller = TaskRunController(
            client,
            settings.namespace,
            settings.base.config,
            settings.options,
            identity=settings.identity,
        )
        state["controller"] = controller
        app.state.taskruns = TaskRuns(client, settings.namespace)
        stop = asyncio.Event()
        running = asyncio.create_task(controller.run(stop))
        try:
            yield
        finally:
            stop.set()
            await running
            await client.close()

    config = settings.base.config
    tokens = TokenCheck.from_config(config.auth, environ)
    app = FastAPI(title="orchestrator controller", version=__version__, lifespan=lifespan)
    app.state.config = config
    app.state.tokens = tokens
    # As the Docker app (app.py): 401 before a body is read, 413 past max_request_bytes,
    # a 405 naming every method of the path, the open probes.
    app.add_middleware(RequestGuard, tokens=tokens, max_body_bytes=config.tasks.max_request_bytes)
    app.add_exception_handler(405, method_not_allowed)
    app.add_api_route("/health", health.health, methods=["GET"], tags=["health"])
    app.add_api_route("/api/v1/health", health.api_health, methods=["GET"], tags=["health"])
    app.include_router(tasks_api.router)
    counts: dict[Phase, int] = {}
    metrics = Metrics(lambda: counts)

    @app.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE: {}}}})
    async def metrics_text() -> Response:
        """Prometheus text format: the namespace's TaskRuns by phase, whether the API answers.
        When the TaskRuns cannot be listed the scrape still succeeds: the backend is down
        and no counts are given (none stale)."""
        found: dict[Phase, int] | None = None
        try:
            async with asyncio.timeout(METRICS_LIST_SECONDS):
                found = await app.state.taskruns.counts()
        except (Failure, TimeoutError) as exc:
            log.warning("/metrics: the TaskRuns could not be listed: %s", exc or "no answer")
        counts.clear()
        counts.update(found or {})
        up = found is not None and state["controller"].api_answers
        metrics.backend_up.set(1 if up else 0)
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/ready")
    async def ready() -> JSONResponse:
        controller = state["controller"]
        body = {"ready": controller.api_answers, "leading": controller.elector.leading}
        return JSONResponse(body, status_code=200 if controller.api_answers else 503)

    return app


def run_controller(args: argparse.Namespace) -> int:
    import sys

    import uvicorn

    from toolman import logs

    try:
        settings = settings_from(args, os.environ)
    except SettingsError as exc:
        print(f"orchestrator: error: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.base.log_level)
    uvicorn.run(
        create_controller_app(settings, os.environ),
        host=settings.base.host,
        port=settings.base.port,
        log_level=settings.base.log_level,
        log_config=None,
        access_log=False,
    )
    return 0
