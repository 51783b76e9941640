"""SQLite's daily rollup (migration 0003): the report read from it equals the report read from the
runs, over every run and over ranges that cut days, and its triggers keep it exact through
updates and deletes."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import text

from agent_exporter import migrations
from agent_exporter.pricing import PriceBook
from agent_exporter.queries import Aggregate, RunFilter, aggregate
from agent_exporter.record import Run
from agent_exporter.store import Store, StoreSettings

from .support import NOW, priced, record

DAY = 86400.0
CELLS = ("agent", "model", "issue_type")
STATUSES = ("success", "failure", "error", "timeout", "cancelled")


def runs(count: int, prefix: str = "r") -> list[Run]:
    out = []
    for i in range(count):
        fields: dict[str, Any] = {
            "agent": f"agent-{i % 3}",
            "model": None if i % 7 == 0 else f"model-{i % 4}",
            "issue_type": None if i % 11 == 0 else f"type-{i % 5}",
            "status": STATUSES[i % 5],
            "duration_seconds": 1.5 + (i * 37 % 600) / 7,
            "ended_at": _rfc3339(NOW - 10 * DAY + i * (10 * DAY - 600) / count),
            "input_tokens": None if i % 6 == 0 else 1000 + i,
            "output_tokens": None if i % 4 == 0 else 10 + i,
            "cost_usd": None if i % 9 == 0 else 0.013 * (i % 17),
        }
        out.append(priced(record(f"{prefix}-{i}", **fields), PriceBook(use_genai_prices=False)))
    return out


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    target = Store(StoreSettings(f"sqlite:///{tmp_path / 'rollup.db'}"))
    migrations.upgrade(target)
    yield target
    target.close()


def cells(store: Store, flt: RunFilter, *, rollup: bool) -> dict[tuple[str | None, ...], Aggregate]:
    with store.engine.connect() as conn:
        # statuses=True takes the path over the runs themselves, with the same figures
        found = aggregate(conn, flt, by=CELLS, percentiles=False, statuses=not rollup, report=True)
    return {a.key: a for a in found}


def assert_same(store: Store, flt: RunFilter) -> None:
    expected, got = cells(store, flt, rollup=False), cells(store, flt, rollup=True)
    assert set(got) == set(expected)
    for key, want in expected.items():
        have = got[key]
        for name in (
            "runs",
            "successes",
            "cancelled",
            "input_tokens",
            "output_tokens",
            "token_runs",
            "cost_runs",
        ):
            assert getattr(have, name) == getattr(want, name), (key, name)
        assert have.duration_sum == pytest.approx(want.duration_sum, rel=1e-12)
        assert have.cost_sum == pytest.approx(want.cost_sum, rel=1e-12, abs=1e-12)


def test_the_report_from_the_rollup_equals_the_report_from_the_runs(store: Store) -> None:
    store.insert_runs(runs(300))
    midnight = (NOW // DAY) * DAY
    bounds = [None, midnight - 5 * DAY, midnight - 5 * DAY + 1234.5, midnight - DAY - 0.5, midnight, NOW]
    assert_same(store, RunFilter())
    for start, end in itertools.combinations(bounds, 2):
        assert_same(store, RunFilter(start, end))
        assert_same(store, RunFilter(end=start) if start is not None else RunFilter(start=end))
    assert_same(store, RunFilter.of(agent=["agent-1"], status=["success", "failure"]))
    assert_same(store, RunFilter.of(midnight - 3 * DAY, None, model=["model-2"], issue_type=["type-3"]))


def test_a_filter_the_rollup_does_not_key_on_reads_the_runs(store: Store) -> None:
    store.insert_runs(runs(50))
    flt = RunFilter.of(project=["nothing"])
    assert cells(store, flt, rollup=True) == {}


def test_the_triggers_follow_updates_and_deletes(store: Store) -> None:
    store.insert_runs(runs(200))
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE runs SET cost_usd = 2.5, cost_source = 'estimated' WHERE cost_usd IS NULL"))
        conn.execute(
            text("UPDATE runs SET status = 'success', ended_at = ended_at + 86400 WHERE agent = 'agent-2'")
        )
        conn.execute(text("DELETE FROM runs WHERE model = 'model-1'"))
    assert_same(store, RunFilter())
    assert_same(store, RunFilter(NOW - 4 * DAY + 17.0, NOW - DAY))
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM runs"))
        assert conn.execute(text("SELECT count(*) FROM run_rollup")).scalar() == 0


def test_the_migration_rolls_up_the_runs_stored_before_it(store: Store) -> None:
    command.downgrade(migrations._config(store), "0002")  # no public downgrade: tests only
    store.insert_runs(runs(120))
    migrations.upgrade(store)
    assert_same(store, RunFilter())
    store.insert_runs(runs(30, prefix="after"))
    assert_same(store, RunFilter(NOW - 6 * DAY - 100.0, None))
