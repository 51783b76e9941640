"""GET /api/v1/report: the performance report, Wilson-ranked recommendations, the shared dataset."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from agent_exporter.demo import swebench

from .readfixtures import at, post
from .support import SHARED_DATA, make_client, record, unavailable


def attempts(
    agent: str, model: str, issue_type: str, successes: int, failures: int, cancelled: int = 0
) -> list[dict[str, Any]]:
    """`successes` + `failures` runs of one agent and model on one issue type, then `cancelled` more
    that someone stopped (neither successes nor failures). Every run costs 0.5 USD."""
    statuses = ["success"] * successes + ["failure"] * failures + ["cancelled"] * cancelled
    return [
        record(
            f"{agent}-{model}-{issue_type}-{i}",
            agent=agent,
            model=model,
            issue_type=issue_type,
            status=status,
            ended_at=at(1 + i / 1000),
            cost_usd=0.5,
            confidence=0.9 if agent == "lucky" else 0.6,
        )
        for i, status in enumerate(statuses)
    ]


@pytest.fixture
def api(store_url: str, registry: CollectorRegistry) -> Iterator[TestClient]:
    """On `bug`: careful/claude 90 of 100 (and 20 cancelled runs), lucky/gpt-5 3 of 3. On `docs`:
    careful/claude 2 of 4 and lucky/gpt-5 1 of 1 (and 4 cancelled: 5 runs, but 1 attempt), too few
    for a recommendation at 5 attempts. Cancelled runs count in `runs` and cost, nowhere else."""
    with make_client(store_url, registry) as client:
        post(
            client,
            attempts("careful", "claude-sonnet-4-5", "bug", 90, 10, cancelled=20)
            + attempts("lucky", "gpt-5", "bug", 3, 0)
            + attempts("careful", "claude-sonnet-4-5", "docs", 2, 2)
            + attempts("lucky", "gpt-5", "docs", 1, 0, cancelled=4),
        )
        yield client


def report(client: TestClient, **params: Any) -> dict[str, Any]:
    response = client.get("/api/v1/report", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def recommendation(body: dict[str, Any], issue_type: str) -> dict[str, Any]:
    found: dict[str, Any] = next(r for r in body["recommendations"] if r["issue_type"] == issue_type)
    return found


def test_report_summary_totals(api: TestClient) -> None:
    s = report(api)["summary"]
    assert (s["total_runs"], s["total_cancelled"], s["total_attempts"]) == (132, 24, 108)
    assert (s["total_successful"], s["total_failed"]) == (96, 12)
    assert s["overall_success_rate"] == pytest.approx(96 / 108)
    assert (s["total_agents"], s["total_models"], s["total_issue_types"]) == (2, 2, 2)
    assert s["total_cost_usd"] == pytest.approx(66.0)  # the cancelled runs' spend included
    assert s["cost_per_success_usd"] == pytest.approx(66.0 / 96)


def test_three_of_three_does_not_beat_ninety_of_a_hundred(api: TestClient) -> None:
    bug = recommendation(report(api, min_attempts=1), "bug")
    assert bug["agent"]["name"] == "careful"
    assert (bug["agent"]["runs"], bug["agent"]["attempts"], bug["agent"]["failures"]) == (120, 100, 10)
    assert bug["agent"]["success_rate"] == pytest.approx(0.9)  # 90 of 100: the 20 cancelled left out
    assert bug["agent"]["success_rate_lower"] == pytest.approx(0.82564, abs=1e-5)
    assert bug["agent"]["runner_up"] == "lucky"
    assert bug["agent"]["runner_up_success_rate_lower"] == pytest.approx(0.43850, abs=1e-5)
    assert bug["model"]["name"] == "claude-sonnet-4-5"
    assert bug["combination"]["name"] == "careful / claude-sonnet-4-5"


def test_candidates_below_min_attempts_are_left_out(api: TestClient) -> None:
    bug = recommendation(report(api), "bug")
    assert (bug["candidates"], bug["below_min_attempts"]) == (1, 1)
    assert bug["agent"]["runner_up"] is None


def test_no_recommendation_without_enough_attempts(api: TestClient) -> None:
    docs = recommendation(report(api), "docs")
    assert (docs["runs"], docs["attempts"]) == (9, 5)
    # lucky has 5 runs on docs, but 4 were cancelled: 1 attempt is under min_attempts=5
    assert (docs["agent"], docs["model"], docs["combination"]) == (None, None, None)
    assert (docs["candidates"], docs["below_min_attempts"]) == (0, 2)


def test_a_lower_min_attempts_admits_them(api: TestClient) -> None:
    docs = recommendation(report(api, min_attempts=1), "docs")
    # with min_attempts=1, 1 of 1 (lower bound 0.21) edges out 2 of 4 (0.15): min_attempts is the guard
    assert docs["agent"]["name"] == "lucky"
    assert (docs["agent"]["runs"], docs["agent"]["cancelled"], docs["agent"]["success_rate"]) == (5, 4, 1.0)
    assert docs["agent"]["success_rate_lower"] == pytest.approx(0.20654, abs=1e-5)  # Wilson of 1 of 1
    assert docs["agent"]["runner_up_success_rate_lower"] == pytest.approx(0.15004, abs=1e-5)


def test_report_by_agent_lists_what_each_did(api: TestClient) -> None:
    by_agent = {a["agent"]: a for a in report(api)["by_agent"]}
    careful = by_agent["careful"]
    assert (careful["runs"], careful["cancelled"], careful["attempts"], careful["successes"]) == (
        124,
        20,
        104,
        92,
    )
    assert careful["failures"] == 12
    assert careful["success_rate"] == pytest.approx(92 / 104)
    assert careful["issue_types"] == ["bug", "docs"]
    assert careful["models"] == ["claude-sonnet-4-5"]
    assert careful["mean_confidence"] == pytest.approx(0.6)
    assert by_agent["lucky"]["mean_confidence"] == pytest.approx(0.9)


def test_report_by_issue_type_is_largest_first(api: TestClient) -> None:
    rows = report(api)["by_issue_type"]
    assert [(r["issue_type"], r["runs"], r["attempts"], r["successes"]) for r in rows] == [
        ("bug", 123, 103, 93),
        ("docs", 9, 5, 3),
    ]
    assert rows[0]["agents"] == ["careful", "lucky"]


def test_model_comparison_matches_models_per_issue_type(api: TestClient) -> None:
    comparison = report(api)["model_comparison"]
    models = {m["model"]: m for m in comparison["models"]}
    assert (models["gpt-5"]["runs"], models["gpt-5"]["attempts"]) == (8, 4)
    assert models["gpt-5"]["sufficient"] is False  # 8 runs, but 4 attempts: under 5
    assert models["claude-sonnet-4-5"]["sufficient"] is True
    bug = next(m for m in comparison["by_issue_type"] if m["issue_type"] == "bug")
    assert [(c["model"], c["runs"], c["attempts"], c["successes"]) for c in bug["models"]] == [
        ("claude-sonnet-4-5", 120, 100, 90),
        ("gpt-5", 3, 3, 3),
    ]
    assert bug["leader"] == "claude-sonnet-4-5"


def test_report_filters_apply(api: TestClient) -> None:
    body = report(api, agent="lucky")
    assert (body["summary"]["total_runs"], body["summary"]["total_attempts"]) == (8, 4)
    assert body["filters"]["agent"] == ["lucky"]


def test_report_confidence_must_be_a_fraction(api: TestClient) -> None:
    response = api.get("/api/v1/report", params={"confidence": 1.5})
    assert response.status_code == 422
    assert response.json()["error"]["message"].startswith("confidence: ")


def test_report_reproduces_the_shared_dataset(store_url: str, registry: CollectorRegistry) -> None:
    if not SHARED_DATA.is_file():
        unavailable(f"the shared dataset is not at {SHARED_DATA}")
    with make_client(store_url, registry) as client:
        post(client, list(swebench.records(SHARED_DATA)))
        body = report(client)
    by_model = {m["model"]: m for m in body["by_model"]}
    gpt, sonnet = by_model["gpt-5"], by_model["claude-sonnet-4-5"]
    assert (gpt["runs"], gpt["successes"], round(gpt["cost_usd"], 2)) == (616, 262, 1217.90)
    assert (sonnet["runs"], sonnet["successes"], round(sonnet["cost_usd"], 2)) == (616, 274, 6973.20)
    assert (body["summary"]["total_runs"], body["summary"]["total_attempts"]) == (1232, 1232)
    assert body["summary"]["total_issue_types"] == 11
