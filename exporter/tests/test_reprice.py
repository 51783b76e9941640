"""POST /api/v1/reprice: estimated costs follow a price change; reported costs never move."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from .readfixtures import at, post
from .support import make_client, record

OLD_PRICES = """
models:
  - model: internal-coder
    input: 1.0
    output: 2.0
"""
NEW_PRICES = """
models:
  - model: internal-coder
    input: 2.0
    output: 4.0
  - model: mystery-model
    input: 3.0
    output: 0.0
"""
MILLION = 1_000_000


def runs() -> list[dict[str, Any]]:
    """est-1: estimated USD 2.00; rep-1: reported USD 5.00; unk-1: a model nobody prices; mix-1: an
    estimated line (USD 1.00) and a reported one (USD 0.50)."""
    return [
        record(
            "est-1", model="internal-coder", input_tokens=MILLION, output_tokens=MILLION // 2, ended_at=at(1)
        ),
        record(
            "rep-1",
            model="internal-coder",
            input_tokens=MILLION,
            output_tokens=MILLION // 2,
            cost_usd=5.0,
            ended_at=at(1),
        ),
        record(
            "unk-1",
            model="mystery-model",
            provider=None,
            input_tokens=MILLION,
            output_tokens=0,
            ended_at=at(1),
        ),
        record(
            "mix-1",
            model=None,
            provider=None,
            ended_at=at(1),
            usage=[
                {"model": "internal-coder", "input_tokens": MILLION, "output_tokens": 0},
                {"model": "vendor-x", "input_tokens": 10, "output_tokens": 0, "cost_usd": 0.5},
            ],
        ),
    ]


@pytest.fixture
def prices(tmp_path: Path) -> Path:
    """The price file the server reads, at the old prices."""
    path = tmp_path / "prices.yaml"
    path.write_text(OLD_PRICES)
    return path


@pytest.fixture
def api(store_url: str, registry: CollectorRegistry, prices: Path) -> Iterator[TestClient]:
    """The app on each backend with the price file, and the four runs stored at the old prices."""
    with make_client(store_url, registry, price_file=prices) as client:
        post(client, runs())
        yield client


def cost(client: TestClient, run_id: str) -> tuple[Any, str]:
    body = client.get(f"/api/v1/runs/{run_id}").json()
    return body["cost_usd"], body["cost_source"]


def test_runs_are_priced_at_ingest(api: TestClient) -> None:
    assert cost(api, "est-1") == (pytest.approx(2.0), "estimated")
    assert cost(api, "rep-1") == (5.0, "reported")
    assert cost(api, "unk-1") == (None, "unknown")
    assert cost(api, "mix-1") == (pytest.approx(1.5), "estimated")


def test_reprice_after_a_price_change(api: TestClient, prices: Path) -> None:
    prices.write_text(NEW_PRICES)
    response = api.post("/api/v1/reprice")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["dry_run"] is False
    assert body["price_file"] == str(prices)
    assert (body["runs_examined"], body["runs_changed"], body["usage_lines_changed"]) == (3, 3, 1)
    assert (body["became_known"], body["became_unknown"]) == (1, 0)
    assert body["cost_before_usd"] == pytest.approx(3.5)
    assert body["cost_after_usd"] == pytest.approx(9.5)
    assert body["delta_usd"] == pytest.approx(6.0)
    assert cost(api, "est-1") == (pytest.approx(4.0), "estimated")
    assert cost(api, "unk-1") == (pytest.approx(3.0), "estimated")
    assert cost(api, "mix-1") == (pytest.approx(2.5), "estimated")
    usage = api.get("/api/v1/runs/mix-1").json()["usage"]
    assert [(u["cost_usd"], u["cost_source"]) for u in usage] == [
        (pytest.approx(2.0), "estimated"),
        (0.5, "reported"),
    ]


def test_reported_costs_are_untouched(api: TestClient, prices: Path) -> None:
    prices.write_text(NEW_PRICES)
    api.post("/api/v1/reprice")
    assert cost(api, "rep-1") == (5.0, "reported")


def test_a_dry_run_stores_nothing(api: TestClient, prices: Path) -> None:
    prices.write_text(NEW_PRICES)
    body = api.post("/api/v1/reprice", params={"dry_run": "true"}).json()
    assert (body["dry_run"], body["runs_changed"], body["delta_usd"]) == (True, 3, pytest.approx(6.0))
    assert cost(api, "est-1") == (pytest.approx(2.0), "estimated")
    assert cost(api, "unk-1") == (None, "unknown")


def test_repricing_twice_changes_nothing_the_second_time(api: TestClient, prices: Path) -> None:
    prices.write_text(NEW_PRICES)
    api.post("/api/v1/reprice")
    body = api.post("/api/v1/reprice").json()
    assert (body["runs_examined"], body["runs_changed"], body["delta_usd"]) == (3, 0, 0.0)


def test_reprice_takes_the_filters(api: TestClient, prices: Path) -> None:
    prices.write_text(NEW_PRICES)
    body = api.post("/api/v1/reprice", params={"model": "mystery-model"}).json()
    assert (body["runs_examined"], body["runs_changed"], body["became_known"]) == (1, 1, 1)
    assert cost(api, "est-1") == (pytest.approx(2.0), "estimated")


def test_new_runs_are_priced_with_the_new_prices(api: TestClient, prices: Path) -> None:
    prices.write_text(NEW_PRICES)
    api.post("/api/v1/reprice")
    post(
        api, [record("est-2", model="internal-coder", input_tokens=MILLION, output_tokens=0, ended_at=at(2))]
    )
    assert cost(api, "est-2") == (pytest.approx(2.0), "estimated")


def test_a_broken_price_file_reprices_nothing(api: TestClient, prices: Path) -> None:
    prices.write_text("models:\n  - model: internal-coder\n    input: -1\n    output: 1\n")
    response = api.post("/api/v1/reprice")
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "invalid_price_file"
    assert "models.0.input" in error["message"]
    assert error["message"].endswith("nothing was repriced")
    assert cost(api, "est-1") == (pytest.approx(2.0), "estimated")
