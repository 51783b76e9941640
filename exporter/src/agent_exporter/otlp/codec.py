"""OTLP/HTTP trace requests and responses, protobuf and JSON, as the OTLP specification has them.

`decode` turns a request body into `Span`s, the compact form the rest of the service uses, and the
spans it rejected with the reason. It keeps only what the GenAI mapping reads (`KEPT_PREFIXES`):
prompts, completions and other large attributes are never held, so a huge attribute costs its
parsing and nothing after.

The JSON encoding is read here, not by protobuf's `json_format`: OTLP/JSON writes trace and span
ids as hex, where protobuf's JSON mapping reads bytes as base64 (and so corrupts every id), and
it names enums by number.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

PROTOBUF: Final = "application/x-protobuf"
JSON: Final = "application/json"

#: attribute keys kept from a span (and service.name from its resource); the rest are dropped here
KEPT_PREFIXES: Final = ("gen_ai.", "error.type", "service.name", "service.version")
#: GenAI attributes that carry content (prompts, completions, tool arguments): never kept
CONTENT_KEYS: Final = frozenset(
    {
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "gen_ai.tool.definitions",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
        "gen_ai.prompt",
        "gen_ai.completion",
    }
)
#: kept from a span's first `exception` event (the type and message of what crashed it)
EXCEPTION_KEYS: Final = frozenset({"exception.type", "exception.message"})
MAX_KEPT_ATTRIBUTES: Final = 64
MAX_VALUE_LENGTH: Final = 256  # a kept string attribute is cut here: names, ids, models
MAX_MESSAGE_LENGTH: Final = 1024  # a span's status message
MAX_REJECTION_EXAMPLES: Final = 5
#: spans read from one request at most: the rest are rejected unread, so that a body of many tiny
#: spans costs no more memory than the limit allows
MAX_SPANS_PER_REQUEST: Final = 50_000  # reasons named in a partial success's error_message

STATUS_ERROR: Final = 2
_TOO_MANY: Final = f"over the limit of {MAX_SPANS_PER_REQUEST} spans a request; export smaller batches"
_REMOTE_KNOWN: Final = 0x100  # SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK
_REMOTE: Final = 0x200  # SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK
_STATUS_NAMES: Final = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}

Scalar = str | int | float | bool


class OtlpDecodeError(ValueError):
    """The body is not an OTLP trace request in the encoding it claims (the message says where)."""


class UnsupportedEncodingError(ValueError):
    """A `Content-Encoding` other than gzip and identity."""


class DecodedTooLargeError(ValueError):
    """The body, once decompressed, is over the limit."""


@dataclass(slots=True, frozen=True)
class Span:
    """One ended span, with the attributes the GenAI mapping reads."""

    trace_id: str  # 32 lowercase hex digits
    span_id: str  # 16 lowercase hex digits
    parent_id: str  # "" for a root
    #: the parent lives in another process (a local root); False when the exporter did not say
    remote_parent: bool
    name: str
    start_ns: int
    end_ns: int
    error: bool  # status code ERROR
    message: str  # the status message
    attributes: Mapping[str, Scalar]

    @property
    def is_local_root(self) -> bool:
        """Whether no parent of this span is expected in this process's spans."""
        return not self.parent_id or self.remote_parent

    def wire(self) -> list[Any]:
        """A compact JSON-able form, for the store (`from_wire` reads it back)."""
        return [
            self.span_id,
            self.parent_id,
            int(self.remote_parent),
            self.name,
            self.start_ns,
            self.end_ns,
            int(self.error),
            self.message,
            dict(self.attributes),
        ]

    @classmethod
    def from_wire(cls, trace_id: str, item: list[Any]) -> Span:
        """The span `wire` wrote."""
        span_id, parent, remote, name, start, end, error, message, attributes = item
        return cls(
            trace_id, span_id, parent, bool(remote), name, start, end, bool(error), message, attributes
        )


@dataclass(slots=True)
class Decoded:
    """The spans of a request that could be read, and what was rejected and why."""

    spans: list[Span]
    rejected: int
    reasons: list[str]

    def reject(self, where: str, reason: str) -> None:
        """Count one rejected span, keeping the first few reasons."""
        self.rejected += 1
        if len(self.reasons) < MAX_REJECTION_EXAMPLES:
            self.reasons.append(f"{where}: {reason}")

    def error_message(self) -> str:
        """The partial success's `error_message`: how many spans, and the first reasons."""
        if not self.rejected:
            return ""
        more = self.rejected - len(self.reasons)
        tail = f"; and {more} more" if more > 0 else ""
        return f"{self.rejected} span(s) rejected: " + "; ".join(self.reasons) + tail


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """The body without its `Content-Encoding` (gzip or none), refusing more than `limit` bytes out.

    Raises `DecodedTooLargeError` past the limit (a gzip bomb stops there), `OtlpDecodeError` for a
    body that is not gzip, and `UnsupportedEncodingError` for an encoding other than gzip and identity.
    """
    coding = (encoding or "identity").strip().lower()
    if coding == "identity":
        return body
    if coding != "gzip":
        raise UnsupportedEncodingError(f"Content-Encoding {encoding!r} is not supported: send gzip or none")
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise OtlpDecodeError(f"the gzip body cannot be decompressed: {exc}") from None
    if len(out) > limit:
        raise DecodedTooLargeError(f"the decompressed body is over the limit of {limit} bytes")
    if not inflater.eof:
        raise OtlpDecodeError("the gzip body is truncated")
    return out


def decode(body: bytes, media_type: str) -> Decoded:
    """The spans of an OTLP `ExportTraceServiceRequest` body in `media_type` (`PROTOBUF` or `JSON`).

    Raises `OtlpDecodeError` when the body as a whole cannot be read; a span that can be read but
    breaks a rule (ids, times) is rejected on its own and the others kept.
    """
    out = Decoded([], 0, [])
    if media_type == PROTOBUF:
        _decode_protobuf(body, out)
    else:
        _decode_json(body, out)
    return out


def _check_span(where: str, ids: tuple[bytes, bytes, bytes], start: int, end: int) -> str | None:
    trace, span, parent = ids
    if len(trace) != 16 or not any(trace):
        return f"{where}.traceId: must be 16 bytes (32 hex digits), not all zero"
    if len(span) != 8 or not any(span):
        return f"{where}.spanId: must be 8 bytes (16 hex digits), not all zero"
    if parent and len(parent) != 8:
        return f"{where}.parentSpanId: must be empty or 8 bytes (16 hex digits)"
    if start <= 0 or end <= 0:
        return f"{where}.startTimeUnixNano: both times must be set (nanoseconds since 1970)"
    if end < start:
        return f"{where}.endTimeUnixNano: must not be before startTimeUnixNano"
    return None


_KEEP: dict[str, bool] = {}  # the verdict on each key seen, for the first few thousand keys


def _keep(key: str) -> bool:
    verdict = _KEEP.get(key)
    if verdict is None:
        verdict = key.startswith(KEPT_PREFIXES) and key not in CONTENT_KEYS
        if len(_KEEP) < 4096:  # keys are the client's: the cache must not grow with them
            _KEEP[key] = verdict
    return verdict


def _scalar(value: Scalar) -> Scalar:
    if isinstance(value, str) and len(value) > MAX_VALUE_LENGTH:
        return value[:MAX_VALUE_LENGTH]
    return value


def _decode_protobuf(body: bytes, out: Decoded) -> None:
    try:
        request = ExportTraceServiceRequest.FromString(body)
    except (DecodeError, RecursionError) as exc:
        raise OtlpDecodeError(
            f"the body is not an OTLP ExportTraceServiceRequest in protobuf: {exc}"
        ) from None
    for r, resource_spans in enumerate(request.resource_spans):
        resource = _proto_attributes(resource_spans.resource.attributes)
        for s, scope_spans in enumerate(resource_spans.scope_spans):
            for i, span in enumerate(scope_spans.spans):
                where = f"resourceSpans[{r}].scopeSpans[{s}].spans[{i}]"
                if len(out.spans) >= MAX_SPANS_PER_REQUEST:
                    out.reject(where, _TOO_MANY)
                    continue
                start, end = span.start_time_unix_nano, span.end_time_unix_nano
                problem = _check_span(where, (span.trace_id, span.span_id, span.parent_span_id), start, end)
                if problem is not None:
                    out.reject(where, problem.removeprefix(where + "."))
                    continue
                attributes = dict(resource)
                attributes.update(_proto_attributes(span.attributes))
                for event in span.events:
                    if event.name == "exception":  # the SDK's record_exception: what crashed
                        attributes.update(_proto_attributes(event.attributes, EXCEPTION_KEYS))
                        break
                flags = span.flags
                out.spans.append(
                    Span(
                        span.trace_id.hex(),
                        span.span_id.hex(),
                        span.parent_span_id.hex(),
                        bool(flags & _REMOTE_KNOWN and flags & _REMOTE),
                        _scalar(span.name) if span.name else "",  # type: ignore[arg-type]
                        start,
                        end,
                        span.status.code == STATUS_ERROR,
                        span.status.message[:MAX_MESSAGE_LENGTH],
                        attributes,
                    )
                )


def _proto_attributes(attributes: Iterable[Any], only: frozenset[str] | None = None) -> dict[str, Scalar]:
    kept: dict[str, Scalar] = {}
    for kv in attributes:
        key = kv.key
        if not (key in only if only is not None else _keep(key)) or len(kept) >= MAX_KEPT_ATTRIBUTES:
            continue
        value = kv.value
        kind = value.WhichOneof("value")
        if kind == "string_value":
            kept[key] = _scalar(value.string_value)
        elif kind == "int_value":
            kept[key] = value.int_value
        elif kind == "double_value":
            if math.isfinite(value.double_value):
                kept[key] = value.double_value
        elif kind == "bool_value":
            kept[key] = value.bool_value
    return kept


def _decode_json(body: bytes, out: Decoded) -> None:
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise OtlpDecodeError(f"the body is not valid JSON: {exc}") from None
    if not isinstance(request, dict):
        raise OtlpDecodeError("the body must be a JSON object (an ExportTraceServiceRequest)")
    for r, resource_spans in _items(request, "resourceSpans", "resource_spans"):
        resource_obj = _field(resource_spans, "resource")
        resource = _json_attributes(resource_obj) if isinstance(resource_obj, dict) else {}
        for s, scope_spans in _items(resource_spans, "scopeSpans", "scope_spans"):
            for i, span in _items(scope_spans, "spans"):
                where = f"resourceSpans[{r}].scopeSpans[{s}].spans[{i}]"
                if len(out.spans) >= MAX_SPANS_PER_REQUEST:
                    out.reject(where, _TOO_MANY)
                    continue
                try:
                    decoded = _json_span(span, where, resource)
                except _SpanError as exc:
                    out.reject(where, str(exc))
                    continue
                problem = _check_span(where, *decoded[0])
                if problem is not None:
                    out.reject(where, problem.removeprefix(where + "."))
                    continue
                out.spans.append(decoded[1])


class _SpanError(ValueError):
    pass


def _field(obj: dict[str, Any], camel: str, snake: str | None = None) -> Any:
    value = obj.get(camel)
    if value is None and snake is not None:
        value = obj.get(snake)
    return value


def _items(obj: Any, camel: str, snake: str | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    if not isinstance(obj, dict):
        return
    values = _field(obj, camel, snake)
    if not isinstance(values, list):
        return
    for index, value in enumerate(values):
        if isinstance(value, dict):
            yield index, value


def _hex(value: Any, field: str) -> bytes:
    if value is None or value == "":
        return b""
    if not isinstance(value, str):
        raise _SpanError(f"{field}: must be a string of hex digits")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise _SpanError(
            f"{field}: {value[:40]!r} is not hex (OTLP/JSON writes ids as hex, not base64)"
        ) from None


def _nanos(value: Any, field: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise _SpanError(f"{field}: must be an integer (or a decimal string) of nanoseconds")
    try:
        number = int(value)
    except ValueError:
        raise _SpanError(f"{field}: {str(value)[:40]!r} is not an integer") from None
    if not 0 <= number < 2**64:
        raise _SpanError(f"{field}: must be between 0 and 2^64")
    return number


def _json_span(
    span: dict[str, Any], where: str, resource: dict[str, Scalar]
) -> tuple[tuple[tuple[bytes, bytes, bytes], int, int], Span]:
    trace = _hex(_field(span, "traceId", "trace_id"), "traceId")
    span_id = _hex(_field(span, "spanId", "span_id"), "spanId")
    parent = _hex(_field(span, "parentSpanId", "parent_span_id"), "parentSpanId")
    start = _nanos(_field(span, "startTimeUnixNano", "start_time_unix_nano"), "startTimeUnixNano")
    end = _nanos(_field(span, "endTimeUnixNano", "end_time_unix_nano"), "endTimeUnixNano")
    name = span.get("name", "")
    if not isinstance(name, str):
        raise _SpanError("name: must be a string")
    flags = span.get("flags", 0)
    if isinstance(flags, bool) or not isinstance(flags, int):
        flags = 0
    status = span.get("status")
    code: Any = 0
    message: Any = ""
    if isinstance(status, dict):
        code = status.get("code", 0)
        message = status.get("message", "")
    code = _STATUS_NAMES.get(code, code) if isinstance(code, str) else code
    attributes = dict(resource)
    attributes.update(_json_attributes(span))
    for _, event in _items(span, "events"):
        if event.get("name") == "exception":  # the SDK's record_exception: what crashed
            attributes.update(_json_attributes(event, EXCEPTION_KEYS))
            break
    decoded = Span(
        trace.hex(),
        span_id.hex(),
        parent.hex(),
        bool(flags & _REMOTE_KNOWN and flags & _REMOTE),
        str(_scalar(name)),
        start,
        end,
        code == STATUS_ERROR,
        message[:MAX_MESSAGE_LENGTH] if isinstance(message, str) else "",
        attributes,
    )
    return ((trace, span_id, parent), start, end), decoded


def _json_attributes(obj: dict[str, Any], only: frozenset[str] | None = None) -> dict[str, Scalar]:
    kept: dict[str, Scalar] = {}
    for _, kv in _items(obj, "attributes"):
        key = kv.get("key")
        if not isinstance(key, str) or len(kept) >= MAX_KEPT_ATTRIBUTES:
            continue
        if not (key in only if only is not None else _keep(key)):
            continue
        value = kv.get("value")
        if not isinstance(value, dict):
            continue
        scalar = _json_value(value)
        if scalar is not None:
            kept[key] = scalar
    return kept


def _json_value(value: dict[str, Any]) -> Scalar | None:
    if isinstance(found := _field(value, "stringValue", "string_value"), str):
        return _scalar(found)
    found = _field(value, "intValue", "int_value")
    if found is not None:
        try:
            number = int(found) if isinstance(found, (int, str)) and not isinstance(found, bool) else None
        except ValueError:
            return None
        return number if number is not None and -(2**63) <= number < 2**63 else None
    found = _field(value, "doubleValue", "double_value")
    if isinstance(found, (int, float)) and not isinstance(found, bool) and math.isfinite(found):
        return float(found)
    if isinstance(found := _field(value, "boolValue", "bool_value"), bool):
        return found
    return None


def encode_response(media_type: str, rejected: int, message: str) -> bytes:
    """An `ExportTraceServiceResponse` in `media_type`: empty, or a partial success."""
    if media_type == PROTOBUF:
        response = ExportTraceServiceResponse()
        if rejected or message:
            response.partial_success.rejected_spans = rejected
            response.partial_success.error_message = message
        encoded: bytes = response.SerializeToString()
        return encoded
    if not (rejected or message):
        return b"{}"
    return orjson.dumps({"partialSuccess": {"rejectedSpans": str(rejected), "errorMessage": message}})


def encode_status(media_type: str, code: int, message: str) -> bytes:
    """A `google.rpc.Status` (the body of an OTLP error response) in `media_type`."""
    if media_type != PROTOBUF:
        return orjson.dumps({"code": code, "message": message})
    text = message.encode()
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        byte = number & 0x7F
        number >>= 7
        if number:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)
