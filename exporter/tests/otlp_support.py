"""Helpers for the OTLP tests: the official OpenTelemetry SDK exporting to a real exporter, spans
captured in memory, and OTLP/JSON written by the specification (ids in hex)."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from google.protobuf.json_format import MessageToDict
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from .support import wait_until


@contextmanager
def tracing(service_name: str = "agents") -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """A tracer provider whose ended spans are kept in memory (exported by the test, when it says)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    try:
        yield provider, memory
    finally:
        provider.shutdown()


def export(url: str, spans: Sequence[ReadableSpan]) -> None:
    """Send `spans` with the official OTLP/HTTP protobuf exporter; fail unless it succeeded."""
    exporter = OTLPSpanExporter(endpoint=f"{url}/v1/traces", timeout=10)
    try:
        assert exporter.export(spans) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()  # type: ignore[no-untyped-call]


def otlp_json(spans: Sequence[ReadableSpan]) -> dict[str, Any]:
    """The OTLP/JSON body of `spans`, as the specification writes it: ids as hex, not base64."""
    body: dict[str, Any] = MessageToDict(encode_spans(spans))

    def fix(node: Any) -> None:
        if isinstance(node, dict):
            for key in ("traceId", "spanId", "parentSpanId"):
                if key in node:
                    node[key] = base64.b64decode(node[key]).hex()
            for value in node.values():
                fix(value)
        elif isinstance(node, list):
            for value in node:
                fix(value)

    fix(body)
    return body


def wait_for_run(url: str, run_id: str, timeout: float = 30) -> dict[str, Any]:
    """The stored run `run_id`, once the exporter has assembled and stored it."""
    found: dict[str, Any] = {}

    def stored() -> bool:
        response = httpx.get(f"{url}/api/v1/runs/{run_id}", timeout=5)
        if response.status_code == 200:
            found.update(response.json())
            return True
        return False

    wait_until(stored, timeout, f"run {run_id} to be stored")
    return found


def run_id_of(span: ReadableSpan | trace.Span) -> str:
    """The run id the exporter gives the run that `span` (an invoke_agent span, or a root) is."""
    context = span.get_span_context()
    assert context is not None
    return f"otlp-{context.trace_id:032x}-{context.span_id:016x}"


class _ChatCompletions(BaseHTTPRequestHandler):
    """POST /v1/chat/completions, answered as OpenAI's API does, with usage that grows per call."""

    calls = 0

    def do_POST(self) -> None:
        length = int(self.headers["content-length"])
        request = json.loads(self.rfile.read(length))
        type(self).calls += 1
        n = type(self).calls
        body = {
            "id": f"chatcmpl-{n}",
            "object": "chat.completion",
            "created": 1_790_000_000,
            "model": f"{request['model']}-2024-07-18",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "done"}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 100 + n, "completion_tokens": 20 + n, "total_tokens": 120 + 2 * n},
        }
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@contextmanager
def openai_stub() -> Iterator[str]:
    """A stand-in for OpenAI's chat completions API on 127.0.0.1; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ChatCompletions)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v1"
    finally:
        server.shutdown()
        server.server_close()
