"""OTLP ingest: traces of one `invoke_agent`, five `chat` and three `execute_tool` spans, sent as
protobuf in requests of 50 traces (450 spans, about what the SDK's batch processor sends), timed
until the runs are stored and counted on /metrics, not until the requests are answered."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from .harness import Server, post_concurrently

SPANS_PER_TRACE = 9
TRACES_PER_REQUEST = 50
#: the grace period the benchmark's server waits after a trace's root (the default is 2 s)
GRACE_SECONDS = 0.5


def _attribute(span: Any, key: str, value: str | int) -> None:
    kv = span.attributes.add()
    kv.key = key
    if isinstance(value, str):
        kv.value.string_value = value
    else:
        kv.value.int_value = value


def bodies(agent: str, traces: int) -> list[bytes]:
    """Protobuf request bodies carrying `traces` agent traces for agent `agent`."""
    out = []
    now = time.time_ns() - 60 * 10**9
    for first in range(0, traces, TRACES_PER_REQUEST):
        request = ExportTraceServiceRequest()
        resource = request.resource_spans.add()
        _attribute(resource.resource, "service.name", "bench")
        scope = resource.scope_spans.add()
        for t in range(first, min(traces, first + TRACES_PER_REQUEST)):
            _trace(scope, agent, t, now)
        out.append(request.SerializeToString())
    return out


def _trace(scope: Any, agent: str, number: int, now: int) -> None:
    """One agent trace's nine spans, added to `scope`."""
    trace_id = os.urandom(16)
    root = os.urandom(8)

    def add(parent: bytes, name: str, start: int, end: int) -> Any:
        span = scope.spans.add()
        span.trace_id = trace_id
        span.span_id = os.urandom(8) if parent else root
        span.parent_span_id = parent
        span.name = name
        span.start_time_unix_nano = now + start * 10**8
        span.end_time_unix_nano = now + end * 10**8
        return span

    agent_span = add(b"", f"invoke_agent {agent}", 0, 40)
    _attribute(agent_span, "gen_ai.operation.name", "invoke_agent")
    _attribute(agent_span, "gen_ai.agent.name", agent)
    _attribute(agent_span, "gen_ai.conversation.id", f"conv-{number}")
    for c in range(5):
        chat = add(root, "chat claude-sonnet-4-5", 4 * c, 4 * c + 3)
        _attribute(chat, "gen_ai.operation.name", "chat")
        _attribute(chat, "gen_ai.provider.name", "anthropic")
        _attribute(chat, "gen_ai.request.model", "claude-sonnet-4-5")
        _attribute(chat, "gen_ai.usage.input_tokens", 2000 + c)
        _attribute(chat, "gen_ai.usage.output_tokens", 300 + c)
        _attribute(chat, "gen_ai.usage.cache_read.input_tokens", 1500)
    for k, tool in enumerate(("bash", "edit", "pytest")):
        span = add(root, f"execute_tool {tool}", 21 + 5 * k, 24 + 5 * k)
        _attribute(span, "gen_ai.operation.name", "execute_tool")
        _attribute(span, "gen_ai.tool.name", tool)


def counted_runs(srv: Server, agent: str) -> float:
    """`agent_runs_total` of `agent` on the server's /metrics, summed over its series."""
    text = httpx.get(f"{srv.url}/metrics", timeout=30).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("agent_runs_total{") and f'agent="{agent}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


@dataclass(frozen=True)
class OtlpResult:
    """One OTLP ingest run."""

    runs_per_second: float
    spans_per_second: float
    answered_seconds: float  # until the last request was answered
    stored_seconds: float  # until every run was counted on /metrics
    cpu_us_per_run: float


def ingest(srv: Server, traces: int, tag: str, senders: int = 2) -> OtlpResult:
    """Send `traces` agent traces and time them until all their runs are counted."""
    agent = f"otlp-{tag}"
    cpu = srv.cpu_seconds()
    started = time.perf_counter()
    failures = post_concurrently(
        srv,
        "/v1/traces",
        bodies(agent, traces),
        "application/x-protobuf",
        refusal=lambda r: (
            None if r.status_code == 200 and not r.content else f"{r.status_code} {r.content[:300]!r}"
        ),
        senders=senders,
    )
    answered = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"OTLP requests failed: {failures[0]}")
    deadline = time.monotonic() + 600
    while counted_runs(srv, agent) < traces:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {counted_runs(srv, agent):.0f} of {traces} runs counted after 600 s")
        time.sleep(0.05)
    stored = time.perf_counter() - started
    cpu = srv.cpu_seconds() - cpu
    return OtlpResult(
        traces / stored, traces * SPANS_PER_TRACE / stored, answered, stored, 1e6 * cpu / traces
    )
