"""The HTTP application: an app factory so tests and the CLI build the same thing."""

from __future__ import annotations

from fastapi import FastAPI

from orchestrator import __version__
from orchestrator.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    app = FastAPI(title="orchestrator", version=__version__)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "service": "orchestrator", "version": __version__}

    return app
