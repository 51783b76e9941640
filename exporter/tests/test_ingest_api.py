"""POST /api/v1/runs: per-record outcomes, idempotency, limits, and counting after the commit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from sqlalchemy import create_engine, text

from .support import make_client, record

RUNS = "/api/v1/runs"
FIXER_SUCCESS = {
    "agent": "fixer",
    "model": "claude-sonnet-4-5",
    "issue_type": "complexity",
    "status": "success",
}


def outcomes(registry: CollectorRegistry) -> dict[str, float | None]:
    return {
        o: registry.get_sample_value("agent_exporter_records_total", {"outcome": o})
        for o in ("accepted", "duplicate", "conflict", "rejected")
    }


def runs_counted(registry: CollectorRegistry, **labels: str) -> float | None:
    return registry.get_sample_value("agent_runs_total", {**FIXER_SUCCESS, **labels})


def test_an_accepted_record_answers_201_and_is_counted(
    client: TestClient, registry: CollectorRegistry
) -> None:
    response = client.post(RUNS, json=record("r-1", input_tokens=10))
    assert response.status_code == 201
    assert response.json() == {
        "accepted": 1,
        "duplicates": 0,
        "conflicts": 0,
        "rejected": 0,
        "results": [{"index": 0, "outcome": "accepted", "run_id": "r-1"}],
    }
    assert runs_counted(registry) == 1
    assert outcomes(registry) == {"accepted": 1, "duplicate": 0, "conflict": 0, "rejected": 0}


def test_a_duplicate_answers_200_and_counts_nothing_again(
    client: TestClient, registry: CollectorRegistry
) -> None:
    client.post(RUNS, json=record("r-1", input_tokens=10, cost_usd=0.5))
    response = client.post(RUNS, json=record("r-1", input_tokens=10, cost_usd=0.5))
    assert response.status_code == 200
    assert response.json()["results"] == [{"index": 0, "outcome": "duplicate", "run_id": "r-1"}]
    assert runs_counted(registry) == 1
    assert (
        registry.get_sample_value(
            "agent_tokens_total", {"agent": "fixer", "model": "claude-sonnet-4-5", "token_type": "input"}
        )
        == 10
    )
    assert (
        registry.get_sample_value(
            "agent_cost_usd_total",
            {"agent": "fixer", "model": "claude-sonnet-4-5", "cost_source": "reported", "status": "success"},
        )
        == 0.5
    )
    assert outcomes(registry) == {"accepted": 1, "duplicate": 1, "conflict": 0, "rejected": 0}


def test_a_conflict_answers_409_and_keeps_the_stored_run(
    client: TestClient, registry: CollectorRegistry
) -> None:
    client.post(RUNS, json=record("r-1", status="success"))
    response = client.post(RUNS, json=record("r-1", status="failure"))
    assert response.status_code == 409
    assert response.json()["results"] == [
        {
            "index": 0,
            "outcome": "conflict",
            "run_id": "r-1",
            "errors": [
                {
                    "field": "run_id",
                    "rule": "conflict",
                    "message": "run_id 'r-1' is stored already with a different body; it was not overwritten",
                }
            ],
        }
    ]
    assert runs_counted(registry, status="failure") == 0
    assert runs_counted(registry) == 1
    assert outcomes(registry)["conflict"] == 1


def test_a_rejected_record_answers_422_naming_field_and_rule(
    client: TestClient, registry: CollectorRegistry
) -> None:
    response = client.post(RUNS, json=record("r-1", input_tokens=-3))
    assert response.status_code == 422
    assert response.json()["results"] == [
        {
            "index": 0,
            "outcome": "rejected",
            "run_id": "r-1",
            "errors": [
                {
                    "field": "input_tokens",
                    "rule": "minimum",
                    "message": "input_tokens: input should be greater than or equal to 0 (got -3)",
                }
            ],
        }
    ]
    assert runs_counted(registry) is None
    assert registry.get_sample_value("agent_exporter_records_rejected_total", {"reason": "minimum"}) == 1


def test_a_batch_keeps_the_good_records_and_reports_the_bad_by_index(
    client: TestClient, registry: CollectorRegistry
) -> None:
    client.post(RUNS, json=record("old"))
    batch = {
        "runs": [
            record("a"),
            record("b", status="maybe"),
            record("old"),
            "not a record",
            record("c", cache_read_tokens=20, input_tokens=10),
            record("d", status="failure"),
        ]
    }
    response = client.post(RUNS, json=batch)
    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["duplicates"], body["conflicts"], body["rejected"]) == (2, 1, 0, 3)
    assert [
        (r["index"], r["outcome"], [e["field"] for e in r.get("errors", [])]) for r in body["results"]
    ] == [
        (0, "accepted", []),
        (1, "rejected", ["runs[1].status"]),
        (2, "duplicate", []),
        (3, "rejected", ["runs[3]"]),
        (4, "rejected", ["runs[4].cache_read_tokens"]),
        (5, "accepted", []),
    ]
    assert runs_counted(registry) == 2
    assert runs_counted(registry, status="failure") == 1
    assert client.post(RUNS, json=record("a")).status_code == 200  # stored: a duplicate now


def test_a_bare_array_is_a_batch(client: TestClient) -> None:
    response = client.post(RUNS, json=[record("a"), record("b")])
    assert (response.status_code, response.json()["accepted"]) == (200, 2)


def test_unknown_fields_are_accepted_with_a_warning(client: TestClient) -> None:
    response = client.post(RUNS, json=record("r", modifiedFiles=["a.py"]))
    assert response.json()["results"][0]["warnings"] == ["unknown field 'modifiedFiles' ignored"]


def test_a_backfill_is_stored_without_counting_agent_metrics(
    client: TestClient, registry: CollectorRegistry
) -> None:
    response = client.post(
        RUNS, params={"backfill": "true"}, json={"runs": [record("old-1"), record("old-2")]}
    )
    assert response.json()["accepted"] == 2
    assert runs_counted(registry) is None
    assert outcomes(registry)["accepted"] == 2
    assert client.post(RUNS, json=record("old-1")).status_code == 200  # stored all the same


@pytest.mark.parametrize(
    ("content", "headers", "status", "code"),
    [
        (b'{"run_id": ', {"content-type": "application/json"}, 400, "malformed_json"),
        (b'{"run_id": "r",}', {"content-type": "application/json"}, 400, "malformed_json"),
        (orjson.dumps(record("r")), {"content-type": "text/plain"}, 415, "unsupported_media_type"),
        (orjson.dumps(record("r")), {}, 415, "unsupported_media_type"),
        (b'{"runs": {"run_id": "r"}}', {"content-type": "application/json"}, 422, "invalid_batch"),
    ],
)
def test_a_body_that_is_not_records_is_refused_whole(
    client: TestClient,
    registry: CollectorRegistry,
    content: bytes,
    headers: dict[str, str],
    status: int,
    code: str,
) -> None:
    response = client.post(RUNS, content=content, headers=headers)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert outcomes(registry)["rejected"] == 1


def test_json_with_a_charset_or_a_json_suffix_is_json(client: TestClient) -> None:
    body = orjson.dumps(record("r"))
    assert (
        client.post(
            RUNS, content=body, headers={"content-type": "application/json; charset=utf-8"}
        ).status_code
        == 201
    )
    body = orjson.dumps(record("s"))
    assert (
        client.post(RUNS, content=body, headers={"content-type": "application/vnd.runs+json"}).status_code
        == 201
    )


@pytest.fixture
def small_client(tmp_path: Path, registry: CollectorRegistry) -> Iterator[TestClient]:
    with make_client(
        f"sqlite:///{tmp_path / 'small.db'}",
        registry,
        limits={"max_body_bytes": 2048, "max_batch_records": 3},
    ) as c:
        yield c


def test_a_body_over_the_limit_answers_413(small_client: TestClient, registry: CollectorRegistry) -> None:
    response = small_client.post(RUNS, json=record("r", error_summary="x" * 3000))
    assert response.status_code == 413
    assert response.json()["error"] == {
        "code": "body_too_large",
        "message": "the body is over the limit of 2048 bytes; send smaller batches",
    }
    assert (
        registry.get_sample_value("agent_exporter_records_rejected_total", {"reason": "body_too_large"}) == 1
    )


def test_a_batch_over_the_limit_answers_413_and_stores_nothing(
    small_client: TestClient, registry: CollectorRegistry
) -> None:
    response = small_client.post(RUNS, json={"runs": [record(f"r{i}") for i in range(4)]})
    assert response.status_code == 413
    assert response.json()["error"]["message"] == "runs: 4 records is over the limit of 3 per request"
    assert outcomes(registry)["accepted"] == 0
    assert small_client.post(RUNS, json={"runs": [record(f"r{i}") for i in range(3)]}).json()["accepted"] == 3


def test_when_the_store_fails_nothing_is_counted_and_the_client_is_told_to_retry(
    tmp_path: Path, registry: CollectorRegistry
) -> None:
    url = f"sqlite:///{tmp_path / 'broken.db'}"
    with make_client(url, registry) as broken:
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE run_phases"))  # the insert will fail inside its transaction
        engine.dispose()
        response = broken.post(
            RUNS,
            json={
                "runs": [
                    record("a", phases=[{"name": "plan", "duration_seconds": 1}]),
                    record("b", status="x"),
                ]
            },
        )
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        assert response.json()["error"]["code"] == "store_unavailable"
        assert runs_counted(registry) is None
        assert outcomes(registry) == {"accepted": 0, "duplicate": 0, "conflict": 0, "rejected": 0}
        assert registry.get_sample_value("agent_exporter_store_errors_total", {"operation": "write"}) == 1
        # the run whose transaction failed was rolled back, not half-stored
        engine = create_engine(url)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM runs")).scalar_one() == 0
        engine.dispose()


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}


def test_unknown_routes_answer_json_errors(client: TestClient) -> None:
    response = client.get("/api/v1/nothing")
    assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")
    response = client.delete(RUNS)
    assert (response.status_code, response.json()["error"]["code"]) == (405, "method_not_allowed")


def test_the_openapi_document_describes_the_record_and_the_outcomes(client: TestClient) -> None:
    doc: dict[str, Any] = client.get("/openapi.json").json()
    post = doc["paths"]["/api/v1/runs"]["post"]
    one_of = post["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    assert one_of[0] == {"$ref": "#/components/schemas/RunRecord"}
    assert one_of[1]["properties"]["runs"]["maxItems"] == 1000
    assert set(post["responses"]) == {"200", "201", "400", "409", "413", "415", "422", "503"}
    record_schema = doc["components"]["schemas"]["RunRecord"]
    assert record_schema["required"] == ["run_id", "agent", "status"]
    assert "UsageEntry" in doc["components"]["schemas"]
    assert [p["name"] for p in post["parameters"]] == ["backfill"]


def test_requests_are_timed_by_route_template(client: TestClient, registry: CollectorRegistry) -> None:
    client.post(RUNS, json=record("r"))
    client.get("/healthz")
    labels = {"handler": "/api/v1/runs", "method": "POST", "code": "201"}
    assert registry.get_sample_value("agent_exporter_http_request_duration_seconds_count", labels) == 1
