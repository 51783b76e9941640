"""The HTTP service: ingest, `/metrics`, health, and the OpenAPI document.

`create_app(settings)` builds a FastAPI application whose lifespan opens the store (migrating an
empty database), starts the writer thread, and closes both on shutdown after in-flight requests.
"""

from __future__ import annotations

import gc
import logging
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from . import __version__, auth, compat, migrations, read_api
from .api import export, web
from .config import Settings
from .ingest import Ingest, Writer
from .jsonbody import MalformedJSONError, parse_json
from .metrics import Metrics
from .pricing import PriceBook
from .record import CONTROL_CHARACTERS, MAX_NAME_LENGTH, RunRecord
from .store import Store, StoreError, StoreSettings, describe_url

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS: Final = 5
JSON_TYPES: Final = ("application/json",)
TEXT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_TYPE: Final = "application/openmetrics-text; version=1.0.0; charset=utf-8"


class ORJSONResponse(JSONResponse):
    """JSON responses rendered by orjson (several times faster than the standard library)."""

    def render(self, content: Any) -> bytes:
        """Serialise `content`."""
        return orjson.dumps(content)


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> ORJSONResponse:
    """The one shape of request-level errors: `{"error": {"code": ..., "message": ...}}`."""
    return ORJSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


class SchemaOutdatedError(RuntimeError):
    """The database is behind this version's migrations; `agent-exporter db upgrade` fixes it."""


@dataclass
class Service:
    """Everything a request handler needs, built once per application."""

    settings: Settings
    store: Store
    registry: CollectorRegistry
    metrics: Metrics
    prices: PriceBook
    writer: Writer
    ingest: Ingest

    @classmethod
    def start(cls, settings: Settings, registry: CollectorRegistry | None = None) -> Service:
        """Open the store (migrating an empty one), build the metrics and start the writer."""
        prices = PriceBook.from_file(settings.price_file)
        store = Store(
            StoreSettings(
                settings.database_url, settings.sqlite_synchronous, sqlite_background_checkpoints=True
            )
        )
        try:
            prepare_schema(store)
        except Exception:
            store.close()
            raise
        store.start_checkpoints()
        registry = registry or CollectorRegistry(auto_describe=True)
        metrics = Metrics(registry, settings.metrics.label_config(), version=__version__)
        writer = Writer(store, metrics)
        try:
            store.check_writable()  # a read-only file or a full disk: serve, but not as ready
        except StoreError as exc:
            writer.last_error = exc
            log.warning("the store does not take writes: %s", exc)
        ingest = Ingest(writer, metrics, prices, max_future_skew=settings.limits.max_future_skew_seconds)
        return cls(settings, store, registry, metrics, prices, writer, ingest)

    def stop(self) -> None:
        """Store what is queued and release the database."""
        self.writer.close()
        self.store.close()


def prepare_schema(store: Store) -> None:
    """Migrate an empty database; refuse one that is behind (replicas must not race to migrate)."""
    if store.is_empty():
        log.info("empty database at %s: creating the schema", describe_url(store.url))
        migrations.upgrade(store)
        return
    current, head = migrations.current_revision(store), migrations.head_revision()
    if current != head:
        raise SchemaOutdatedError(
            f"the database at {describe_url(store.url)} is at migration {current or 'none'}, this version "
            f"needs {head}: run `agent-exporter db upgrade` first"
        )


GC_THRESHOLD: Final = (50_000, 20, 10)
#: seconds a thread may hold the interpreter lock while another waits (Python's default: 0.005).
#: The writer thread gives the lock up for every SQLite statement and fsync; with the default it
#: then waits up to 5 ms to get it back from a thread validating the next request, several times
#: per transaction. 1 ms made batch ingest about a tenth faster (docs/BENCHMARKS.md).
SWITCH_INTERVAL: Final = 0.001


def settle_garbage_collector() -> None:
    """Keep the cyclic garbage collector's pauses out of the request path.

    A batch allocates thousands of short-lived containers, which with Python's default threshold
    (700) run a collection every few records; and every full collection used to walk the objects
    made at start-up (modules, the price table, SQLAlchemy's caches). Those are frozen out of the
    collector's sight, and young objects are collected seventy times less often. A batch of 1,000
    keeps some 40,000 containers alive until it is answered (its JSON, its validated records, its
    runs): at 10,000 the collector walked each of them several times, a tenth of the CPU of batch
    ingest; the middle generation is collected half as often too. The tail latency of
    single-record POSTs and the rate of batches is what this buys (docs/BENCHMARKS.md). It also
    sets the thread switch interval (`SWITCH_INTERVAL`).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)
    sys.setswitchinterval(SWITCH_INTERVAL)


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


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
            service: Service | None = getattr(scope["app"].state, "service", None)
            if service is not None:
                service.metrics.observe_http(
                    self._handler(scope), scope["method"], status, time.perf_counter() - start
                )


class BodyTooLargeError(Exception):
    """The request body is over the configured limit."""


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (before reading it all) one over `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLargeError
    # the ASGI messages themselves: Request.stream's generator cost more than a small body
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise BodyTooLargeError
            chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media in JSON_TYPES or (media.startswith("application/") and media.endswith("+json"))


BACKFILL_DESCRIPTION: Final = (
    "history being imported: store the runs without counting them in the agent_* metrics, where old "
    "runs would look like a spike of new ones"
)
_BOOLEANS: Final = {
    "true": True,
    "1": True,
    "yes": True,
    "on": True,
    "false": False,
    "0": False,
    "no": False,
    "off": False,
}


async def post_runs(request: Request) -> Response:
    """Store one run record, or a batch `{"runs": [...]}`; each record is judged on its own.

    A single record answers 201 (accepted), 200 (duplicate), 409 (conflict) or 422 (rejected);
    a batch answers 200 with an outcome per record. 503 with Retry-After means nothing was stored.

    A plain Starlette endpoint, documented by hand in `_openapi`: FastAPI's dependency solving cost
    more than the rest of a small request, and this is the path every agent run takes.
    """
    return await _ingest(request, "runs")


async def post_executions(request: Request) -> Response:
    """Store the Fixer Agent's own `AgentExecutionMetrics` objects (one, or `{"executions": [...]}`),
    as run records of the agent named by `?agent=` (default `fixer`); answers as `POST /api/v1/runs`,
    with errors named by the execution's own fields."""
    agent = request.query_params.get("agent", "fixer")
    if not agent.strip() or len(agent) > MAX_NAME_LENGTH or CONTROL_CHARACTERS.search(agent):
        return error_response(
            422, "invalid_request", f"agent: must be 1 to {MAX_NAME_LENGTH} printable characters"
        )

    def convert(records: list[Any], received_at: float) -> list[Any]:
        # the receipt time the runs are resolved with ends the executions that have no endTime
        received = datetime.fromtimestamp(received_at, UTC).isoformat()
        return [compat.to_run_record(r, agent=agent, received_at=received) for r in records]

    return await _ingest(request, "executions", convert)


async def _ingest(
    request: Request, key: str, convert: Callable[[list[Any], float], list[Any]] | None = None
) -> Response:
    """The ingest endpoints' common path: limits, JSON, the batch shape, then `Ingest.handle`."""
    service = _service(request)
    limits = service.settings.limits
    received_at = time.time()
    metrics = service.metrics
    # most requests have no query string: then there is nothing to parse
    asked = request.query_params.get("backfill", "false") if request.scope.get("query_string") else "false"
    backfill = _BOOLEANS.get(asked.lower())
    if backfill is None:
        return error_response(422, "invalid_request", "backfill: must be true or false")
    if not _is_json(request.headers.get("content-type")):
        metrics.observe_rejection("unsupported_media_type")
        return error_response(415, "unsupported_media_type", "Content-Type must be application/json")
    try:
        body = await read_body(request, limits.max_body_bytes)
    except BodyTooLargeError:
        metrics.observe_rejection("body_too_large")
        return error_response(
            413,
            "body_too_large",
            f"the body is over the limit of {limits.max_body_bytes} bytes; send smaller batches",
        )
    try:
        payload = parse_json(body)
    except MalformedJSONError as exc:
        metrics.observe_rejection("malformed_json")
        return error_response(400, "malformed_json", f"the body is not valid JSON: {exc}")

    batch = isinstance(payload, list) or (isinstance(payload, dict) and key in payload)
    records: Any = payload.get(key) if isinstance(payload, dict) and batch else payload
    if not batch:
        records = [payload]
    elif not isinstance(records, list):
        metrics.observe_rejection("array")
        return error_response(422, "invalid_batch", f"{key}: must be an array of records")
    if len(records) > limits.max_batch_records:
        metrics.observe_rejection("batch_too_large", len(records))
        return error_response(
            413,
            "batch_too_large",
            f"{key}: {len(records)} records is over the limit of {limits.max_batch_records} per request",
        )
    if convert is not None:
        records = convert(records, received_at)
    try:
        result = await service.ingest.handle(records, received_at=received_at, batch=batch, backfill=backfill)
    except StoreError as exc:
        return error_response(
            503,
            exc.code,
            f"nothing was stored: {exc}; retry later",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    if convert is not None:
        result.rename_fields(compat.execution_field)
    body_out = result.as_dict()
    if batch:
        return ORJSONResponse(body_out, status_code=200)
    outcome = result.results[0].outcome
    status = {"accepted": 201, "duplicate": 200, "conflict": 409, "rejected": 422}[outcome]
    return ORJSONResponse(body_out, status_code=status)


async def get_metrics(request: Request) -> Response:
    """Prometheus text exposition, or OpenMetrics (with exemplars) when the scraper asks for it."""
    openmetrics = _wants_openmetrics(request.headers.get("accept", ""))
    payload = await run_in_threadpool(_service(request).metrics.render, openmetrics)
    return Response(payload, media_type=OPENMETRICS_TYPE if openmetrics else TEXT_TYPE)


def _wants_openmetrics(accept: str) -> bool:
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
    service = _service(request)
    if not service.writer.alive:
        return ORJSONResponse({"status": "unavailable", "reason": "the writer has stopped"}, status_code=503)
    failed_write = service.writer.last_error
    try:
        await run_in_threadpool(service.store.ping)
        if failed_write is not None:  # the store answers reads; does it take writes again?
            await run_in_threadpool(service.store.check_writable)
    except StoreError as exc:
        service.metrics.store_errors.labels("ping").inc()
        return ORJSONResponse(
            {"status": "unavailable", "code": exc.code, "reason": str(exc)},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    if failed_write is not None and service.writer.last_error is failed_write:
        service.writer.last_error = None
    return ORJSONResponse({"status": "ready"})


_INGEST_RESPONSE_SCHEMA: Final = {
    "type": "object",
    "required": ["accepted", "duplicates", "conflicts", "rejected", "results"],
    "properties": {
        "accepted": {"type": "integer"},
        "duplicates": {"type": "integer"},
        "conflicts": {"type": "integer"},
        "rejected": {"type": "integer"},
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["index", "outcome"],
                "properties": {
                    "index": {"type": "integer"},
                    "outcome": {"enum": ["accepted", "duplicate", "conflict", "rejected"]},
                    "run_id": {"type": "string"},
                    "errors": {"type": "array", "items": {"$ref": "#/components/schemas/FieldError"}},
                    "warnings": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}
_ERROR_SCHEMA: Final = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}


_EXECUTION_SCHEMA: Final = {
    "type": "object",
    "description": "The Fixer Agent's record of one execution (camelCase), as it persists it; see compat.py.",
    "required": ["status"],
    "properties": {
        "invocationId": {"type": "string", "description": "becomes run_id"},
        "feedId": {"type": "integer"},
        "runStartId": {
            "type": "integer",
            "description": "with taskIndex, the run_id when invocationId is absent",
        },
        "taskIndex": {"type": "integer"},
        "status": {"type": "string", "enum": sorted(compat.STATUSES)},
        "errorMessage": {"type": "string", "description": "becomes error_summary"},
        "model": {"type": "string"},
        "llmCallCount": {"type": "integer", "minimum": 0},
        "inputTokens": {"type": "integer", "minimum": 0, "description": "excluding prompt-cache tokens"},
        "outputTokens": {"type": "integer", "minimum": 0},
        "totalTokens": {"type": "integer", "minimum": 0},
        "cacheCreationInputTokens": {"type": "integer", "minimum": 0},
        "cacheReadInputTokens": {"type": "integer", "minimum": 0},
        "toolCallsCount": {"type": "integer", "minimum": 0},
        "modifiedFiles": {"type": "array", "items": {"type": "string"}},
        "startTime": {"type": "string", "format": "date-time"},
        "endTime": {"type": "string", "format": "date-time"},
        "temperature": {"type": "number"},
        "maxTokens": {"type": "integer"},
        "errorInfo": {"type": "object", "description": "its type (or code, or name) becomes error_type"},
        "executionMetadata": {"type": "object"},
        "reportedCostUsd": {"type": "number", "minimum": 0},
        "trajectoryGcsPath": {"type": ["string", "null"]},
    },
}


def _ingest_operation(
    operation_id: str,
    summary: str,
    *,
    doc: str | None,
    record: str,
    key: str,
    limit: int,
    parameters: list[dict[str, Any]],
) -> dict[str, Any]:
    """The OpenAPI operation of an ingest endpoint (they are plain routes, documented by hand)."""
    ingest = {"application/json": {"schema": {"$ref": "#/components/schemas/IngestResponse"}}}
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    backfill = {
        "name": "backfill",
        "in": "query",
        "required": False,
        "schema": {"type": "boolean", "default": False},
        "description": BACKFILL_DESCRIPTION,
    }
    ref = {"$ref": f"#/components/schemas/{record}"}
    batch = {
        "type": "object",
        "required": [key],
        "properties": {key: {"type": "array", "maxItems": limit, "items": ref}},
    }
    return {
        "tags": ["ingest"],
        "summary": summary,
        "description": (doc or "").split("\n\n    A plain")[0],
        "operationId": operation_id,
        "parameters": [*parameters, backfill],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"oneOf": [ref, batch]}}},
        },
        "responses": {
            "200": {
                "description": "a batch was judged, or a single record was a duplicate",
                "content": ingest,
            },
            "201": {"description": "the record was stored", "content": ingest},
            "400": {"description": "the body is not JSON", "content": error},
            "409": {"description": "the run_id is stored with a different body", "content": ingest},
            "413": {"description": "the body or the batch is over the limit", "content": error},
            "415": {"description": "the Content-Type is not JSON", "content": error},
            "422": {
                "description": "the record was rejected (errors name field and rule), or the query "
                "string is invalid (an error naming the parameter)",
                "content": {
                    "application/json": {
                        "schema": {
                            "oneOf": [
                                {"$ref": "#/components/schemas/IngestResponse"},
                                {"$ref": "#/components/schemas/Error"},
                            ]
                        }
                    }
                },
            },
            "503": {"description": "the store is unavailable; nothing was stored", "content": error},
        },
    }


def _openapi(app: FastAPI, settings: Settings) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title="agent-exporter",
        version=__version__,
        description=(
            "Prometheus exporter for AI-agent executions. Agents POST one record per completed run; "
            "the service stores it and counts it on /metrics."
        ),
        routes=app.routes,
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    record_schema = RunRecord.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(record_schema.pop("$defs", {}))
    components["RunRecord"] = record_schema
    components["FieldError"] = {
        "type": "object",
        "required": ["field", "rule", "message"],
        "properties": {
            "field": {"type": "string"},
            "rule": {"type": "string"},
            "message": {"type": "string"},
        },
    }
    components["IngestResponse"] = _INGEST_RESPONSE_SCHEMA
    components["Error"] = _ERROR_SCHEMA
    components["AgentExecutionMetrics"] = _EXECUTION_SCHEMA
    limit = settings.limits.max_batch_records
    schema["paths"].setdefault("/api/v1/runs", {})["post"] = _ingest_operation(
        "post_runs",
        "Record completed runs",
        doc=post_runs.__doc__,
        record="RunRecord",
        key="runs",
        limit=limit,
        parameters=[],
    )
    agent = {
        "name": "agent",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "default": "fixer", "minLength": 1, "maxLength": MAX_NAME_LENGTH},
        "description": "the agent the executions are runs of",
    }
    schema["paths"].setdefault("/api/v1/executions", {})["post"] = _ingest_operation(
        "post_executions",
        "Record the Fixer Agent's AgentExecutionMetrics",
        doc=post_executions.__doc__,
        record="AgentExecutionMetrics",
        key="executions",
        limit=limit,
        parameters=[agent],
    )
    app.openapi_schema = schema
    return schema


def create_app(settings: Settings, *, registry: CollectorRegistry | None = None) -> FastAPI:
    """The application; its lifespan starts and stops the service."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = await run_in_threadpool(Service.start, settings, registry)
        app.state.service = service
        settle_garbage_collector()
        log.info("agent-exporter %s ready, store %s", __version__, describe_url(settings.database_url))
        try:
            yield
        finally:
            await run_in_threadpool(service.stop)

    app = FastAPI(
        title="agent-exporter",
        version=__version__,
        lifespan=lifespan,
        default_response_class=ORJSONResponse,
    )
    app.add_middleware(HTTPMetricsMiddleware)
    app.router.add_route("/api/v1/runs", post_runs, methods=["POST"], include_in_schema=False)
    app.router.add_route("/api/v1/executions", post_executions, methods=["POST"], include_in_schema=False)
    app.include_router(read_api.router)
    app.include_router(export.router)
    app.include_router(web.router)
    app.mount("/static", web.static, name="static")
    app.add_api_route("/metrics", get_metrics, methods=["GET"], tags=["operations"], include_in_schema=True)
    app.add_api_route("/healthz", healthz, methods=["GET"], tags=["operations"], summary="Liveness")
    app.add_api_route("/readyz", readyz, methods=["GET"], tags=["operations"], summary="Readiness")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed", 503: "store_unavailable"}.get(
            exc.status_code, "http_error"
        )
        message = str(exc.detail)
        if message in {"Not Found", "Method Not Allowed"}:  # the router's own words say too little
            verb = "no route" if exc.status_code == 404 else "method not allowed"
            message = f"{verb} for {request.method} {request.url.path}; the API is described at /openapi.json"
        return error_response(exc.status_code, code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'] if p not in ('query', 'path', 'body'))}: {e['msg']}"
            for e in exc.errors()
        )
        return error_response(422, "invalid_request", problems)

    @app.exception_handler(Exception)
    async def _bug(_request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", exc_info=exc)
        return error_response(
            500, "internal_error", "an unexpected error; the exporter's log has the details"
        )

    app.openapi = lambda: _openapi(app, settings)  # type: ignore[method-assign]
    auth.install(app, settings.security)
    return app
