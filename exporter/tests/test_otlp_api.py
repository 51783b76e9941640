"""POST /v1/traces in-process: the OTLP answers, the GenAI mapping, late and ignored spans."""

from __future__ import annotations

import base64
import gzip
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from google.protobuf.json_format import ParseDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from prometheus_client import CollectorRegistry

from agent_exporter.otlp import codec

from .support import make_client, wait_until

TRACES = "/v1/traces"
OUTCOMES = ("accepted", "duplicate", "conflict", "rejected")
PROTOBUF = {"content-type": "application/x-protobuf"}
JSON = {"content-type": "application/json"}
TRACE = "5b8efff798038103d269b633813fc60c"
NOW_NS = int((time.time() - 60) * 1e9)
S = 10**9


def attrs(**values: Any) -> list[dict[str, Any]]:
    out = []
    for name, value in values.items():
        key = name.replace("__", ".")
        if isinstance(value, bool):
            out.append({"key": key, "value": {"boolValue": value}})
        elif isinstance(value, int):
            out.append({"key": key, "value": {"intValue": str(value)}})
        else:
            out.append({"key": key, "value": {"stringValue": value}})
    return out


def span(span_id: int, parent: int | None, name: str, start: float, end: float, **kw: Any) -> dict[str, Any]:
    error = kw.pop("error", False)
    trace = kw.pop("trace", TRACE)
    return {
        "traceId": trace,
        "spanId": f"{span_id:016x}",
        "parentSpanId": f"{parent:016x}" if parent else "",
        "name": name,
        "kind": 1,
        "startTimeUnixNano": str(NOW_NS + int(start * S)),
        "endTimeUnixNano": str(NOW_NS + int(end * S)),
        "attributes": attrs(**kw),
        "status": {"code": 2, "message": "boom"} if error else {},
    }


def body(*spans: dict[str, Any], service: str = "svc") -> dict[str, Any]:
    return {
        "resourceSpans": [
            {"resource": {"attributes": attrs(service__name=service)}, "scopeSpans": [{"spans": list(spans)}]}
        ]
    }


def protobuf(json_body: dict[str, Any]) -> bytes:
    """The same request in protobuf (protobuf's JSON parser wants ids in base64)."""
    copy = orjson.loads(orjson.dumps(json_body))
    for rs in copy["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for s in ss["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    s[key] = base64.b64encode(bytes.fromhex(s[key])).decode()
    return ParseDict(copy, ExportTraceServiceRequest()).SerializeToString()


AGENT_TRACE = body(
    span(1, None, "invoke_agent fixer", 0, 10, gen_ai__operation__name="invoke_agent",
         gen_ai__agent__name="fixer", gen_ai__conversation__id="conv-7"),
    span(2, 1, "chat claude-sonnet-4-5", 0, 2, gen_ai__operation__name="chat",
         gen_ai__request__model="claude-sonnet-4-5", gen_ai__provider__name="anthropic",
         gen_ai__usage__input_tokens=100, gen_ai__usage__output_tokens=50,
         gen_ai__usage__cache_read__input_tokens=1000, gen_ai__usage__cache_creation__input_tokens=200),
    span(3, 1, "chat gpt-5", 2, 4, gen_ai__system="openai", gen_ai__request__model="gpt-5",
         gen_ai__usage__prompt_tokens=400, gen_ai__usage__completion_tokens=300,
         gen_ai__usage__reasoning_tokens=120),
    span(4, 1, "execute_tool bash", 4, 5, gen_ai__operation__name="execute_tool", gen_ai__tool__name="bash"),
    span(5, 1, "execute_tool bash", 5, 7, gen_ai__operation__name="execute_tool", gen_ai__tool__name="bash",
         error=True),
    span(6, 1, "plan", 0, 1),
    span(7, 6, "http GET", 0, 1),
    span(8, 1, "invoke_agent reviewer", 7, 9, gen_ai__operation__name="invoke_agent",
         gen_ai__agent__name="reviewer"),
    span(9, 8, "chat gpt-5", 7, 8, gen_ai__operation__name="chat", gen_ai__request__model="gpt-5",
         gen_ai__usage__input_tokens=10, gen_ai__usage__output_tokens=5),
)  # fmt: skip
FIXER = f"otlp-{TRACE}-{1:016x}"
REVIEWER = f"otlp-{TRACE}-{8:016x}"


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def _client(tmp_path: Path, registry: CollectorRegistry, name: str = "app", **settings: Any) -> TestClient:
    return make_client(
        f"sqlite:///{tmp_path / f'{name}.db'}", registry, otlp={"grace_seconds": 0}, **settings
    )


@pytest.fixture
def client(tmp_path: Path, registry: CollectorRegistry) -> Iterator[TestClient]:
    with _client(tmp_path, registry) as c:
        yield c


def stored(client: TestClient, run_id: str) -> dict[str, Any]:
    wait_until(lambda: client.get(f"/api/v1/runs/{run_id}").status_code == 200, 10, f"run {run_id}")
    found: dict[str, Any] = client.get(f"/api/v1/runs/{run_id}").json()
    return found


def spans_counted(registry: CollectorRegistry, outcome: str) -> float | None:
    return registry.get_sample_value("agent_exporter_otlp_spans_total", {"outcome": outcome})


def test_protobuf_is_answered_with_an_empty_protobuf_response(client: TestClient) -> None:
    response = client.post(TRACES, content=protobuf(AGENT_TRACE), headers=PROTOBUF)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-protobuf"
    assert ExportTraceServiceResponse.FromString(response.content) == ExportTraceServiceResponse()


def test_an_agent_trace_becomes_a_run_with_usage_tools_phases_and_a_sub_run(
    client: TestClient, registry: CollectorRegistry
) -> None:
    assert client.post(TRACES, content=orjson.dumps(AGENT_TRACE), headers=JSON).json() == {}
    run = stored(client, FIXER)
    # the primary model (most tokens) is the run's model and provider
    assert (run["agent"], run["status"], run["model"], run["provider"]) == (
        "fixer",
        "success",
        "claude-sonnet-4-5",
        "anthropic",
    )
    assert run["duration_seconds"] == 10
    # anthropic's cache counts beside its input are made inclusive; reasoning is inside output
    usage = {u["model"]: u for u in run["usage"]}
    assert usage["claude-sonnet-4-5"]["input_tokens"] == 1300
    assert usage["claude-sonnet-4-5"]["cache_read_tokens"] == 1000
    assert usage["claude-sonnet-4-5"]["cache_write_tokens"] == 200
    assert (usage["gpt-5"]["input_tokens"], usage["gpt-5"]["output_tokens"]) == (400, 300)
    assert usage["gpt-5"]["reasoning_tokens"] == 120
    assert usage["gpt-5"]["provider"] == "openai"  # gen_ai.system, the previous name
    assert (run["input_tokens"], run["output_tokens"], run["llm_calls"]) == (1700, 350, 2)
    assert [(t["name"], t["calls"], t["errors"], t["duration_seconds"]) for t in run["tools"]] == [
        ("bash", 2, 1, 3.0)
    ]
    assert [(p["name"], p["duration_seconds"]) for p in run["phases"]] == [("plan", 1.0)]
    assert (run["labels"], run["session_id"], run["parent_run_id"]) == ({"trace_id": TRACE}, "conv-7", None)
    sub = stored(client, REVIEWER)
    assert (sub["agent"], sub["input_tokens"], sub["llm_calls"]) == ("reviewer", 10, 1)
    assert sub["parent_run_id"] == FIXER
    assert spans_counted(registry, "accepted") == 9
    assert spans_counted(registry, "ignored") == 1  # the http span under the plan phase


def test_json_gives_the_same_runs_as_protobuf(tmp_path: Path) -> None:
    runs = []
    for name, content, headers in (
        ("pb", protobuf(AGENT_TRACE), PROTOBUF),
        ("json", orjson.dumps(AGENT_TRACE), JSON),
    ):
        with _client(tmp_path, CollectorRegistry(), name) as c:
            c.post(TRACES, content=content, headers=headers)
            runs.append((stored(c, FIXER), stored(c, REVIEWER)))
    for pair in runs:  # when each request came, and so its lag, differ; nothing else may
        for run in pair:
            del run["received_at"]
            del run["derived"]["ingest_lag_seconds"]
    assert runs[0] == runs[1]


def test_a_crashed_agent_is_an_error_run(client: TestClient) -> None:
    trace = body(
        span(1, None, "invoke_agent fixer", 0, 3, gen_ai__operation__name="invoke_agent", error=True,
             error__type="TimeoutError"),
    )  # fmt: skip
    client.post(TRACES, content=orjson.dumps(trace), headers=JSON)
    run = stored(client, FIXER)
    assert (run["status"], run["error_type"], run["error_summary"]) == ("timeout", "TimeoutError", "boom")


def test_a_span_sent_after_its_run_was_written_is_late_and_changes_nothing(
    client: TestClient, registry: CollectorRegistry
) -> None:
    client.post(TRACES, content=orjson.dumps(AGENT_TRACE), headers=JSON)
    before = stored(client, FIXER)
    extra = body(
        span(20, 1, "chat gpt-5", 1, 2, gen_ai__request__model="gpt-5", gen_ai__usage__input_tokens=5)
    )
    assert client.post(TRACES, content=orjson.dumps(extra), headers=JSON).json() == {}
    client.post(TRACES, content=orjson.dumps(AGENT_TRACE), headers=JSON)  # the whole trace again
    assert spans_counted(registry, "late") == 10
    assert client.get(f"/api/v1/runs/{FIXER}").json() == before
    assert registry.get_sample_value("agent_exporter_records_total", {"outcome": "accepted"}) == 2


def test_spans_with_no_genai_meaning_are_ignored_and_counted(
    client: TestClient, registry: CollectorRegistry
) -> None:
    plain = body(span(1, None, "GET /", 0, 1), span(2, 1, "SELECT", 0, 1))
    assert client.post(TRACES, content=orjson.dumps(plain), headers=JSON).json() == {}
    wait_until(lambda: spans_counted(registry, "ignored") == 2, 10, "two ignored spans")
    assert client.get("/api/v1/runs").json()["runs"] == []


def test_model_calls_without_an_agent_span_are_one_run_of_the_service(client: TestClient) -> None:
    trace = body(
        span(1, None, "triage", 0, 5),
        span(2, 1, "chat gpt-5", 0, 2, gen_ai__operation__name="chat", gen_ai__request__model="gpt-5",
             gen_ai__usage__input_tokens=30, gen_ai__usage__output_tokens=7),
        span(3, 1, "chat gpt-5", 2, 4, gen_ai__operation__name="chat", gen_ai__request__model="gpt-5",
             gen_ai__usage__input_tokens=40, gen_ai__usage__output_tokens=8),
        service="support-bot",
    )  # fmt: skip
    client.post(TRACES, content=orjson.dumps(trace), headers=JSON)
    run = stored(client, f"otlp-{TRACE}-{1:016x}")
    assert (run["agent"], run["llm_calls"], run["input_tokens"], run["output_tokens"]) == (
        "support-bot",
        2,
        70,
        15,
    )


def test_rejected_spans_are_named_in_a_partial_success_and_the_others_kept(
    client: TestClient, registry: CollectorRegistry
) -> None:
    bad_id = span(2, 1, "chat", 0, 1)
    bad_id["traceId"] = base64.b64encode(bytes.fromhex(TRACE)).decode()  # base64, not hex
    backwards = span(3, 1, "chat", 2, 1)
    trace = body(*AGENT_TRACE["resourceSpans"][0]["scopeSpans"][0]["spans"], bad_id, backwards)
    answer = client.post(TRACES, content=orjson.dumps(trace), headers=JSON).json()
    assert answer["partialSuccess"]["rejectedSpans"] == "2"
    message = answer["partialSuccess"]["errorMessage"]
    assert "resourceSpans[0].scopeSpans[0].spans[9]: traceId" in message
    assert "not hex" in message
    assert "spans[10]: endTimeUnixNano: must not be before startTimeUnixNano" in message
    assert stored(client, FIXER)["llm_calls"] == 2
    assert spans_counted(registry, "rejected") == 2


def test_the_partial_success_answers_in_protobuf_too(client: TestClient) -> None:
    trace = body(span(1, None, "invoke_agent a", 0, 1), span(2, 1, "chat", 2, 1))
    response = client.post(TRACES, content=protobuf(trace), headers=PROTOBUF)
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 1
    assert "endTimeUnixNano" in answer.partial_success.error_message


@pytest.mark.parametrize(
    ("content", "headers", "status"),
    [
        (b"\xff\xff\xff", PROTOBUF, 400),
        (b"{not json", JSON, 400),
        (b"[]", JSON, 400),
        (b"{}", {"content-type": "text/plain"}, 415),
        (gzip.compress(b"{}"), {**JSON, "content-encoding": "br"}, 415),
        (gzip.compress(orjson.dumps(AGENT_TRACE))[:-20], {**JSON, "content-encoding": "gzip"}, 400),
        (b"not gzip at all", {**JSON, "content-encoding": "gzip"}, 400),
    ],
    ids=["protobuf-garbage", "json-garbage", "json-array", "text", "brotli", "truncated-gzip", "fake-gzip"],
)
def test_bodies_that_cannot_be_read_are_refused_whole(
    client: TestClient, content: bytes, headers: dict[str, str], status: int
) -> None:
    response = client.post(TRACES, content=content, headers=headers)
    assert response.status_code == status
    if headers["content-type"] == "application/json":
        assert response.json()["code"] == 3
        assert response.json()["message"]


def test_gzip_is_read_and_a_gzip_bomb_stops_at_the_limit(tmp_path: Path, registry: CollectorRegistry) -> None:
    with _client(tmp_path, registry, limits={"max_body_bytes": 64 * 1024}) as c:
        ok = c.post(
            TRACES,
            content=gzip.compress(orjson.dumps(AGENT_TRACE)),
            headers={**JSON, "content-encoding": "gzip"},
        )
        assert ok.status_code == 200
        bomb = gzip.compress(b"{" + b" " * (50 * 1024 * 1024) + b"}")  # 50 MB out of 50 kB
        assert len(bomb) < 64 * 1024
        response = c.post(TRACES, content=bomb, headers={**JSON, "content-encoding": "gzip"})
        assert response.status_code == 413
        assert "decompressed body is over the limit of 65536 bytes" in response.json()["message"]
        assert stored(c, FIXER)["agent"] == "fixer"


def test_traces_need_the_ingest_token_when_one_is_configured(
    tmp_path: Path, registry: CollectorRegistry
) -> None:
    token = "otlp-ingest-token-0123456789"
    with _client(tmp_path, registry, security={"ingest_tokens": [token]}) as c:
        assert c.post(TRACES, content=orjson.dumps(AGENT_TRACE), headers=JSON).status_code == 401
        authorised = {**JSON, "authorization": f"Bearer {token}"}
        assert c.post(TRACES, content=orjson.dumps(AGENT_TRACE), headers=authorised).status_code == 200


def test_spans_over_the_pending_bound_are_dropped_and_reported(
    tmp_path: Path, registry: CollectorRegistry
) -> None:
    with make_client(
        f"sqlite:///{tmp_path / 'app.db'}", registry, otlp={"grace_seconds": 0, "max_pending_spans": 100}
    ) as c:
        # children whose root never comes: they wait, up to the bound
        waiting = body(*(span(i + 2, 1, "chat", 0, 1, gen_ai__request__model="m") for i in range(150)))
        answer = c.post(TRACES, content=orjson.dumps(waiting), headers=JSON).json()
        assert answer["partialSuccess"]["rejectedSpans"] == "50"
        assert "pending spans over the limit of 100" in answer["partialSuccess"]["errorMessage"]
        assert registry.get_sample_value("agent_exporter_otlp_spans_pending") == 100
        assert spans_counted(registry, "dropped") == 50


def test_a_trace_whose_root_never_comes_is_assembled_after_the_pending_timeout(
    tmp_path: Path, registry: CollectorRegistry
) -> None:
    otlp = {"grace_seconds": 0, "pending_timeout_seconds": 1}
    with make_client(f"sqlite:///{tmp_path / 'app.db'}", registry, otlp=otlp) as c:
        # the agent span's parent lives in another service, which does not export here
        orphan = body(
            span(5, 99, "invoke_agent fixer", 0, 4, gen_ai__operation__name="invoke_agent"),
            span(6, 5, "chat gpt-5", 1, 2, gen_ai__request__model="gpt-5", gen_ai__usage__input_tokens=9),
        )
        c.post(TRACES, content=orjson.dumps(orphan), headers=JSON)
        assert registry.get_sample_value("agent_exporter_otlp_spans_pending") == 2
        run = stored(c, f"otlp-{TRACE}-{5:016x}")
        assert (run["agent"], run["input_tokens"], run["llm_calls"]) == ("fixer", 9, 1)
        assert registry.get_sample_value("agent_exporter_otlp_spans_pending") == 0


def test_spans_past_the_per_request_limit_are_rejected_unread(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(codec, "MAX_SPANS_PER_REQUEST", 4)
    answer = client.post(TRACES, content=protobuf(AGENT_TRACE), headers=PROTOBUF)
    partial = ExportTraceServiceResponse.FromString(answer.content).partial_success
    assert partial.rejected_spans == 5
    assert "spans[4]: over the limit of" in partial.error_message
    assert "spans a request; export smaller batches" in partial.error_message


def test_replicas_sharing_a_store_make_one_run_of_a_trace_split_between_them(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    otlp = {"grace_seconds": 0, "pending_timeout_seconds": 1}
    spans = AGENT_TRACE["resourceSpans"][0]["scopeSpans"][0]["spans"]
    first, second = CollectorRegistry(), CollectorRegistry()
    with make_client(url, first, otlp=otlp) as a, make_client(url, second, otlp=otlp) as b:
        a.post(TRACES, content=orjson.dumps(body(*spans[1:])), headers=JSON)  # the children reach one
        b.post(TRACES, content=orjson.dumps(body(spans[0])), headers=JSON)  # the root the other
        assert stored(b, FIXER)["llm_calls"] == 2  # b read a's spans from the store
        # a's copy of the children waits for its timeout, then finds them written by b
        wait_until(
            lambda: first.get_sample_value("agent_exporter_otlp_spans_pending") == 0, 10, "a to let go"
        )
        assert sorted(r["run_id"] for r in a.get("/api/v1/runs").json()["runs"]) == [FIXER, REVIEWER]
        assert (
            first.get_sample_value(
                "agent_runs_total",
                {
                    "agent": "fixer",
                    "model": "claude-sonnet-4-5",
                    "issue_type": "unknown",
                    "status": "success",
                },
            )
            is None
        )
        assert second.get_sample_value("agent_exporter_records_total", {"outcome": "accepted"}) == 2
        # and a wrote nothing of its own: no run, no conflict with b's
        assert [first.get_sample_value("agent_exporter_records_total", {"outcome": o}) for o in OUTCOMES] == [
            0,
            0,
            0,
            0,
        ]
