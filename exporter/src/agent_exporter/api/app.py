"""The HTTP application: `create_app(settings)`, the composition root.

It wires the routes (ingest, the Fixer Agent's executions, the read API, operations), the error
shape, the request timing, access control and the OpenAPI document together. Its lifespan starts
the `Service` (opening the store, migrating an empty database, starting the writer thread) and stops
it on shutdown after in-flight requests.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from starlette.concurrency import run_in_threadpool

from .. import __version__
from ..config import Settings
from ..store import describe_url
from . import auth, export, openapi, ops, read, scores, web
from .executions import post_executions
from .http import ORJSONResponse, install_error_handlers
from .ingest import post_runs
from .otlp import post_traces
from .service import Service
from .tuning import settle_garbage_collector

log = logging.getLogger(__name__)


def create_app(settings: Settings, *, registry: CollectorRegistry | None = None) -> FastAPI:
    """The application; its lifespan starts and stops the service."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = await run_in_threadpool(Service.start, settings, registry)
        app.state.service = service
        service.assembler.start()
        settle_garbage_collector()
        log.info("agent-exporter %s ready, store %s", __version__, describe_url(settings.database_url))
        try:
            yield
        finally:
            await service.assembler.stop()
            await run_in_threadpool(service.stop)

    app = FastAPI(
        title="agent-exporter",
        version=__version__,
        lifespan=lifespan,
        default_response_class=ORJSONResponse,
    )
    app.add_middleware(ops.HTTPMetricsMiddleware)
    app.router.add_route("/api/v1/runs", post_runs, methods=["POST"], include_in_schema=False)
    app.router.add_route("/api/v1/executions", post_executions, methods=["POST"], include_in_schema=False)
    app.router.add_route("/v1/traces", post_traces, methods=["POST"], include_in_schema=False)
    app.router.add_route(
        "/api/v1/runs/{run_id:path}/scores", scores.post_scores, methods=["POST"], include_in_schema=False
    )
    app.include_router(scores.router)  # before read's /runs/{run_id:path}, which would take /scores
    app.include_router(read.router)
    app.include_router(export.router)
    app.include_router(web.router)
    app.mount("/static", web.static, name="static")
    ops.add_routes(app)
    install_error_handlers(app)
    app.openapi = lambda: openapi.document(app, settings)  # type: ignore[method-assign]
    auth.install(app, settings.security)
    return app
