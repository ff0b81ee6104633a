"""Liveness, readiness and metrics: open endpoints for probes and scrapers."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from orchestrator import __version__
from orchestrator.metrics import CONTENT_TYPE
from orchestrator.runtime import Runtime

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    """The process serves (liveness)."""
    return {"status": "ok", "service": "orchestrator", "version": __version__}


@router.get("/api/v1/health")
async def api_health() -> dict[str, str]:
    """The original platform's shape: status, version, timestamp."""
    return {
        "status": "healthy",
        "version": __version__,
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }


@router.get(
    "/ready",
    responses={503: {"description": "The execution backend does not answer"}},
)
async def ready(request: Request) -> JSONResponse:
    """200 when the backend answered its last check (at most a few seconds ago); else 503."""
    rt: Runtime = request.app.state.runtime
    controller = rt.controller
    body = {
        "ready": controller.backend_ready,
        "backend": rt.backend.name,
        "problem": controller.backend_problem or None,
        "running": controller.active,
        "max_running": rt.config.tasks.max_running,
    }
    return JSONResponse(body, status_code=200 if controller.backend_ready else 503)


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE: {}}}})
async def metrics(request: Request) -> Response:
    """Prometheus text format: tasks by phase, start latency and its parts, durations."""
    rt: Runtime = request.app.state.runtime
    return Response(rt.metrics.render(), media_type=CONTENT_TYPE)
