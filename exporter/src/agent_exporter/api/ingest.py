"""The ingest routes' common path: `POST /api/v1/runs`, and the request checks every ingest route
shares (limits, JSON, the batch shape, `?backfill=`) before `Ingest.handle` judges the records.

Plain Starlette endpoints, documented by hand in `openapi.py`: FastAPI's dependency solving cost
more than the rest of a small request, and this is the path every agent run takes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Final

from fastapi import Request
from fastapi.responses import Response

from ..store import StoreError
from .body import BodyTooLargeError, MalformedJSONError, is_json, parse_json, read_body
from .http import RETRY_AFTER, ORJSONResponse, error_response
from .service import service

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

#: the records of a request, and its receipt time -> run records
Convert = Callable[[list[Any], float], list[Any]]
#: an error's field as the request named it
Rename = Callable[[str], str]


async def post_runs(request: Request) -> Response:
    """Store one run record, or a batch `{"runs": [...]}`; each record is judged on its own.

    A single record answers 201 (accepted), 200 (duplicate), 409 (conflict) or 422 (rejected);
    a batch answers 200 with an outcome per record. 503 with Retry-After means nothing was stored.
    """
    return await ingest_request(request, "runs")


async def ingest_request(
    request: Request, key: str, convert: Convert | None = None, rename: Rename | None = None
) -> Response:
    """Judge and store the records of `request`: one, or a batch under `key`, turned into run records
    by `convert` (none: they are run records), with the errors' fields named back by `rename`."""
    svc = service(request)
    limits = svc.settings.limits
    received_at = time.time()
    metrics = svc.metrics
    # most requests have no query string: then there is nothing to parse
    asked = request.query_params.get("backfill", "false") if request.scope.get("query_string") else "false"
    backfill = _BOOLEANS.get(asked.lower())
    if backfill is None:
        return error_response(422, "invalid_request", "backfill: must be true or false")
    if not is_json(request.headers.get("content-type")):
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
        result = await svc.ingest.handle(records, received_at=received_at, batch=batch, backfill=backfill)
    except StoreError as exc:
        return error_response(503, exc.code, f"nothing was stored: {exc}; retry later", headers=RETRY_AFTER)
    if rename is not None:
        result.rename_fields(rename)
    body_out = result.as_dict()
    if batch:
        return ORJSONResponse(body_out, status_code=200)
    return ORJSONResponse(body_out, status_code=result.results[0].outcome.http_status)
