"""The exporter's own operations: `/metrics`, the probes `/healthz` and `/readyz`, and the timing of
every request by route (the HTTP metrics of the exporter itself)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ..store import StoreError
from .http import RETRY_AFTER, ORJSONResponse
from .service import Service, service

TEXT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_TYPE: Final = "application/openmetrics-text; version=1.0.0; charset=utf-8"


async def get_metrics(request: Request) -> Response:
    """Prometheus text exposition, or OpenMetrics (with exemplars) when the scraper asks for it."""
    openmetrics = wants_openmetrics(request.headers.get("accept", ""))
    payload = await run_in_threadpool(service(request).metrics.render, openmetrics)
    return Response(payload, media_type=OPENMETRICS_TYPE if openmetrics else TEXT_TYPE)


def wants_openmetrics(accept: str) -> bool:
    """Whether the Accept header asks for OpenMetrics 1.0 (Prometheus does by default)."""
    for item in accept.split(","):
        media, *params = (p.strip() for p in item.split(";"))
        if media == "application/openmetrics-text":
            versions = [p.split("=", 1)[1] for p in params if p.startswith("version=")]
            return not versions or versions[0] in {"1.0.0", "1.0"}
    return False


async def healthz() -> Response:
    """The process is alive."""
    return ORJSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """The store answers and the writer runs: ready for traffic."""
    svc = service(request)
    if not svc.writer.alive:
        return ORJSONResponse({"status": "unavailable", "reason": "the writer has stopped"}, status_code=503)
    failed_write = svc.writer.last_error
    try:
        await run_in_threadpool(svc.store.ping)
        if failed_write is not None:  # the store answers reads; does it take writes again?
            await run_in_threadpool(svc.store.check_writable)
    except StoreError as exc:
        svc.metrics.store_errors.labels("ping").inc()
        return ORJSONResponse(
            {"status": "unavailable", "code": exc.code, "reason": str(exc)},
            status_code=503,
            headers=RETRY_AFTER,
        )
    if failed_write is not None and svc.writer.last_error is failed_write:
        svc.writer.last_error = None
    return ORJSONResponse({"status": "ready"})


def add_routes(app: FastAPI) -> None:
    """Serve `/metrics` and the probes."""
    app.add_api_route("/metrics", get_metrics, methods=["GET"], tags=["operations"], include_in_schema=True)
    app.add_api_route("/healthz", healthz, methods=["GET"], tags=["operations"], summary="Liveness")
    app.add_api_route("/readyz", readyz, methods=["GET"], tags=["operations"], summary="Readiness")


class HTTPMetricsMiddleware:
    """Times every request by route template (never the raw path: ids would explode the labels)."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app
        self._paths: dict[Any, str] | None = None  # endpoint -> route template

    def _handler(self, scope: MutableMapping[str, Any]) -> str:
        route = scope.get("route")
        if route is not None:
            return str(getattr(route, "path", "unmatched"))
        # FastAPI's router does not record the route; the endpoint the router chose says it too
        if self._paths is None:
            self._paths = {
                getattr(r, "endpoint", None): getattr(r, "path", "") for r in scope["app"].router.routes
            }
        return self._paths.get(scope.get("endpoint"), "unmatched")

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:
        """ASGI entry point."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            svc: Service | None = getattr(scope["app"].state, "service", None)
            if svc is not None:
                svc.metrics.observe_http(
                    self._handler(scope), scope["method"], status, time.perf_counter() - start
                )
