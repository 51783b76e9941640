"""The rollups answer as the runs do: counts and sums exactly, percentiles within the sketch's
error, over any range and filter, across bucket edges, late runs, reprice, deletes and retention,
whether the day and week cells are made or not, on SQLite and PostgreSQL; migration 0004 builds
them for runs stored before it, resumably, and migration 0007 the week cells."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from agent_exporter import aggregates, migrations, reports, rollups, schema
from agent_exporter import read_models as m
from agent_exporter.aggregates import DAY, HOUR, MONDAY_ORIGIN, WEEK, Bucket
from agent_exporter.pricing import PriceBook
from agent_exporter.queries import RunFilter
from agent_exporter.record import CostSource, Run, Status
from agent_exporter.reprice import reprice
from agent_exporter.sketch import decode, encode
from agent_exporter.store import Store
from agent_exporter.store import rows as store_rows

from .rollup_oracle import as_row, assert_matches, error_groups, grouped, selected
from .support import wait_until

#: a UTC midnight: ranges are drawn around it, its hours and its neighbours
MIDNIGHT = 1_794_960_000.0  # 2026-11-18T00:00:00Z, a Wednesday
ROLLUP_TABLES = (
    "rollup_hour",
    "rollup_hour_coarse",
    "rollup_edge",
    "rollup_day",
    "rollup_week",
    "rollup_dirty_days",
    "rollup_dirty_weeks",
)
AGENTS = ("fixer", "reviewer", "planner")
MODELS = (None, "gpt-5", "claude-sonnet-4-5")
ISSUE_TYPES = (None, "security", "complexity")
ERROR_TYPES = (None, "tests_failed", "timeout", "rate_limited")


def make_run(run_id: str, ended_at: float, **fields: Any) -> Run:
    """A stored run as ingest resolves it (`ended_at` in Unix seconds)."""
    duration = fields.pop("duration_seconds", 30.0)
    return Run(
        run_id=run_id,
        agent=fields.pop("agent", "fixer"),
        status=Status(fields.pop("status", "success")),
        started_at=ended_at - duration,
        ended_at=ended_at,
        duration_seconds=duration,
        received_at=ended_at,
        body_hash=run_id,
        **fields,
    )


def clear(target: Store) -> None:
    with target.engine.begin() as conn:
        for table in (*ROLLUP_TABLES, "runs", "rollup_state"):
            conn.execute(text(f"DELETE FROM {table}"))


def check_summary(
    target: Store, rows: Sequence[dict[str, Any]], flt: RunFilter, by: Sequence[str] = ()
) -> None:
    with target.engine.connect() as conn:
        got = aggregates.summary(conn, flt, by)
    want = grouped(selected(rows, flt), by)
    assert {a.key: a for a in got}.keys() == want.keys(), flt
    for agg in got:
        assert_matches(agg, want[agg.key], where=(flt, by, agg.key))


def check_series(
    target: Store, rows: Sequence[dict[str, Any]], flt: RunFilter, bucket: Bucket, by: str
) -> None:
    with target.engine.connect() as conn:
        got = aggregates.series(conn, flt, bucket, (by,))
    want = grouped(
        [{**r, "_bucket": bucket.index(r["ended_at"])} for r in selected(rows, flt)], ("_bucket", by)
    )
    assert {(a.bucket, a.key[0]) for a in got} == set(want), (flt, bucket)
    for agg in got:
        assert_matches(agg, want[(agg.bucket, agg.key[0])], where=(flt, bucket, agg.bucket, agg.key))


def check_errors(target: Store, rows: Sequence[dict[str, Any]], flt: RunFilter, limit: int = 3) -> None:
    with target.engine.connect() as conn:
        got = aggregates.error_groups(conn, flt, limit=limit)
    assert got == error_groups(rows, flt, limit), flt


# moments at and around the edges of five minutes, hours, days and weeks (the days from Friday
# 2026-11-06 to Friday 2026-11-27 hold two whole weeks, Monday to Sunday)
EDGES = st.sampled_from(
    [-DAY, -HOUR, -1.0, -0.001, 0.0, 0.001, 1.0, 299.5, 300.0, 1800.0, 1801.0, 3299.0, HOUR, DAY, DAY + 7.25]
)
MOMENTS = st.builds(lambda day, edge: MIDNIGHT + day * DAY + edge, st.integers(-12, 9), EDGES)


@st.composite
def fleets(draw: st.DrawFn) -> list[Run]:
    """Up to 60 runs around MIDNIGHT, many on the edges of hours, days and weeks."""
    count = draw(st.integers(1, 60))
    runs = []
    for i in range(count):
        ended = draw(st.one_of(MOMENTS, st.floats(MIDNIGHT - 12 * DAY, MIDNIGHT + 10 * DAY)))
        tokens = draw(st.one_of(st.none(), st.integers(0, 10**7)))
        cost = draw(st.one_of(st.none(), st.floats(0, 50, allow_nan=False)))
        status = draw(st.sampled_from(list(Status))).value
        error_type = draw(st.sampled_from(ERROR_TYPES)) if status != "success" else None
        runs.append(
            make_run(
                f"h-{i}",
                ended,
                agent=draw(st.sampled_from(AGENTS)),
                model=draw(st.sampled_from(MODELS)),
                issue_type=draw(st.sampled_from(ISSUE_TYPES)),
                status=status,
                error_type=error_type,
                error_summary=None if error_type is None else f"{error_type} in run {i}",
                duration_seconds=draw(
                    st.one_of(st.just(0.0), st.floats(0.0005, 7 * DAY), st.sampled_from([1.0, 60.0, 61.0]))
                ),
                input_tokens=tokens,
                output_tokens=draw(st.one_of(st.none(), st.integers(0, 10**6))),
                cache_read_tokens=None if tokens is None else tokens // 3,
                cost_usd=cost,
                cost_source=CostSource.UNKNOWN if cost is None else CostSource.REPORTED,
                llm_calls=draw(st.one_of(st.none(), st.integers(0, 500))),
                tool_calls=draw(st.one_of(st.none(), st.integers(0, 900))),
                confidence=draw(st.one_of(st.none(), st.floats(0, 1))),
                quality_score=draw(st.one_of(st.none(), st.floats(0, 1))),
                project=draw(st.sampled_from([None, "alpha", "beta"])),
            )
        )
    return runs


RANGES = st.tuples(st.one_of(st.none(), MOMENTS), st.one_of(st.none(), MOMENTS)).filter(
    lambda r: r[0] is None or r[1] is None or r[0] < r[1]
)
FILTERS = st.sampled_from(
    [{}, {"agent": ["fixer"]}, {"status": ["success", "failure"]}, {"model": ["gpt-5"]}]
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(runs=fleets(), ranges=st.lists(RANGES, min_size=1, max_size=3), dims=FILTERS, seed=st.integers(0, 99))
def test_rollups_answer_as_the_runs_do(
    store: Store,
    runs: list[Run],
    ranges: list[tuple[float | None, float | None]],
    dims: dict[str, list[str]],
    seed: int,
) -> None:
    clear(store)
    # in an order of their own, in several commits: later commits hold late runs of closed buckets
    shuffled = random.Random(seed).sample(runs, len(runs))
    for first in range(0, len(shuffled), 7):
        store.insert_runs(shuffled[first : first + 7])
        if seed % 3 == 0:  # day and week cells made now and then, and made stale by later commits
            store.compact_rollups(limit=seed % 4 + 1)
    if seed % 3 == 1:  # every day and week cell made; otherwise some or all are read from hours
        while store.compact_rollups():
            pass
    rows = [as_row(r) for r in runs]
    everything = RunFilter.of(None, None, **dims)
    chosen = [r["ended_at"] for r in selected(rows, everything)]
    with store.engine.connect() as conn:  # what a time series without from/to spans
        span = aggregates.time_span(conn, everything)
    assert span == ((min(chosen), max(chosen)) if chosen else None)
    for start, end in ranges:
        flt = RunFilter.of(start, end, **dims)
        check_summary(store, rows, flt)
        check_summary(store, rows, flt, ("model",))
        check_summary(store, rows, flt, ("agent", "model", "issue_type"))
        check_errors(store, rows, flt)
        if start is not None and end is not None:
            check_series(store, rows, flt, Bucket(HOUR), "agent")
            check_series(store, rows, flt, Bucket(DAY), "status")
            check_series(store, rows, flt, Bucket(WEEK, MONDAY_ORIGIN), "project")


def test_the_report_and_the_trends_read_the_same_cells(store: Store) -> None:
    runs = [
        make_run(
            f"r-{i}",
            MIDNIGHT - 2 * DAY + i * 997.5,
            agent=AGENTS[i % 3],
            model=MODELS[i % 3],
            cost_usd=i / 10,
        )
        for i in range(400)
    ]
    store.insert_runs(runs)
    rows = [as_row(r) for r in runs]
    flt = RunFilter(MIDNIGHT - DAY - 1234.5, MIDNIGHT + DAY + 17.0)
    with store.engine.connect() as conn:
        cells = aggregates.report_cells(conn, flt)
        days = aggregates.daily(conn, RunFilter(MIDNIGHT - 3 * DAY, MIDNIGHT + 3 * DAY), MIDNIGHT - 3 * DAY)
    want = grouped(selected(rows, flt), ("agent", "model", "issue_type"))
    assert {c.key for c in cells} == set(want)
    for cell in cells:
        assert_matches(cell, want[cell.key], percentiles=False)
    by_day = grouped([{**r, "_d": int((r["ended_at"] - MIDNIGHT + 3 * DAY) // DAY)} for r in rows], ("_d",))
    assert [d.bucket for d in days] == sorted(k[0] for k in by_day)
    for day in days:
        assert_matches(day, by_day[(day.bucket,)], percentiles=False)


def test_a_repriced_run_moves_its_cost_between_cells(store: Store, tmp_path: Path) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text("models:\n  - model: internal-coder\n    input: 1.0\n    output: 2.0\n")
    runs = [
        make_run(
            f"p-{i}", MIDNIGHT + i * 600.0, model="internal-coder", input_tokens=10**6, output_tokens=10**5
        )
        for i in range(6)
    ] + [make_run("m-0", MIDNIGHT + 100.0, model="mystery", input_tokens=10**6, duration_seconds=99.0)]
    book = PriceBook.from_file(prices)
    for run in runs:
        book.price(run)
    store.insert_runs(runs)
    # the mystery model gets a price (unknown -> estimated: another cell), internal-coder a new one
    prices.write_text(
        "models:\n  - model: internal-coder\n    input: 2.0\n    output: 4.0\n"
        "  - model: mystery\n    input: 3.0\n    output: 0.0\n"
    )
    result = reprice(store, PriceBook.from_file(prices), RunFilter())
    assert (result.runs_changed, result.became_known) == (7, 1)
    with store.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(text("SELECT * FROM runs")).mappings()]
    assert sum(r["cost_usd"] for r in rows) == pytest.approx(6 * 2.4 + 3.0)
    for flt in (RunFilter(), RunFilter(MIDNIGHT + 50.0, MIDNIGHT + 2000.0)):
        check_summary(store, rows, flt)
        check_summary(store, rows, flt, ("model",))
    with store.engine.connect() as conn:
        cells = conn.execute(
            text("SELECT cost_source, sum(runs), sum(cost_runs) FROM rollup_hour GROUP BY 1")
        ).all()
    assert sorted(tuple(c) for c in cells) == [("estimated", 7, 7)]  # nothing left in the unknown cell


def test_deleted_runs_leave_the_rollups_and_their_extremes(store: Store) -> None:
    runs = [make_run(f"d-{i}", MIDNIGHT + i * 60.0, duration_seconds=10.0 + i) for i in range(10)]
    store.insert_runs(runs)
    # the longest and the last run of the cells go: their maximum and last end must be looked up again
    assert store.delete_runs(["d-9", "d-0", "nope"]) == 2
    rows = [as_row(r) for r in runs[1:9]]
    check_summary(store, rows, RunFilter())
    check_summary(store, rows, RunFilter(MIDNIGHT - HOUR, MIDNIGHT + 2 * HOUR))
    assert store.delete_runs([r.run_id for r in runs]) == 8
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM rollup_hour")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM rollup_hour_coarse")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM rollup_edge")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM rollup_day")).scalar() == 0


def test_retention_deletes_runs_and_keeps_their_history(store: Store) -> None:
    runs = [make_run(f"k-{i}", MIDNIGHT - 5 * DAY + i * 1234.5, agent=AGENTS[i % 3]) for i in range(300)]
    store.insert_runs(runs)
    rows = [as_row(r) for r in runs]
    cutoff = MIDNIGHT - 2 * DAY
    deleted = []
    while n := store.delete_ended_before(cutoff, batch=50):
        deleted.append(n)
    assert sum(deleted) == sum(1 for r in rows if r["ended_at"] < cutoff)
    assert max(deleted) == 50  # small batches, each its own transaction
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT min(ended_at) FROM runs")).scalar_one() >= cutoff
        assert aggregates.raw_horizon(conn) == cutoff
        # the edge cells before the horizon went with the runs; those after it are all there
        edge_buckets = conn.execute(text("SELECT bucket FROM rollup_edge")).scalars().all()
    kept = [r for r in runs if r.ended_at >= cutoff]
    assert sorted(edge_buckets) == sorted(key[0] for key in rollups.edges(kept, runs=True))
    # every figure over whole hours is still the runs' (read from the rollups: the runs are gone)
    check_summary(store, rows, RunFilter())
    check_summary(store, rows, RunFilter(MIDNIGHT - 5 * DAY, MIDNIGHT - DAY + 0.5), ("agent",))
    check_series(store, rows, RunFilter(MIDNIGHT - 5 * DAY, MIDNIGHT), Bucket(DAY), "agent")
    # before the horizon, a range that cuts an hour is read as that whole hour
    start = MIDNIGHT - 4 * DAY + 0.4 * HOUR
    with store.engine.connect() as conn:
        got = aggregates.summary(conn, RunFilter(start, MIDNIGHT))[0]
    assert got.runs == len(selected(rows, RunFilter(MIDNIGHT - 4 * DAY, MIDNIGHT)))


def test_the_report_counts_runs_that_retention_deleted(store: Store) -> None:
    # 40 runs over 2 days ago, half of them failed; retention deletes the older day's: the report
    # still counts all of them (from the rollups), per agent and in its headline
    runs = [
        make_run(
            f"q-{i}",
            MIDNIGHT - 2 * DAY + i * 3600.0,
            agent=AGENTS[i % 2],
            status="failure" if i % 4 else "success",
        )
        for i in range(40)
    ]
    store.insert_runs(runs)
    while store.delete_ended_before(MIDNIGHT - DAY, batch=100):
        pass
    assert count_runs(store) == 16
    with store.reading() as conn:
        cells = aggregates.report_cells(conn, RunFilter())
    report = reports.build_report(
        cells, min_attempts=5, confidence=0.95, generated_at=datetime.now(UTC), filters=m.Filters()
    )
    assert (report.summary.total_runs, report.summary.total_successful, report.summary.total_failed) == (
        40,
        10,
        30,
    )
    assert [(a.agent, a.runs, a.successes) for a in report.by_agent] == [
        ("fixer", 20, 10),
        ("reviewer", 20, 0),
    ]


def test_the_migration_builds_the_rollups_of_stored_runs_and_resumes(store: Store) -> None:
    runs = [make_run(f"b-{i}", MIDNIGHT - 4 * DAY + i * 3333.3, agent=AGENTS[i % 3]) for i in range(120)]
    command.downgrade(migrations._config(store), "0003")  # no public downgrade: tests only
    with store.engine.begin() as conn:  # runs stored by a version before the rollups
        every = [c.name for c in schema.runs.columns]
        columns = every[: every.index("session_id")]  # the columns of migration 0006 come later
        conn.execute(
            text(f"INSERT INTO runs ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})"),
            [dict(zip(columns, store_rows.run_values(r)[: len(columns)], strict=True)) for r in runs],
        )
    said: list[str] = []

    def interrupted(message: str) -> None:
        said.append(message)
        if len(said) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        migrations.upgrade(store, progress=interrupted)
    assert migrations.rollups_pending(store)
    assert [m.rsplit(", ", 1)[0] for m in said] == [
        "rollups: 1 of 5 days built (26 runs read",
        "rollups: 2 of 5 days built (52 runs read",
    ]
    said.clear()
    migrations.upgrade(store, progress=said.append)  # goes on from the third day
    assert [m.split(" (")[0] for m in said] == [
        "rollups: 1 of 3 days built",
        "rollups: 2 of 3 days built",
        "rollups: 3 of 3 days built",
        "rollups: 2 of 2 weeks made",  # the runs' five days are in two weeks
    ]
    assert not migrations.rollups_pending(store)
    rows = [as_row(r) for r in runs]
    check_summary(store, rows, RunFilter())
    check_summary(store, rows, RunFilter(MIDNIGHT - 3 * DAY + 10.0, MIDNIGHT - 7.5), ("agent",))
    later = [make_run("after", MIDNIGHT - 3 * DAY + 1.0)]
    store.insert_runs(later)
    check_summary(store, [*rows, as_row(later[0])], RunFilter())


def test_the_retention_thread_deletes_old_runs_while_ingest_goes_on(store: Store) -> None:
    today = math.floor(time.time() / DAY) * DAY
    old = [make_run(f"old-{i}", today - 3 * DAY - i * 60.0) for i in range(1200)]
    kept = [make_run(f"new-{i}", today - DAY - i * 60.0) for i in range(50)]
    store.insert_runs(old + kept)
    store.start_maintenance(retention_days=2)
    fresh = [make_run(f"fresh-{i}", today - 2 * DAY + i) for i in range(100)]
    for i in range(0, 100, 10):  # ingest goes on while the thread deletes
        store.insert_runs(fresh[i : i + 10])
    wait_until(lambda: count_runs(store) == 150, 30, "retention to delete the old runs")
    rows = [as_row(r) for r in old + kept + fresh]
    check_summary(store, rows, RunFilter(), ("agent",))
    with store.engine.connect() as conn:
        assert aggregates.raw_horizon(conn) == today - 2 * DAY


def count_runs(target: Store) -> int:
    with target.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM runs")).scalar_one())


def test_migrations_0007_and_0008_make_weeks_and_error_types_and_keep_the_history(store: Store) -> None:
    # a store of migration 0006: runs of the last three days, and the cells of the runs of an older
    # day that retention deleted (the cells are all that is left of them)
    runs = [
        make_run(
            f"e-{i}",
            MIDNIGHT - 3 * DAY + i * 3000.0,
            agent=AGENTS[i % 3],
            status="failure" if i % 2 else "success",
            error_type=("timeout" if i % 4 == 1 else "tests_failed") if i % 2 else None,
            error_summary=f"run {i}" if i % 2 else None,
        )
        for i in range(80)
    ]
    gone = [make_run(f"gone-{i}", MIDNIGHT - 10 * DAY + i * 600.0, status="failure") for i in range(5)]
    store.insert_runs(runs)
    command.downgrade(migrations._config(store), "0006")  # no public downgrade: tests only
    with store.engine.begin() as conn:
        for grain, table in ((HOUR, "rollup_hour"), (DAY, "rollup_day")):
            names = [
                "bucket",
                *schema.ROLLUP_DIMENSIONS[:-1],
                *(f.name for f in schema.ROLLUP_FACTS),
                "sketch",
            ]
            insert = text(f"INSERT INTO {table} ({', '.join(names)}) VALUES (:{', :'.join(names)})")
            for key, cell in rollups.accumulate(gone, grain, runs=True).items():
                values = [*key[:-1], *cell[:-1], encode(cell[-1])]  # the key without error_type
                conn.execute(insert, dict(zip(names, values, strict=True)))
        conn.execute(
            text("INSERT INTO rollup_state (name, value) VALUES ('raw_horizon', :h)"),
            {"h": MIDNIGHT - 9 * DAY},
        )
    said: list[str] = []
    migrations.upgrade(store, progress=said.append)
    assert [m.split(" (")[0] for m in said] == [
        # 0008: the days of the stored runs (Sunday to Tuesday), rebuilt with their error types
        "rollups: 1 of 3 days built",
        "rollups: 2 of 3 days built",
        "rollups: 3 of 3 days built",
        # 0007 marked the old day's week, the rebuild the two weeks of the stored runs
        "rollups: 3 of 3 weeks made",
    ]
    rows = [as_row(r) for r in runs]
    check_summary(store, rows, RunFilter(MIDNIGHT - 5 * DAY, None), ("agent",))
    check_errors(store, rows, RunFilter(MIDNIGHT - 5 * DAY, None))
    with store.engine.connect() as conn:
        everything = aggregates.summary(conn, RunFilter(), ("status",))
        old = aggregates.error_groups(conn, RunFilter(MIDNIGHT - 11 * DAY, MIDNIGHT - 9 * DAY), limit=5)
    assert {a.key[0]: a.runs for a in everything} == {"success": 40, "failure": 45}
    # the deleted runs' failures are still counted, their error type unknown, with no example left
    assert [(g.error_type, g.runs, g.latest_run_id) for g in old] == [(None, 5, None)]


def test_a_partial_hour_is_read_from_its_edge_cells_and_under_five_minutes_from_the_runs(
    store: Store,
) -> None:
    hour = MIDNIGHT - 5 * HOUR
    runs = [
        make_run(f"p-{i}", hour + 5.0 + i * 10.0, issue_type=ISSUE_TYPES[i % 3], project="alpha")
        for i in range(360)
    ]
    store.insert_runs(runs)
    # the runs of [hour + 10 min, hour + 50 min) leave the runs table behind the rollups' back: a read
    # that still counts them took them from the edge cells
    with store.engine.begin() as conn:
        conn.execute(
            text("DELETE FROM runs WHERE ended_at >= :a AND ended_at < :b"),
            {"a": hour + 600, "b": hour + 3000},
        )
    start, end = hour + 301.0, hour + 3300.0  # edge cells [5 min, 55 min), runs [301 s, 5 min)
    flt = RunFilter(start, end)
    every = [r for r in runs if start <= r.ended_at < end]
    with store.engine.connect() as conn:
        by_issue = aggregates.summary(conn, flt, ("issue_type",))
        by_project = aggregates.summary(conn, flt, ("project",))  # not an edge dimension: the runs
    assert {a.key[0]: a.runs for a in by_issue} == {
        t: sum(1 for r in every if r.issue_type == t) for t in ISSUE_TYPES
    }
    assert sum(a.runs for a in by_issue) == 300  # those that ended at 305 s, 315 s, ..., 3,295 s
    left = [r for r in every if not hour + 600 <= r.ended_at < hour + 3000]
    assert [(a.key, a.runs) for a in by_project] == [(("alpha",), len(left))]


def test_migration_0010_builds_the_edge_cells_of_stored_runs(store: Store) -> None:
    runs = [
        make_run(
            f"m-{i}",
            MIDNIGHT - DAY - HOUR + i * 61.0,
            agent=AGENTS[i // 4 % 3],
            issue_type=ISSUE_TYPES[i // 8 % 2],
        )
        for i in range(150)
    ]
    store.insert_runs(runs)
    query = text("SELECT * FROM rollup_edge ORDER BY bucket, agent, model, status, issue_type, error_type")

    def cells() -> list[tuple[Any, ...]]:
        with store.engine.connect() as conn:
            return [(*row[:-1], sorted(decode(bytes(row[-1])).items())) for row in conn.execute(query)]

    written = cells()
    assert len(written) == len(rollups.edges(runs, runs=True)) == 60  # 150 runs in 30 five minutes
    command.downgrade(migrations._config(store), "0009")  # no public downgrade: tests only
    said: list[str] = []
    migrations.upgrade(store, progress=said.append)
    assert [m.split(" (")[0] for m in said] == [
        "rollups: 1 of 2 days built",  # the runs' two days, their edge cells built from the runs
        "rollups: 2 of 2 days built",
        "rollups: 1 of 1 weeks made",
    ]
    assert cells() == written
    rows = [as_row(r) for r in runs]
    check_summary(store, rows, RunFilter(MIDNIGHT - DAY - 1799.0, MIDNIGHT + 1000.0), ("issue_type",))


def test_compaction_merges_the_edge_sketches_that_many_commits_appended_to(store: Store) -> None:
    # five minutes that runs arrive in, a commit at a time: each commit appends to the edge cell's sketch
    start = MIDNIGHT + 600.0
    busy = [make_run(f"busy-{i}", start + i * 0.5, duration_seconds=10.0) for i in range(300)]
    # a quieter agent: its sketch stays as appended, under the bound
    calm = [
        make_run(f"calm-{i}", start + i * 0.5, agent="planner", duration_seconds=10.0) for i in range(100)
    ]
    for run in (*busy, *calm):
        store.insert_runs([run])
    query = text("SELECT agent, length(sketch) FROM rollup_edge ORDER BY agent")
    with store.engine.connect() as conn:
        assert [tuple(r) for r in conn.execute(query)] == [("fixer", 300 * 16), ("planner", 100 * 16)]
    while store.compact_rollups():
        pass
    with store.engine.connect() as conn:
        assert [tuple(r) for r in conn.execute(query)] == [("fixer", 16), ("planner", 100 * 16)]
    rows = [as_row(r) for r in (*busy, *calm)]
    check_summary(store, rows, RunFilter(start - 1.0, start + 1000.0), ("agent",))
