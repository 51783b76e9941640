"""What every route answers with: JSON rendered by orjson, and the one shape of request-level errors.

An error is `{"error": {"code": ..., "message": ...}}` (`read_models.Error`), whether a handler
returns it, FastAPI raises it (unknown route, invalid query), access control refuses a request, or
a bug escapes a handler (500, details in the log only). A 503 says when to come back: `Retry-After`
of `RETRY_AFTER_SECONDS`.
"""

from __future__ import annotations

import logging
from typing import Any, Final

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

#: seconds a client is asked to wait before retrying a request the store could not take
RETRY_AFTER_SECONDS: Final = 5
RETRY_AFTER: Final = {"Retry-After": str(RETRY_AFTER_SECONDS)}

#: the error code of a status that FastAPI or Starlette raise on their own
_HTTP_CODES: Final = {404: "not_found", 405: "method_not_allowed", 503: "store_unavailable"}


class ORJSONResponse(JSONResponse):
    """JSON responses rendered by orjson (several times faster than the standard library)."""

    def render(self, content: Any) -> bytes:
        """Serialise `content`."""
        return orjson.dumps(content)


def error_body(code: str, message: str) -> dict[str, Any]:
    """The body of a request-level error."""
    return {"error": {"code": code, "message": message}}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> ORJSONResponse:
    """A request-level error as a response."""
    return ORJSONResponse(error_body(code, message), status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Answer FastAPI's and Starlette's own errors, and escaped exceptions, in the error shape."""

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
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
