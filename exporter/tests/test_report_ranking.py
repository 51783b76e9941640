"""The report's ranking when Wilson lower bounds tie: more attempts first, then the name, whatever
order the database returned the groups in."""

from __future__ import annotations

from datetime import UTC, datetime

from agent_exporter import read_models as m
from agent_exporter.aggregates import Aggregate
from agent_exporter.reports import build_report


def cell(agent: str, successes: int, attempts: int) -> Aggregate:
    """An (agent, model, issue type) aggregate of `attempts` runs, `successes` of them successful."""
    return Aggregate(
        key=(agent, "m", "bug"),
        runs=attempts,
        successes=successes,
        statuses={"success": successes, "failure": attempts - successes},
    )


def agent_pick(cells: list[Aggregate]) -> tuple[str | None, str | None]:
    report = build_report(
        cells, min_attempts=5, confidence=0.95, generated_at=datetime.now(UTC), filters=m.Filters()
    )
    [recommendation] = report.recommendations
    assert recommendation.agent is not None
    return recommendation.agent.name, recommendation.agent.runner_up


def test_equal_records_rank_by_name() -> None:
    # the same 8 of 10: the same bound, rate and attempts; listed out of order
    assert agent_pick([cell("beta", 8, 10), cell("alpha", 8, 10)]) == ("alpha", "beta")
    assert agent_pick([cell("alpha", 8, 10), cell("beta", 8, 10)]) == ("alpha", "beta")


def test_among_equal_bounds_more_attempts_rank_first() -> None:
    # no success at all: every lower bound is 0 and every rate 0; 20 attempts say more than 5
    assert agent_pick([cell("alpha", 0, 5), cell("zeta", 0, 20)]) == ("zeta", "alpha")
