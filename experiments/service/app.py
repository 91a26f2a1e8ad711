"""The FastAPI application: API + dashboard + scheduler over one store.

Why a factory: `carbs serve` and the tests build the same app over any store URL; the lifespan
starts the scheduler and, on shutdown, stops every running sweep cleanly (trials requeued, sweep
back to `queued`) before the process exits.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from carbs.errors import SpecError
from experiments.service import api, web
from experiments.service.context import ServiceContext, ServiceSettings, authenticate
from experiments.service.guard import RequestGuard
from experiments.store.engine import StoreUnavailable


def create_app(settings: ServiceSettings) -> FastAPI:
    """Build the service; the store is opened (and migrated) when the app starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = ServiceContext.open(settings)
        app.state.ctx = ctx
        if settings.run_scheduler:
            ctx.scheduler.start()
        try:
            yield
        finally:
            ctx.close()

    app = FastAPI(
        title="carbs",
        summary="Cost-aware hyperparameter and scaling-law sweeps, shared over HTTP",
        description=(
            "Reading is open to everyone; submitting needs an API token "
            "(`Authorization: Bearer ...`), and changing or cancelling a sweep needs its "
            "owner's token."
        ),
        version="0.1.0",
        lifespan=lifespan,
        # FastAPI's Swagger/ReDoc pages load their scripts from a CDN; the service must work
        # offline, so the schema is served as JSON and rendered by our own /api-docs page.
        docs_url=None,
        redoc_url=None,
    )
    app.include_router(api.router)
    app.include_router(web.router)
    app.mount("/static", StaticFiles(directory=str(web.STATIC_DIR)), name="static")
    app.add_middleware(RequestGuard, authenticate=authenticate)
    app.add_exception_handler(StarletteHTTPException, web.html_or_json_error)
    app.add_exception_handler(SpecError, _stored_spec_invalid)
    app.add_exception_handler(StoreUnavailable, _store_unavailable)
    return app


async def _stored_spec_invalid(request: Request, exc: Exception) -> JSONResponse:
    """A sweep stored by an older version whose definition today's rules refuse."""
    return JSONResponse({"detail": str(exc)}, status_code=409)


async def _store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": f"the store is unavailable: {exc}"}, status_code=503)
