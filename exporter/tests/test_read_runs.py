"""GET /api/v1/runs and /api/v1/runs/{run_id}: history, filters, pagination, one run in full."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from sqlalchemy import create_engine, text

from .readfixtures import DAY, MONDAY, at, post, ten_runs
from .support import make_client, record


@pytest.fixture
def api(store_url: str, registry: CollectorRegistry) -> Iterator[TestClient]:
    """The app on each backend, with the ten fixture runs stored."""
    with make_client(store_url, registry) as client:
        post(client, ten_runs())
        yield client


def ids(client: TestClient, **params: Any) -> list[str]:
    response = client.get("/api/v1/runs", params=params)
    assert response.status_code == 200, response.text
    return [run["run_id"] for run in response.json()["runs"]]


def test_runs_are_listed_newest_first(api: TestClient) -> None:
    assert ids(api) == [f"r{i:02d}" for i in range(10, 0, -1)]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"agent": "fixer"}, ["r09", "r07", "r05", "r03", "r01"]),
        ({"model": "gpt-5"}, ["r10", "r09", "r08", "r07"]),
        ({"status": "failure"}, ["r10", "r06"]),
        ({"status": ["failure", "error"]}, ["r10", "r08", "r06"]),
        ({"issue_type": "security", "project": "beta"}, ["r10", "r09"]),
        ({"agent": "fixer", "model": "gpt-5"}, ["r09", "r07"]),
        ({"provider": "anthropic", "status": "failure"}, ["r06"]),
        ({"from": at(2)}, ["r10", "r09", "r08", "r07", "r06", "r05"]),
        ({"to": at(2)}, ["r04", "r03", "r02", "r01"]),
        ({"from": at(1), "to": at(2)}, ["r04", "r03"]),
        ({"agent": "nobody"}, []),
    ],
)
def test_filters_select_runs(api: TestClient, params: dict[str, Any], expected: list[str]) -> None:
    assert ids(api, **params) == expected


def test_relative_from_counts_back_from_now(api: TestClient) -> None:
    assert ids(api, **{"from": "1d"}) == []
    assert len(ids(api, **{"from": "60d"})) == 10


def test_pages_follow_the_cursor_to_the_end(api: TestClient) -> None:
    pages = []
    params: dict[str, Any] = {"limit": 3}
    while True:
        body = api.get("/api/v1/runs", params=params).json()
        pages.append([run["run_id"] for run in body["runs"]])
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    assert pages == [["r10", "r09", "r08"], ["r07", "r06", "r05"], ["r04", "r03", "r02"], ["r01"]]


def test_a_full_last_page_has_no_cursor(api: TestClient) -> None:
    body = api.get("/api/v1/runs", params={"limit": 10}).json()
    assert len(body["runs"]) == 10
    assert body["next_cursor"] is None


def test_runs_ending_together_are_paged_by_run_id(store_url: str, registry: CollectorRegistry) -> None:
    with make_client(store_url, registry) as client:
        post(client, [record(f"same-{c}", ended_at=at(1)) for c in "abcde"])
        first = client.get("/api/v1/runs", params={"limit": 2}).json()
        second = client.get("/api/v1/runs", params={"limit": 10, "cursor": first["next_cursor"]}).json()
    assert [r["run_id"] for r in first["runs"]] == ["same-e", "same-d"]
    assert [r["run_id"] for r in second["runs"]] == ["same-c", "same-b", "same-a"]


def test_the_cursor_keeps_the_filters_of_the_request(api: TestClient) -> None:
    body = api.get("/api/v1/runs", params={"agent": "reviewer", "limit": 2}).json()
    rest = api.get("/api/v1/runs", params={"agent": "reviewer", "cursor": body["next_cursor"]}).json()
    assert [r["run_id"] for r in rest["runs"]] == ["r06", "r04", "r02"]


def test_a_listed_run_carries_its_figures(api: TestClient) -> None:
    run = api.get("/api/v1/runs", params={"limit": 3}).json()["runs"][2]
    assert run["run_id"] == "r08"
    assert run["status"] == "error"
    assert run["error_type"] == "crash"
    assert run["error_summary"] == "run 8 went wrong"
    assert run["total_tokens"] == 8800
    assert run["cost_usd"] == pytest.approx(0.8)
    assert run["ended_at"] == at(3.5)
    assert run["started_at"] == at(3.5 - 8 / DAY)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-13-01T00:00:00Z"}, "to"),
        ({"from": "2026-01-01T00:00:00"}, "from"),  # no offset: ambiguous
        ({"from": at(2), "to": at(1)}, "from"),
        ({"status": "crashed"}, "status"),
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"model": "gpt\x005"}, "model"),  # PostgreSQL would refuse the NUL outright
        ({"agent": "fixer\n"}, "agent"),
        ({"project": "p" * 129}, "project"),
    ],
)
def test_bad_parameters_are_422_naming_the_field(api: TestClient, params: dict[str, Any], field: str) -> None:
    response = api.get("/api/v1/runs", params=params)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"
    assert response.json()["error"]["message"].startswith(f"{field}: ")


def test_a_date_means_midnight_utc(api: TestClient) -> None:
    day = at(2)[:10]
    assert ids(api, **{"from": day, "to": at(3)}) == ["r06", "r05"]


def test_one_run_has_its_breakdowns_and_derived_figures(store_url: str, registry: CollectorRegistry) -> None:
    detailed = record(
        "team-a/fix-1",
        agent_version="1.4.2",
        ended_at=at(1),
        duration_seconds=100.0,
        input_tokens=10_000,
        cache_read_tokens=4_000,
        cache_write_tokens=1_000,
        output_tokens=2_000,
        reasoning_tokens=500,
        cost_usd=0.6,
        llm_calls=12,
        retries=1,
        status="failure",
        error_type="tests_failed",
        error_summary="3 tests failed in test_api.py",
        quality_score=0.4,
        confidence=0.7,
        labels={"ticket": "OPS-1"},
        usage=[
            {"model": "claude-sonnet-4-5", "input_tokens": 8000, "output_tokens": 1500, "calls": 9},
            {"model": "claude-haiku-4-5", "input_tokens": 2000, "output_tokens": 500, "calls": 3},
        ],
        tools=[
            {"name": "bash", "calls": 6, "errors": 1, "duration_seconds": 20.0},
            {"name": "edit", "calls": 4, "errors": 1},
        ],
        phases=[
            {"name": "plan", "duration_seconds": 10.0, "status": "success"},
            {"name": "edit", "duration_seconds": 50.0, "status": "success"},
            {"name": "test", "duration_seconds": 40.0, "status": "failure"},
        ],
    )
    with make_client(store_url, registry) as client:
        post(client, [detailed])
        body = client.get("/api/v1/runs/team-a/fix-1").json()
    assert body["run_id"] == "team-a/fix-1"
    assert body["agent_version"] == "1.4.2"
    assert body["labels"] == {"ticket": "OPS-1"}
    assert body["quality_score"] == 0.4
    assert body["confidence"] == 0.7
    assert body["tool_calls"] == 10
    assert [u["model"] for u in body["usage"]] == ["claude-sonnet-4-5", "claude-haiku-4-5"]
    assert body["usage"][0]["calls"] == 9
    assert body["tools"] == [
        {"name": "bash", "calls": 6, "errors": 1, "duration_seconds": 20.0},
        {"name": "edit", "calls": 4, "errors": 1, "duration_seconds": None},
    ]
    assert [(p["name"], p["status"]) for p in body["phases"]] == [
        ("plan", "success"),
        ("edit", "success"),
        ("test", "failure"),
    ]
    derived = body["derived"]
    assert derived["total_tokens"] == 12_000
    assert derived["uncached_input_tokens"] == 5_000
    assert derived["cache_hit_ratio"] == pytest.approx(0.4)
    assert derived["tokens_per_llm_call"] == pytest.approx(1000.0)
    assert derived["cost_per_llm_call_usd"] == pytest.approx(0.05)
    assert derived["tool_errors"] == 2
    assert derived["tool_error_rate"] == pytest.approx(0.2)
    assert derived["phases_seconds"] == pytest.approx(100.0)
    assert derived["slowest_phase"] == "edit"
    assert derived["ingest_lag_seconds"] > 0
    assert body["ended_at_reported"] is True


@pytest.mark.parametrize(
    ("timestamps", "reported"),
    [
        ({}, False),  # ended when received
        ({"ended_at": at(1)}, True),
        ({"started_at": at(1)}, True),  # ended at start + duration
    ],
)
def test_a_run_says_whether_its_end_was_reported_or_is_the_receipt_time(
    store_url: str, registry: CollectorRegistry, timestamps: dict[str, str], reported: bool
) -> None:
    sent = record("when-1", duration_seconds=30.0, **timestamps)
    with make_client(store_url, registry) as client:
        post(client, [sent])
        body = client.get("/api/v1/runs/when-1").json()
    assert body["ended_at_reported"] is reported
    assert (body["ended_at"] == body["received_at"]) is not reported


def test_a_run_without_cache_figures_has_no_cache_hit_ratio(api: TestClient) -> None:
    derived = api.get("/api/v1/runs/r10").json()["derived"]
    assert derived["cache_hit_ratio"] is None
    assert derived["total_tokens"] is None
    assert derived["tool_error_rate"] is None


def test_an_unknown_run_is_404_naming_it(api: TestClient) -> None:
    response = api.get("/api/v1/runs/no-such-run")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "no run with run_id 'no-such-run'"}}


def test_a_run_id_no_run_can_have_is_404_without_asking_the_store(api: TestClient) -> None:
    response = api.get("/api/v1/runs/bad%00id")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "no run with run_id 'bad\\x00id': not a valid run_id"
    assert api.get("/api/v1/runs/" + "x" * 129).status_code == 422


def test_an_unknown_route_names_itself(api: TestClient) -> None:
    response = api.get("/api/v1/nothing-here")
    assert response.json()["error"] == {
        "code": "not_found",
        "message": "no route for GET /api/v1/nothing-here; the API is described at /openapi.json",
    }


def test_monday_is_a_monday() -> None:
    assert (MONDAY // DAY - 4) % 7 == 0


def test_a_broken_store_is_503_not_500(store_url: str, registry: CollectorRegistry) -> None:
    with make_client(store_url, registry) as client:
        post(client, [record("r01")])
        engine = create_engine(store_url)
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE run_usage"))
        engine.dispose()
        response = client.get("/api/v1/runs/r01")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["error"]["message"].startswith("the store did not answer (")
