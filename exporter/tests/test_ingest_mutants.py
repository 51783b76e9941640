"""Ingest details the mutation run (make mutate, docs/quality.md) found untested: errors renamed into
another vocabulary (the executions format), and answers to a request whose event loop is gone."""

from __future__ import annotations

import asyncio

from agent_exporter.ingest import IngestResult, RecordResult, _LoopWaiter
from agent_exporter.outcome import Outcome
from agent_exporter.record import FieldError


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
