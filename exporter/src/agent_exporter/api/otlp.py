"""`POST /v1/traces`: OpenTelemetry traces over OTLP/HTTP, protobuf or JSON, gzip or not.

Answers follow the OTLP/HTTP specification: 200 with an `ExportTraceServiceResponse` in the
request's encoding (a partial success names how many spans were rejected and why), 400 for a body
that cannot be decoded, 413 for one over the limit (compressed or not), 415 for another media
type or content encoding, 503 with Retry-After when the store cannot hold the spans (nothing was
held: the client retries). Error bodies are `google.rpc.Status` messages in the request's encoding.
"""

from __future__ import annotations

import asyncio
import time
from typing import Final

from starlette.requests import Request
from starlette.responses import Response

from ..otlp import codec
from ..store import StoreError
from .body import BodyTooLargeError, is_json, read_body
from .http import RETRY_AFTER
from .service import service

#: bodies larger than this are decoded off the event loop
INLINE_DECODE_BYTES: Final = 256 * 1024
# google.rpc.Code values for the error bodies
_INVALID_ARGUMENT: Final = 3
_RESOURCE_EXHAUSTED: Final = 8
_UNAVAILABLE: Final = 14


def _media_type(content_type: str | None) -> str | None:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == codec.PROTOBUF:
        return codec.PROTOBUF
    if is_json(content_type):
        return codec.JSON
    return None


def _status(
    request: Request, media: str, http_status: int, code: int, message: str, *, reason: str | None
) -> Response:
    if reason is not None:
        service(request).metrics.observe_rejection(reason)
    headers = RETRY_AFTER if http_status == 503 else None
    return Response(codec.encode_status(media, code, message), http_status, headers=headers, media_type=media)


async def post_traces(request: Request) -> Response:
    """Take an OTLP `ExportTraceServiceRequest`; its GenAI spans become runs once their traces end."""
    svc = service(request)
    received_at = time.time()
    media = _media_type(request.headers.get("content-type"))
    if media is None:
        message = "Content-Type must be application/x-protobuf or application/json (OTLP/HTTP)"
        return _status(request, codec.JSON, 415, _INVALID_ARGUMENT, message, reason="unsupported_media_type")
    limit = svc.settings.limits.max_body_bytes
    try:
        body = await read_body(request, limit)
    except BodyTooLargeError:
        message = f"the body is over the limit of {limit} bytes; export smaller batches"
        return _status(request, media, 413, _RESOURCE_EXHAUSTED, message, reason="body_too_large")
    encoding = request.headers.get("content-encoding")
    try:
        if len(body) > INLINE_DECODE_BYTES or encoding:
            decoded = await asyncio.to_thread(_decode, body, encoding, media, limit)
        else:
            decoded = _decode(body, encoding, media, limit)
    except codec.DecodedTooLargeError as exc:
        return _status(
            request,
            media,
            413,
            _RESOURCE_EXHAUSTED,
            f"{exc}; export smaller batches",
            reason="body_too_large",
        )
    except codec.UnsupportedEncodingError as exc:
        return _status(request, media, 415, _INVALID_ARGUMENT, str(exc), reason="unsupported_media_type")
    except codec.OtlpDecodeError as exc:
        return _status(request, media, 400, _INVALID_ARGUMENT, str(exc), reason="malformed_otlp")
    if decoded.rejected:
        svc.metrics.otlp_spans.labels("rejected").inc(decoded.rejected)
    try:
        accepted = await svc.assembler.accept(decoded.spans, received_at)
    except StoreError as exc:
        message = f"no span was held: {exc}; retry later"
        return _status(request, media, 503, _UNAVAILABLE, message, reason=None)
    rejected = decoded.rejected + accepted.dropped
    message = "; ".join(filter(None, [decoded.error_message(), *accepted.reasons]))
    return Response(codec.encode_response(media, rejected, message), 200, media_type=media)


def _decode(body: bytes, encoding: str | None, media: str, limit: int) -> codec.Decoded:
    return codec.decode(codec.decompress(body, encoding, limit), media)
