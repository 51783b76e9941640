"""A tiny real HTTP server on loopback for client tests: scripted answers, optionally a proxy.

It records every request (time, headers, decoded body). Each POST is answered by the next scripted
`Answer`; when the script is used up it forwards to `upstream` (a real exporter) if one is given,
or else accepts every record of the batch.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx


@dataclass(frozen=True)
class Answer:
    """One scripted answer; `hang` seconds of silence first (a stuck server); `forward` passes the
    request on to the upstream first and then answers as scripted (an answer lost on the way back)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b'{"error":{"code":"scripted","message":"a scripted failure"}}'
    hang: float = 0.0
    forward: bool = False


@dataclass
class Request:
    """One request the stub received."""

    at: float  # time.monotonic()
    headers: dict[str, str]
    body: Any

    @property
    def run_ids(self) -> list[str]:
        """The run ids of a batch."""
        return [r["run_id"] for r in self.body["runs"]]


class StubServer:
    """Answers POST /api/v1/runs from a script; see the module docstring."""

    def __init__(
        self,
        script: list[Answer] | None = None,
        *,
        upstream: str | None = None,
        decide: Callable[[Any], Answer | None] | None = None,
    ) -> None:
        self.script = list(script or [])
        self.upstream = upstream
        self.decide = decide
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                body = json.loads(raw)
                with stub.lock:
                    stub.requests.append(Request(time.monotonic(), dict(self.headers), body))
                    answer = stub.script.pop(0) if stub.script else None
                if answer is None and stub.decide is not None:
                    answer = stub.decide(body)
                if answer is not None:
                    if answer.forward and stub.upstream is not None:
                        httpx.post(
                            stub.upstream + self.path,
                            content=raw,
                            headers={"Content-Type": "application/json"},
                            timeout=10,
                        )
                    if answer.hang:
                        time.sleep(answer.hang)
                    self._reply(answer.status, answer.body, answer.headers)
                elif stub.upstream is not None:
                    forwarded = httpx.post(
                        stub.upstream + self.path,
                        content=raw,
                        headers={"Content-Type": "application/json"},
                        timeout=10,
                    )
                    self._reply(forwarded.status_code, forwarded.content, {})
                else:
                    results = [
                        {"index": i, "outcome": "accepted", "run_id": r.get("run_id")}
                        for i, r in enumerate(body.get("runs", [body]))
                    ]
                    answer_body = {
                        "accepted": len(results),
                        "duplicates": 0,
                        "conflicts": 0,
                        "rejected": 0,
                        "results": results,
                    }
                    self._reply(200, json.dumps(answer_body).encode(), {})

            def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        """Base URL of the stub."""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def run_ids(self) -> list[str]:
        """Every run id received, in order, repeats included."""
        with self.lock:
            return [run_id for request in self.requests for run_id in request.run_ids]

    def records(self) -> list[dict[str, Any]]:
        """Every record received, in order."""
        with self.lock:
            return [r for request in self.requests for r in request.body["runs"]]


@contextmanager
def stub_server(
    script: list[Answer] | None = None,
    *,
    upstream: str | None = None,
    decide: Callable[[Any], Answer | None] | None = None,
) -> Iterator[StubServer]:
    """A running `StubServer`, shut down afterwards."""
    stub = StubServer(script, upstream=upstream, decide=decide)
    stub.thread.start()
    try:
        yield stub
    finally:
        stub.server.shutdown()
        stub.server.server_close()
