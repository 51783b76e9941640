"""Budgets per owner: alerts/config.yaml's cost.owner_budgets, validated, and GET /api/v1/budget's
spend in the current UTC day or month with its projection (the alerts: alerts/tests/owner_budget_test.yml)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from agent_exporter.budgets import BudgetFileError, OwnerBudget, load, period_bounds, projected
from agent_exporter.cli import app
from agent_exporter.config import ConfigError, load_settings

from .support import REPO, exporter, make_client, record


def write(path: Path, budgets: list[dict[str, object]]) -> Path:
    path.write_text(yaml.safe_dump({"cost": {"owner_budgets": budgets}}))
    return path


def test_the_shipped_configuration_holds_budgets_for_an_agent_and_a_team() -> None:
    assert load(REPO / "alerts/config.yaml") == [
        OwnerBudget(owner="agent", name="reviewer", period="day", usd=30000),
        OwnerBudget(owner="team", name="platform", period="month", usd=3000000),
    ]


def test_a_monthly_budgets_daily_share_is_a_thirtieth() -> None:
    assert OwnerBudget(owner="team", name="t", period="month", usd=3000).daily_usd == 100


def test_periods_are_the_utc_day_and_month() -> None:
    now = datetime(2026, 2, 10, 6, 0, tzinfo=UTC).timestamp()
    assert period_bounds("day", now) == (
        datetime(2026, 2, 10, tzinfo=UTC).timestamp(),
        datetime(2026, 2, 11, tzinfo=UTC).timestamp(),
    )
    assert period_bounds("month", now) == (
        datetime(2026, 2, 1, tzinfo=UTC).timestamp(),
        datetime(2026, 3, 1, tzinfo=UTC).timestamp(),
    )
    # 6 hours into the day, 10 USD spent: 40 USD at that pace by midnight
    assert projected(10.0, *period_bounds("day", now), now) == pytest.approx(40.0)


@pytest.mark.parametrize(
    ("budget", "message"),
    [
        ({"owner": "model", "name": "x", "period": "day", "usd": 1}, "owner"),
        ({"owner": "team", "name": "x", "period": "week", "usd": 1}, "period"),
        ({"owner": "team", "name": "x", "period": "day", "usd": 0}, "greater than 0"),
    ],
)
def test_a_bad_budget_stops_the_start_naming_it(
    tmp_path: Path, budget: dict[str, object], message: str
) -> None:
    path = write(tmp_path / "config.yaml", [budget])
    with pytest.raises(BudgetFileError, match=r"owner_budgets\[0\]"):
        load(path)
    with pytest.raises(ConfigError, match="owner_budgets"):
        load_settings(budgets_file=path)


def test_the_budget_view_gives_spend_share_and_projection(
    tmp_path: Path, store_url: str, registry: CollectorRegistry
) -> None:
    path = write(
        tmp_path / "config.yaml",
        [
            {"owner": "agent", "name": "fixer", "period": "day", "usd": 100},
            {"owner": "team", "name": "platform", "period": "month", "usd": 1000},
        ],
    )
    now = time.time()
    day_start, _ = period_bounds("day", now)
    month_start, _ = period_bounds("month", now)
    # today's: 30 USD by the fixer (of the platform team), 5 by another agent; yesterday's: not today
    runs = [
        record("f1", agent="fixer", team="platform", cost_usd=10.0, ended_at=_iso(max(day_start, now - 60))),
        record("f2", agent="fixer", team="platform", cost_usd=20.0, ended_at=_iso(max(day_start, now - 30))),
        record("o1", agent="reviewer", team="web", cost_usd=5.0, ended_at=_iso(max(day_start, now - 30))),
    ]
    with make_client(store_url, registry, budgets_file=path) as client:
        assert client.post("/api/v1/runs", json={"runs": runs}).json()["accepted"] == 3
        fixer, platform = client.get("/api/v1/budget").json()
    assert (fixer["owner"], fixer["name"], fixer["spent_usd"], fixer["spent_share"]) == (
        "agent",
        "fixer",
        30.0,
        0.3,
    )
    assert fixer["period_start"] == day_start
    elapsed = max(fixer["period_end"] - fixer["period_start"], 1.0)
    assert fixer["projected_usd"] >= 30.0
    assert fixer["projected_usd"] == pytest.approx(30.0 * 86400 / max(now - day_start, 1.0), rel=0.01)
    assert fixer["over_budget"] is (fixer["projected_usd"] > 100)
    assert elapsed == 86400
    assert (platform["spent_usd"], platform["period_start"]) == (30.0, month_start)


def test_without_budgets_the_view_is_empty_and_the_cli_says_how(tmp_path: Path) -> None:
    with exporter(tmp_path) as server:
        result = CliRunner().invoke(app, ["budget"], env={"AGENT_EXPORTER_URL": server.url, "COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "no budgets: set budgets_file" in result.output


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()
