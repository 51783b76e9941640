"""The writer thread's group commit against a real SQLite store: what one request of a group does to
the others."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from prometheus_client import CollectorRegistry

from agent_exporter import migrations
from agent_exporter.config import load_settings
from agent_exporter.ingest import Writer
from agent_exporter.metrics import Metrics
from agent_exporter.outcome import Outcome
from agent_exporter.store import Store, StoreError, StoreSettings

from .support import priced, record


async def grouped(writer: Writer, database: Path) -> list[list[Outcome] | BaseException]:
    """Store `first` alone, then `good` and `poison` in one group: while the database is locked by
    another connection, the writer waits on `first`, and the two others queue behind it."""
    blocker = sqlite3.connect(database, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        first = asyncio.ensure_future(writer.store([priced(record("first"))]))
        await asyncio.sleep(0.3)  # the writer has taken `first` and waits for the lock
        good = asyncio.ensure_future(writer.store([priced(record("good"))]))
        poison = asyncio.ensure_future(writer.store([priced(record("poison", agent="poison"))]))
        await asyncio.sleep(0.1)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    return list(await asyncio.gather(first, good, poison, return_exceptions=True))


def test_a_request_the_database_refuses_fails_alone_not_the_requests_committed_with_it(
    tmp_path: Path,
) -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry, load_settings().metrics.label_config(), version="test")
    database = tmp_path / "writer.db"
    with Store(StoreSettings(f"sqlite:///{database}")) as store:
        migrations.upgrade(store)
        with store.engine.begin() as conn:  # the database itself refuses one agent's runs
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse_poison BEFORE INSERT ON runs WHEN NEW.agent = 'poison' "
                "BEGIN SELECT RAISE(ABORT, 'poison refused'); END"
            )
        writer = Writer(store, metrics)
        try:
            first, good, poison = asyncio.run(grouped(writer, database))
        finally:
            writer.close()
        with store.reading() as conn:
            stored = sorted(r[0] for r in conn.exec_driver_sql("SELECT run_id FROM runs"))
    assert (first, good) == ([Outcome.ACCEPTED], [Outcome.ACCEPTED])
    assert isinstance(poison, StoreError)
    assert (str(poison), poison.retryable) == ("database error: poison refused", False)
    assert stored == ["first", "good"]
    # the group of good and poison failed once, then poison alone: two failed commits, so they were grouped
    assert registry.get_sample_value("agent_exporter_store_errors_total", {"operation": "write"}) == 2
    counted = [
        s.value for f in registry.collect() for s in f.samples if s.name == "agent_runs_total" and s.value
    ]
    assert counted == [2.0]  # first and good, each counted once
