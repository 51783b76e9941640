"""One HTTP POST of a batch to the ingest endpoint, on a kept-alive connection (standard library only).

Imported by the sender thread on its first request, not by the agent: http.client is slow to import.
"""

from __future__ import annotations

import http.client
import time
from typing import NamedTuple
from urllib.parse import urlsplit

#: Errors that mean "the request did not get an answer": retry later.
NETWORK_ERRORS = (OSError, http.client.HTTPException)


class Response(NamedTuple):
    """What the server answered."""

    status: int
    body: bytes
    retry_after: float | None


class Transport:
    """POSTs JSON bodies to one endpoint; not thread safe (the sender thread owns it)."""

    def __init__(self, endpoint: str, *, token: str | None, timeout: float, user_agent: str) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {endpoint!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._path = parts.path or "/"
        if parts.query:
            self._path += "?" + parts.query
        self._timeout = timeout
        self._headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": user_agent,
        }
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._conn: http.client.HTTPConnection | None = None

    def post(self, body: bytes, timeout: float | None = None) -> Response:
        """POST `body`; raises one of `NETWORK_ERRORS` when no answer arrived.

        A kept-alive connection the server closed while idle fails on first use: that attempt is
        repeated once on a fresh connection (safe, the server is idempotent by run_id).
        """
        reused = self._conn is not None
        try:
            return self._post_once(body, timeout)
        except NETWORK_ERRORS:
            self.close()
            if not reused:
                raise
        return self._post_once(body, timeout)

    def _post_once(self, body: bytes, timeout: float | None) -> Response:
        conn = self._connection()
        conn.timeout = timeout if timeout is not None else self._timeout
        if conn.sock is not None:
            conn.sock.settimeout(conn.timeout)
        try:
            conn.request("POST", self._path, body=body, headers=self._headers)
            response = conn.getresponse()
            data = response.read()
        except BaseException:
            self.close()
            raise
        if response.will_close:
            self.close()
        return Response(response.status, data, parse_retry_after(response.getheader("Retry-After")))

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._https:
                import ssl  # only agents that talk TLS pay for importing it

                self._conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self._timeout, context=ssl.create_default_context()
                )
            else:
                self._conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        return self._conn

    def close(self) -> None:
        """Drop the connection (the next post opens a new one)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None if absent or bad."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
