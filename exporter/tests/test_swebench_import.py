"""The shared SWE-Bench Pro dataset through the API: the store and the metrics keep its totals."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from sqlalchemy import create_engine, text

from agent_exporter.demo import swebench

from .support import SHARED_DATA, make_client, unavailable


@pytest.fixture
def imported(store_url: str, registry: CollectorRegistry) -> Iterator[TestClient]:
    if not SHARED_DATA.is_file():
        unavailable(f"the shared dataset is not at {SHARED_DATA}")
    records = list(swebench.records(SHARED_DATA))
    with make_client(store_url, registry) as client:
        for start in range(0, len(records), 500):
            body = client.post("/api/v1/runs", json={"runs": records[start : start + 500]}).json()
            assert (body["rejected"], body["conflicts"], body["duplicates"]) == (0, 0, 0), body
        yield client


def test_the_store_holds_the_datasets_totals(imported: TestClient, store_url: str) -> None:
    engine = create_engine(store_url)
    with engine.connect() as conn:
        runs, successes, cost = conn.execute(
            text(
                "SELECT count(*), sum(CASE WHEN status = 'success' THEN 1 ELSE 0 END), sum(cost_usd) "
                "FROM runs"
            )
        ).one()
        by_model: dict[str, object] = dict(
            conn.execute(
                text("SELECT model, round(CAST(sum(cost_usd) AS NUMERIC), 2) FROM runs GROUP BY model")
            ).all()
        )
    engine.dispose()
    assert (runs, successes, round(cost, 2)) == (1232, 536, 8191.10)
    assert {k: float(str(v)) for k, v in by_model.items()} == {"gpt-5": 1217.90, "claude-sonnet-4-5": 6973.20}


def test_the_metrics_count_the_datasets_totals(imported: TestClient, registry: CollectorRegistry) -> None:
    def total(name: str, **match: str) -> float:
        return sum(
            sample.value
            for family in registry.collect()
            for sample in family.samples
            if sample.name == name and all(sample.labels.get(k) == v for k, v in match.items())
        )

    assert total("agent_runs_total") == 1232
    assert total("agent_runs_total", status="success") == 536
    assert total("agent_runs_total", model="gpt-5", status="success") == 262
    assert total("agent_runs_total", model="claude-sonnet-4-5", status="success") == 274
    assert round(total("agent_cost_usd_total", cost_source="reported"), 2) == 8191.10
    assert total("agent_run_cost_usd_count") == 1232
    assert total("agent_exporter_records_total", outcome="accepted") == 1232
