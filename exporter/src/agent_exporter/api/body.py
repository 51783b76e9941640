"""Request bodies: read within a size limit, recognised as JSON by their type, and parsed, with the
non-finite numbers left for the record model to judge.

orjson is the fast path. It refuses a number beyond a double (`1e400`, valid JSON grammar) and the
`NaN` and `Infinity` that Python's `json.dumps` writes by default, and so would throw away a whole
batch for one record's bad number. Only then is the body parsed again with the standard library,
which reads them as floats: the record that carries one is rejected by its field (`finite`), and
the others in the batch are kept.
"""

from __future__ import annotations

import json
import math
from typing import Any, Final

import orjson
from starlette.requests import ClientDisconnect, Request

JSON_TYPES: Final = ("application/json",)


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


def is_json(content_type: str | None) -> bool:
    """Whether a Content-Type is JSON: application/json, or application/*+json."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media in JSON_TYPES or (media.startswith("application/") and media.endswith("+json"))


class MalformedJSONError(ValueError):
    """The body is not JSON (its message says where)."""


def _refuse_surrogates(payload: Any) -> None:
    # the standard library reads an escaped lone surrogate ("\ud800") as a str no database stores;
    # orjson refuses to write one, so a round trip finds it
    try:
        orjson.dumps(payload)
    except (orjson.JSONEncodeError, TypeError) as exc:
        raise MalformedJSONError(f"a string is not valid UTF-8: {exc}") from None


def _int_as_orjson_reads_it(text: str) -> int | float:
    """An integer as the fast path reads it: exact within 64 bits, a float beyond (an infinity past
    a double), so that both paths hand the record model the same values to judge."""
    value = int(text)
    if -(2**63) <= value < 2**64:
        return value
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def parse_json(body: bytes) -> Any:
    """The JSON value of `body`; raises `MalformedJSONError` with the parser's message."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        fast_error = exc
    if "recursion" in str(fast_error) or "depth" in str(fast_error):
        raise MalformedJSONError(str(fast_error))  # nesting past the limit: no second parser
    try:
        payload = json.loads(body.decode("utf-8"), parse_int=_int_as_orjson_reads_it)
    except (ValueError, RecursionError):
        raise MalformedJSONError(str(fast_error)) from None
    _refuse_surrogates(payload)
    return payload
