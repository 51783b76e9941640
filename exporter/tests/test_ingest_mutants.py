"""Ingest details the mutation run (make mutate, docs/quality.md) found untested: errors renamed into
another vocabulary (the executions format), and answers to a request whose event loop is gone."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from agent_exporter import migrations
from agent_exporter.config import load_settings
from agent_exporter.ingest import (
    INLINE_COUNT,
    INLINE_RECORDS,
    Ingest,
    IngestResult,
    RecordResult,
    Writer,
    _Job,
    _LoopWaiter,
)
from agent_exporter.metrics import Metrics
from agent_exporter.outcome import Outcome
from agent_exporter.pricing import PriceBook
from agent_exporter.record import FieldError, Run
from agent_exporter.store import Store, StoreError, StoreSettings

from .support import NOW, priced, record


def test_errors_are_renamed_field_and_leading_field_of_the_message() -> None:
    result = IngestResult(
        [
            RecordResult(
                0,
                Outcome.REJECTED,
                "r",
                [
                    FieldError("duration_seconds", "minimum", "duration_seconds: must be at least 0"),
                    FieldError("agent", "required", "a record needs agent"),
                ],
            ),
            RecordResult(1, Outcome.ACCEPTED, "s"),
        ]
    )
    result.rename_fields(lambda name: f"execution.{name}")
    assert result.results[0].errors == [
        FieldError("execution.duration_seconds", "minimum", "execution.duration_seconds: must be at least 0"),
        FieldError("execution.agent", "required", "a record needs agent"),
    ]
    assert result.results[1].errors == []


def test_a_waiter_whose_loop_closed_is_settled_without_an_error() -> None:
    loop = asyncio.new_event_loop()
    waiter = _LoopWaiter(loop)
    loop.close()
    waiter.set_result([Outcome.ACCEPTED])
    waiter.set_exception(RuntimeError("the store failed"))
    assert not waiter.future.done()


async def three_in_a_group(writer: Writer, database: Path) -> list[list[Outcome]]:
    """While another connection holds the database, the writer waits on a first request and the
    next three queue behind it, to be committed as one group."""
    blocker = sqlite3.connect(database, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        first = asyncio.ensure_future(writer.store([priced(record("first"))]))
        await asyncio.sleep(0.3)
        twice = priced(record("b"))
        jobs = [
            asyncio.ensure_future(writer.store(runs))
            for runs in ([priced(record("a"))], [twice, priced(record("b"))], [priced(record("c"))])
        ]
        await asyncio.sleep(0.1)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    return [await first, *await asyncio.gather(*jobs)]


def test_each_request_of_a_group_gets_the_outcomes_of_its_own_runs(tmp_path: Path) -> None:
    metrics = Metrics(CollectorRegistry(), load_settings().metrics.label_config(), version="test")
    database = tmp_path / "writer.db"
    with Store(StoreSettings(f"sqlite:///{database}")) as store:
        migrations.upgrade(store)
        writer = Writer(store, metrics)
        try:
            outcomes = asyncio.run(three_in_a_group(writer, database))
        finally:
            writer.close()
    accepted, duplicate = Outcome.ACCEPTED, Outcome.DUPLICATE
    assert outcomes == [[accepted], [accepted], [accepted, duplicate], [accepted]]


class CountingFails(Metrics):
    """Metrics whose counting of a run breaks, as a bug in it would."""

    def observe_run(self, run: Run) -> None:
        raise RuntimeError("a bug in counting")


def test_a_run_whose_counting_fails_is_still_stored_answered_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = CountingFails(CollectorRegistry(), load_settings().metrics.label_config(), version="test")
    with Store(StoreSettings(f"sqlite:///{tmp_path / 'writer.db'}")) as store:
        migrations.upgrade(store)
        writer = Writer(store, metrics)
        try:
            with caplog.at_level(logging.ERROR, logger="agent_exporter.ingest"):
                outcomes = asyncio.run(writer.store([priced(record("a")), priced(record("b"))]))
        finally:
            writer.close()
    assert outcomes == [Outcome.ACCEPTED, Outcome.ACCEPTED]
    assert [r.getMessage() for r in caplog.records] == ["counting 2 stored runs failed"]


def handled(tmp_path: Path, *bodies: list[Any]) -> tuple[list[IngestResult], CollectorRegistry]:
    """Each body handled in turn by an Ingest on a SQLite store (a batch, not a backfill: the default)."""
    registry = CollectorRegistry()
    metrics = Metrics(registry, load_settings().metrics.label_config(), version="test")
    with Store(StoreSettings(f"sqlite:///{tmp_path / 'ingest.db'}")) as store:
        migrations.upgrade(store)
        writer = Writer(store, metrics)
        ingest = Ingest(writer, metrics, PriceBook(), max_future_skew=300)

        async def handle_all() -> list[IngestResult]:
            return [await ingest.handle(body, received_at=NOW, batch=True) for body in bodies]

        try:
            return asyncio.run(handle_all()), registry
        finally:
            writer.close()


def test_a_batch_judged_off_the_event_loop_names_its_records_by_index_and_counts_them(
    tmp_path: Path,
) -> None:
    bad = record("bad") | {"run_id": 42}  # not a string: the result names no run
    body = [record(f"r{i}") for i in range(INLINE_RECORDS)] + [bad]
    [result], registry = handled(tmp_path, body)
    assert result.count(Outcome.ACCEPTED) == INLINE_RECORDS
    assert result.as_dict()["results"][-1] == {
        "index": INLINE_RECORDS,
        "outcome": "rejected",
        "errors": [
            {
                "field": f"runs[{INLINE_RECORDS}].run_id",
                "rule": "string",
                "message": f"runs[{INLINE_RECORDS}].run_id: input should be a valid string (got 42)",
            }
        ],
    }
    runs = {"agent": "fixer", "model": "claude-sonnet-4-5", "issue_type": "complexity", "status": "success"}
    assert registry.get_sample_value("agent_runs_total", runs) == INLINE_RECORDS


def test_a_conflict_is_counted_in_the_answer(tmp_path: Path) -> None:
    [_, again], _ = handled(tmp_path, [record("r")], [record("r", duration_seconds=31.0)])
    answer = again.as_dict()
    assert {k: answer[k] for k in ("accepted", "duplicates", "conflicts", "rejected")} == {
        "accepted": 0,
        "duplicates": 0,
        "conflicts": 1,
        "rejected": 0,
    }


@contextlib.contextmanager
def writer_on(database: Path) -> Iterator[tuple[Writer, CollectorRegistry]]:
    registry = CollectorRegistry()
    metrics = Metrics(registry, load_settings().metrics.label_config(), version="test")
    with Store(StoreSettings(f"sqlite:///{database}")) as store:
        migrations.upgrade(store)
        writer = Writer(store, metrics)
        try:
            yield writer, registry
        finally:
            writer.close()


def write_errors(registry: CollectorRegistry) -> float | None:
    return registry.get_sample_value("agent_exporter_store_errors_total", {"operation": "write"})


def drop_phases(database: Path) -> None:
    """Break the store as a failed migration would: a run with phases fails, one without is stored."""
    with contextlib.closing(sqlite3.connect(database)) as conn:
        conn.execute("DROP TABLE run_phases")


def with_phases(run_id: str) -> Run:
    return priced(record(run_id, phases=[{"name": "plan", "duration_seconds": 1}]))


def test_a_store_error_fails_the_request_is_logged_counted_and_kept_for_readyz(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with writer_on(tmp_path / "w.db") as (writer, registry):
        drop_phases(tmp_path / "w.db")
        logged = caplog.at_level(logging.ERROR, logger="agent_exporter.ingest")
        with logged, pytest.raises(StoreError) as failed:
            asyncio.run(writer.store([with_phases("a")]))
        assert (str(failed.value), failed.value.retryable) == (
            "database error: no such table: run_phases",
            False,
        )
        assert writer.last_error is failed.value
        assert [r.getMessage() for r in caplog.records] == [
            "storing 1 runs failed: database error: no such table: run_phases"
        ]
        assert write_errors(registry) == 1


def test_a_bug_in_storing_fails_the_request_as_retryable_and_the_writer_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = priced(record("a"))
    broken.run_id = ["a"]  # type: ignore[assignment]  # unhashable: the store fails on it, not the database
    with writer_on(tmp_path / "w.db") as (writer, registry):
        logged = caplog.at_level(logging.ERROR, logger="agent_exporter.ingest")
        with logged, pytest.raises(StoreError) as failed:
            asyncio.run(writer.store([broken]))
        assert (str(failed.value), failed.value.retryable) == (
            "internal error: TypeError(\"unhashable type: 'list'\")",
            True,
        )
        assert [r.getMessage() for r in caplog.records] == ["storing 1 runs failed unexpectedly"]
        assert write_errors(registry) == 1
        assert asyncio.run(writer.store([priced(record("b"))])) == [Outcome.ACCEPTED]


async def a_group_of_two(writer: Writer, database: Path) -> list[list[Outcome] | BaseException]:
    """A first request waits on the database; the next two are committed as one group."""
    blocker = sqlite3.connect(database, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        first = asyncio.ensure_future(writer.store([priced(record("first"))]))
        await asyncio.sleep(0.3)
        jobs = [
            asyncio.ensure_future(writer.store(runs)) for runs in ([with_phases("a")], [priced(record("b"))])
        ]
        await asyncio.sleep(0.1)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    return [await first, *await asyncio.gather(*jobs, return_exceptions=True)]


def test_a_group_the_database_refuses_is_stored_request_by_request(tmp_path: Path) -> None:
    database = tmp_path / "w.db"
    with writer_on(database) as (writer, registry):
        drop_phases(database)
        first, refused, stored = asyncio.run(a_group_of_two(writer, database))
        assert (first, stored) == ([Outcome.ACCEPTED], [Outcome.ACCEPTED])
        assert isinstance(refused, StoreError)
        assert str(refused) == "database error: no such table: run_phases"
        assert write_errors(registry) == 2  # the group, then the request alone


def test_a_request_after_close_is_refused_as_the_shutdown(tmp_path: Path) -> None:
    with writer_on(tmp_path / "w.db") as (writer, _):
        writer.close()
        with pytest.raises(StoreError, match=r"^the exporter is shutting down$"):
            asyncio.run(writer.store([priced(record("a"))]))


def test_a_commit_is_timed_and_its_runs_counted_once_per_transaction(tmp_path: Path) -> None:
    with writer_on(tmp_path / "w.db") as (writer, registry):
        drop_phases(tmp_path / "w.db")
        with pytest.raises(StoreError):
            asyncio.run(writer.store([with_phases("a")]))
        assert (
            asyncio.run(writer.store([priced(record(r)) for r in ("b", "c", "d")])) == [Outcome.ACCEPTED] * 3
        )
        assert writer.last_error is None  # the next commit clears what /readyz reports

    def sample(name: str) -> float | None:
        return registry.get_sample_value(name, {})

    assert (
        sample("agent_exporter_store_write_runs_count"),
        sample("agent_exporter_store_write_runs_sum"),
    ) == (1, 3)
    assert sample("agent_exporter_store_write_duration_seconds_count") == 1
    assert 0 < (sample("agent_exporter_store_write_duration_seconds_sum") or 0) < 5


class HeldCounting(Metrics):
    """Metrics that note the order runs are counted in, and hold the counting of the runs `held`
    until they are released."""

    def __init__(self, *held: str) -> None:
        super().__init__(CollectorRegistry(), version="test", process_collectors=False)
        self.order: list[str] = []
        self.holding = {run_id: threading.Event() for run_id in held}
        self.release = {run_id: threading.Event() for run_id in held}

    def observe_run(self, run: Run) -> None:
        if run.run_id in self.holding:
            self.holding[run.run_id].set()
            self.release[run.run_id].wait(5)
        super().observe_run(run)
        self.order.append(run.run_id)


def test_groups_are_counted_in_the_order_they_committed(tmp_path: Path) -> None:
    """A large group is counted by a thread of its own; small groups committed while it counts wait
    for it, however many groups that thread has been handed and has finished since."""
    large = [priced(record(f"large-{i}")) for i in range(INLINE_COUNT + 1)]
    metrics = HeldCounting("large-0", "b")
    with Store(StoreSettings(f"sqlite:///{tmp_path / 'w.db'}")) as store:
        migrations.upgrade(store)
        writer = Writer(store, metrics)

        async def held(run_id: str) -> None:
            assert await asyncio.to_thread(metrics.holding[run_id].wait, 5)

        async def three() -> list[list[Outcome]]:
            a = asyncio.ensure_future(writer.store(large))
            await held("large-0")
            b = asyncio.ensure_future(writer.store([priced(record("b"))]))
            await asyncio.sleep(0.2)  # b committed meanwhile, and handed on behind the large group
            assert not metrics.holding["b"].is_set(), "b counted while the large group was"
            metrics.release["large-0"].set()
            await held("b")
            c = asyncio.ensure_future(writer.store([priced(record("c"))]))
            await asyncio.sleep(0.2)  # c committed meanwhile, and handed on behind b
            metrics.release["b"].set()
            return [await a, await b, await c]

        try:
            outcomes = asyncio.run(three())
        finally:
            for event in metrics.release.values():
                event.set()
            writer.close()
    assert outcomes == [[Outcome.ACCEPTED] * len(large), [Outcome.ACCEPTED], [Outcome.ACCEPTED]]
    assert metrics.order == [run.run_id for run in large] + ["b", "c"]


def test_the_writers_threads_are_named_daemons(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    with writer_on(tmp_path / "w.db"):
        started = {t.name: t.daemon for t in set(threading.enumerate()) - before}
    assert started == {"agent-exporter-writer": True, "agent-exporter-counter": True}


@pytest.mark.parametrize("held", ["small", "large-0"], ids=["counting-on-the-writer", "on-its-own-thread"])
def test_close_waits_its_timeout_and_no_longer_for_a_writer_stuck_counting(tmp_path: Path, held: str) -> None:
    runs = (
        [priced(record("small"))]
        if held == "small"
        else [priced(record(f"large-{i}")) for i in range(INLINE_COUNT + 1)]
    )
    metrics = HeldCounting(held)
    with Store(StoreSettings(f"sqlite:///{tmp_path / 'w.db'}")) as store:
        migrations.upgrade(store)
        writer = Writer(store, metrics)
        request = threading.Thread(target=asyncio.run, args=(writer.store(runs),), daemon=True)
        request.start()
        try:
            assert metrics.holding[held].wait(5)
            started = time.monotonic()
            writer.close(timeout=0.5)
            waited = time.monotonic() - started
        finally:
            metrics.release[held].set()
            request.join(5)
    assert 0.5 <= waited < 1.2


async def queued_behind_a_held_database(
    writer: Writer, database: Path, requests: list[list[Run]]
) -> list[list[Outcome]]:
    """A first request waits on the database while `requests` queue behind it, then all are answered."""
    blocker = sqlite3.connect(database, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        first = asyncio.ensure_future(writer.store([priced(record("first"))]))
        await asyncio.sleep(0.3)
        queued = [asyncio.ensure_future(writer.store(runs)) for runs in requests]
        await asyncio.sleep(0.1)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    return [await first, *await asyncio.gather(*queued)]


def test_a_group_takes_requests_until_it_reaches_a_thousand_runs(tmp_path: Path) -> None:
    def runs(prefix: str, n: int) -> list[Run]:
        return [priced(record(f"{prefix}-{i}")) for i in range(n)]

    requests = [runs("a", 500), runs("b", 500), runs("c", 500), runs("d", 1)]
    with writer_on(tmp_path / "w.db") as (writer, registry):
        outcomes = asyncio.run(queued_behind_a_held_database(writer, tmp_path / "w.db", requests))
    assert [len(o) for o in outcomes] == [1, 500, 500, 500, 1]
    # three transactions: the first request, then a + b (1,000 runs: full), then c + d (501)
    sizes = {
        le: registry.get_sample_value("agent_exporter_store_write_runs_bucket", {"le": le})
        for le in ("1.0", "500.0", "1000.0", "+Inf")
    }
    assert sizes == {"1.0": 1.0, "500.0": 1.0, "1000.0": 3.0, "+Inf": 3.0}


def test_close_stores_what_is_queued_then_stops(tmp_path: Path) -> None:
    database = tmp_path / "w.db"
    with writer_on(database) as (writer, _):
        blocker = sqlite3.connect(database, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")

        async def close_while_queued() -> tuple[list[Outcome], list[Outcome], float]:
            first = asyncio.ensure_future(writer.store([priced(record("first"))]))
            await asyncio.sleep(0.3)
            queued = asyncio.ensure_future(writer.store([priced(record("queued"))]))
            await asyncio.sleep(0.1)
            closing = asyncio.ensure_future(asyncio.to_thread(writer.close, 5.0))  # queues the stop
            await asyncio.sleep(0.1)
            blocker.execute("ROLLBACK")
            started = time.monotonic()
            await closing
            return await first, await queued, time.monotonic() - started

        try:
            first, queued, closing = asyncio.run(close_while_queued())
        finally:
            blocker.close()
        assert (first, queued) == ([Outcome.ACCEPTED], [Outcome.ACCEPTED])
        assert closing < 2  # the writer stopped on its own, close() did not wait out its 5 s
        assert not writer.alive


def test_a_request_that_raced_the_shutdown_is_answered_with_the_shutdown(tmp_path: Path) -> None:
    database = tmp_path / "w.db"
    with writer_on(database) as (writer, _):
        blocker = sqlite3.connect(database, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")

        async def raced() -> BaseException | list[Outcome]:
            first = asyncio.ensure_future(writer.store([priced(record("first"))]))
            await asyncio.sleep(0.3)
            closing = asyncio.ensure_future(asyncio.to_thread(writer.close, 5.0))
            await asyncio.sleep(0.1)
            # a request that passed the closed check just before close() queued the stop
            late = _LoopWaiter(asyncio.get_running_loop())
            writer._queue.put(_Job([priced(record("late"))], late, True))
            blocker.execute("ROLLBACK")
            await closing
            assert await first == [Outcome.ACCEPTED]
            return (await asyncio.gather(late.future, return_exceptions=True))[0]

        try:
            answer = asyncio.run(raced())
        finally:
            blocker.close()
    assert isinstance(answer, StoreError)
    assert str(answer) == "the exporter is shutting down"


def test_a_new_writer_is_alive_with_no_error_to_report(tmp_path: Path) -> None:
    with writer_on(tmp_path / "w.db") as (writer, _):
        assert (writer.alive, writer.last_error) == (True, None)
    assert not writer.alive
