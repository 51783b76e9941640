"""A SIGKILL between a trace's requests, or while a trace waits for its grace period, loses no run;
and no input to /v1/traces answers 5xx or costs unbounded memory (hypothesis-generated bodies,
truncated bodies, huge attribute values)."""

from __future__ import annotations

import gzip
import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from .otlp_support import wait_for_run
from .scrape import scrape
from .support import ExporterProcess, exporter, start_exporter
from .test_otlp_api import AGENT_TRACE, FIXER, REVIEWER, body, protobuf, span

JSON = {"content-type": "application/json"}
PROTOBUF = {"content-type": "application/x-protobuf"}


def _post(url: str, payload: dict[str, Any]) -> None:
    response = httpx.post(f"{url}/v1/traces", content=orjson.dumps(payload), headers=JSON, timeout=10)
    assert response.status_code == 200, response.text


def test_a_sigkill_between_a_traces_requests_loses_no_run(tmp_path: Path) -> None:
    spans = AGENT_TRACE["resourceSpans"][0]["scopeSpans"][0]["spans"]
    root, children = spans[0], spans[1:]
    config = {"otlp": {"grace_seconds": 0.2}}
    first = start_exporter(tmp_path, config=config)
    try:
        _post(first.url, body(*children))
    finally:
        first.stop(signal.SIGKILL)
    with exporter(tmp_path, config=config) as second:
        _post(second.url, body(root))
        run = wait_for_run(second.url, FIXER)
        assert (run["llm_calls"], run["tool_calls"], run["input_tokens"]) == (2, 2, 1700)
        assert wait_for_run(second.url, REVIEWER)["parent_run_id"] == FIXER
        assert scrape(second.url).total("agent_runs_total", agent="fixer") == 1


def test_a_sigkill_during_the_grace_period_loses_no_run(tmp_path: Path) -> None:
    first = start_exporter(tmp_path, config={"otlp": {"grace_seconds": 3600}})
    try:
        _post(first.url, AGENT_TRACE)
    finally:
        first.stop(signal.SIGKILL)
    with exporter(tmp_path, config={"otlp": {"grace_seconds": 0.2}}) as second:
        assert wait_for_run(second.url, FIXER)["llm_calls"] == 2
        metrics = scrape(second.url)
        assert metrics.total("agent_runs_total", agent="fixer") == 1
        assert metrics.value("agent_exporter_otlp_spans_pending") == 0


# -- fuzzing ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExporterProcess]:
    config = {"otlp": {"grace_seconds": 0.1}, "limits": {"max_body_bytes": 256 * 1024}}
    with exporter(tmp_path_factory.mktemp("otlp-fuzz"), config=config) as process:
        yield process


_scalar = st.one_of(
    st.text(max_size=40),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
)
_value = st.one_of(
    st.builds(lambda v: {"stringValue": v}, _scalar),
    st.builds(lambda v: {"intValue": v}, _scalar),
    st.builds(lambda v: {"doubleValue": v}, _scalar),
    _scalar,
)
_key = st.sampled_from(
    ["gen_ai.operation.name", "gen_ai.usage.input_tokens", "gen_ai.request.model", "gen_ai.agent.name",
     "gen_ai.tool.name", "error.type", "gen_ai.usage.cache_read.input_tokens", "service.name", "x"]
)  # fmt: skip
_id = st.one_of(st.text(max_size=40), st.binary(max_size=20).map(bytes.hex), _scalar)
_span = st.fixed_dictionaries(
    {},
    optional={
        "traceId": _id,
        "spanId": _id,
        "parentSpanId": _id,
        "name": st.one_of(st.sampled_from(["invoke_agent a", "chat m", "execute_tool t"]), _scalar),
        "startTimeUnixNano": _scalar,
        "endTimeUnixNano": _scalar,
        "status": st.one_of(st.fixed_dictionaries({"code": _scalar, "message": _scalar}), _scalar),
        "attributes": st.one_of(
            st.lists(st.fixed_dictionaries({"key": _key, "value": _value}), max_size=6), _scalar
        ),
        "flags": _scalar,
    },
)  # fmt: skip
_request = st.fixed_dictionaries(
    {"resourceSpans": st.lists(st.fixed_dictionaries({"scopeSpans": st.lists(
        st.fixed_dictionaries({"spans": st.lists(_span, max_size=5)}), max_size=2)}), max_size=2)}
)  # fmt: skip


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=_request)
def test_generated_json_never_answers_5xx(server: ExporterProcess, payload: dict[str, Any]) -> None:
    response = httpx.post(
        f"{server.url}/v1/traces",
        content=json.dumps(payload).encode(),  # NaN, infinities and 70-bit integers as Python writes them
        headers=JSON,
        timeout=10,
    )
    assert response.status_code in {200, 400}, response.text


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=2000), cut=st.integers(min_value=0, max_value=4000))
def test_generated_and_truncated_protobuf_never_answers_5xx(
    server: ExporterProcess, data: bytes, cut: int
) -> None:
    valid = protobuf(AGENT_TRACE)
    for content in (data, valid[: cut % (len(valid) + 1)], valid + data):
        response = httpx.post(f"{server.url}/v1/traces", content=content, headers=PROTOBUF, timeout=10)
        assert response.status_code in {200, 400}, response.text
        if response.status_code == 200:
            ExportTraceServiceResponse.FromString(response.content)


def test_huge_attributes_and_bombs_are_bounded_and_lose_nothing_else(server: ExporterProcess) -> None:
    huge = span(1, None, "invoke_agent huge", 0, 1, gen_ai__operation__name="invoke_agent",
                gen_ai__agent__name="h" * 100_000, x="y" * 100_000, trace="ab" * 16)  # fmt: skip
    response = httpx.post(
        f"{server.url}/v1/traces", content=orjson.dumps(body(huge)), headers=JSON, timeout=10
    )
    assert response.status_code == 200
    run = wait_for_run(server.url, f"otlp-{'ab' * 16}-{1:016x}")
    assert run["agent"] == "h" * 128  # names are cut to the record's limit; the rest was never kept
    bomb = gzip.compress(b" " * (200 * 1024 * 1024))
    response = httpx.post(
        f"{server.url}/v1/traces", content=bomb, headers={**JSON, "content-encoding": "gzip"}, timeout=30
    )
    assert response.status_code == 413
    rss_mb = scrape(server.url).value("process_resident_memory_bytes") or 0
    assert rss_mb / 2**20 < 400  # the 200 MB bomb was never inflated
    _post(server.url, AGENT_TRACE)
    assert wait_for_run(server.url, FIXER)["llm_calls"] == 2
