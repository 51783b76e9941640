"""The store, on SQLite and on the real PostgreSQL: each run stored once, never overwritten."""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError

from agent_exporter import migrations, schema
from agent_exporter.outcome import Outcome
from agent_exporter.record import Run
from agent_exporter.store import Store, StoreSettings, classify, normalize_url

from .support import priced, record

ACCEPTED, DUPLICATE, CONFLICT = Outcome.ACCEPTED, Outcome.DUPLICATE, Outcome.CONFLICT


def run(run_id: str, **fields: Any) -> Run:
    return priced(record(run_id, **fields))


def stored(store: Store, column: str = "run_id") -> list[Any]:
    with store.engine.connect() as conn:
        return list(conn.execute(select(schema.runs.c[column]).order_by(schema.runs.c.run_id)).scalars())


def test_migrations_create_exactly_the_declared_schema(store: Store) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), schema.metadata)
    assert diff == []
    assert migrations.current_revision(store) == migrations.head_revision()


def test_new_runs_are_accepted_and_stored_with_their_breakdowns(store: Store) -> None:
    full = run(
        "r-1",
        input_tokens=1000,
        output_tokens=100,
        usage=[{"model": "gpt-5", "input_tokens": 600, "calls": 2}, {"model": "o3", "input_tokens": 400}],
        tools=[{"name": "bash", "calls": 3, "errors": 1, "duration_seconds": 1.5}],
        phases=[
            {"name": "plan", "duration_seconds": 2},
            {"name": "test", "duration_seconds": 9, "status": "failure"},
        ],
        labels={"tier": "gold"},
        error_type="tests_failed",
        error_summary="2 tests failed",
    )
    assert store.insert_runs([full, run("r-2")]) == [ACCEPTED, ACCEPTED]
    assert stored(store) == ["r-1", "r-2"]
    with store.engine.connect() as conn:
        row = conn.execute(select(schema.runs).where(schema.runs.c.run_id == "r-1")).one()
        usage = conn.execute(
            select(schema.run_usage.c.model, schema.run_usage.c.calls).order_by("position")
        ).all()
        tools = conn.execute(select(schema.run_tools.c.name, schema.run_tools.c.errors)).all()
        phases = conn.execute(
            select(schema.run_phases.c.name, schema.run_phases.c.status).order_by("position")
        ).all()
    assert (row.input_tokens, row.cost_source, row.labels, row.error_summary) == (
        1000,
        "estimated",
        {"tier": "gold"},
        "2 tests failed",
    )
    assert row.cost_usd == pytest.approx(600 * 1.25e-6 + 400 * 2e-6)  # the breakdown's lines, priced
    assert [tuple(u) for u in usage] == [("gpt-5", 2), ("o3", None)]
    assert [tuple(t) for t in tools] == [("bash", 1)]
    assert [tuple(p) for p in phases] == [("plan", None), ("test", "failure")]


def test_the_same_run_again_is_a_duplicate(store: Store) -> None:
    assert store.insert_runs([run("r-1")]) == [ACCEPTED]
    assert store.insert_runs([run("r-1")]) == [DUPLICATE]
    assert stored(store) == ["r-1"]


def test_a_different_body_under_a_stored_run_id_is_a_conflict_and_not_stored(store: Store) -> None:
    store.insert_runs([run("r-1", status="success")])
    assert store.insert_runs([run("r-1", status="failure")]) == [CONFLICT]
    assert stored(store, "status") == ["success"]


def test_repeats_within_one_batch_are_judged_against_the_first(store: Store) -> None:
    batch = [run("a"), run("a"), run("a", status="error"), run("b")]
    assert store.insert_runs(batch) == [ACCEPTED, DUPLICATE, CONFLICT, ACCEPTED]
    assert stored(store) == ["a", "b"]


def test_a_batch_mixing_new_and_stored_runs_stores_only_the_new(store: Store) -> None:
    store.insert_runs([run("a"), run("b")])
    assert store.insert_runs([run("b"), run("c"), run("a", retries=1)]) == [DUPLICATE, ACCEPTED, CONFLICT]
    assert stored(store) == ["a", "b", "c"]


def test_concurrent_writers_store_each_run_once(store: Store, store_url: str) -> None:
    # Two stores on one database stand for two replicas receiving the same retried records.
    batch = [run(f"r-{i}") for i in range(200)]
    results: list[list[Outcome]] = []
    barrier = threading.Barrier(2)

    def write(target: Store) -> None:
        barrier.wait()
        results.append(target.insert_runs(batch))

    with Store(StoreSettings(store_url)) as other:
        threads = [threading.Thread(target=write, args=(s,)) for s in (store, other)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert len(results) == 2
    accepted = [sum(o is ACCEPTED for o in outcomes) for outcomes in results]
    duplicates = [sum(o is DUPLICATE for o in outcomes) for outcomes in results]
    assert sum(accepted) == 200
    assert sum(duplicates) == 200
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(schema.runs)).scalar_one() == 200


def test_an_empty_database_is_detected(store_url: str) -> None:
    with Store(StoreSettings(store_url)) as fresh:
        assert fresh.is_empty()
        migrations.upgrade(fresh)
        assert not fresh.is_empty()


def test_plain_postgres_urls_use_psycopg_3() -> None:
    assert normalize_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"


def test_an_unsupported_database_is_refused() -> None:
    with pytest.raises(ValueError, match="only sqlite and postgresql are supported"):
        Store(StoreSettings("mysql://root@127.0.0.1/test"))


def test_sqlite_runs_in_wal_mode_with_full_sync(tmp_path: Any) -> None:
    with Store(StoreSettings(f"sqlite:///{tmp_path / 'x.db'}")) as s, s.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_a_store_used_as_a_context_manager_closes_on_leaving_the_block(tmp_path: Any) -> None:
    before = set(threading.enumerate())
    with Store(StoreSettings(f"sqlite:///{tmp_path / 'x.db'}")) as s:
        migrations.upgrade(s)
        s.start_checkpoints(interval=0.01)
        s.start_maintenance()
        started = set(threading.enumerate()) - before
        assert sorted(t.name for t in started) == ["agent-exporter-checkpoints", "agent-exporter-maintenance"]
    assert [t.name for t in started if t.is_alive()] == []


@pytest.mark.parametrize(
    ("driver_message", "code", "retryable", "message"),
    [
        (
            "attempt to write a readonly database",
            "store_read_only",
            False,
            "the database is read-only (attempt to write a readonly database); "
            "check the file's permissions and the mount",
        ),
        (
            "cannot execute INSERT in a read-only transaction",
            "store_read_only",
            False,
            "the database is read-only (cannot execute INSERT in a read-only transaction); "
            "point database_url at a writable primary",
        ),
        (
            "database or disk is full",
            "store_full",
            True,
            "the disk is full (database or disk is full); free space or move the database",
        ),
        ("no such table: runs", "store_unavailable", False, "database error: no such table: runs"),
        ("database is locked\nmore", "store_unavailable", True, "database error: database is locked"),
    ],
)
def test_one_classifier_names_each_database_error(
    driver_message: str, code: str, retryable: bool, message: str
) -> None:
    error = classify(sqlite3.OperationalError(driver_message))
    assert (error.code, error.retryable, str(error)) == (code, retryable, message)
    assert error.detail == driver_message.splitlines()[0]
    wrapped = classify(OperationalError("INSERT ...", {}, sqlite3.OperationalError(driver_message)))
    assert (wrapped.code, wrapped.retryable, str(wrapped)) == (code, retryable, message)


def test_data_the_database_refuses_is_not_worth_retrying() -> None:
    refused = classify(sqlite3.IntegrityError("CHECK constraint failed: runs"))
    assert (refused.code, refused.retryable, str(refused)) == (
        "store_unavailable",
        False,
        "database error: CHECK constraint failed: runs",
    )
    wrapped = classify(IntegrityError("INSERT ...", {}, sqlite3.IntegrityError("NOT NULL constraint failed")))
    assert (wrapped.retryable, str(wrapped)) == (False, "database error: NOT NULL constraint failed")
    assert classify(sqlite3.OperationalError("database is locked")).retryable is True
