"""Ingest details the mutation run (make mutate, docs/quality.md) found untested: errors renamed into
another vocabulary (the executions format), and answers to a request whose event loop is gone."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from agent_exporter import migrations
from agent_exporter.config import load_settings
from agent_exporter.ingest import IngestResult, RecordResult, Writer, _LoopWaiter
from agent_exporter.metrics import Metrics
from agent_exporter.outcome import Outcome
from agent_exporter.record import FieldError, Run
from agent_exporter.store import Store, StoreSettings

from .support import priced, record


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
