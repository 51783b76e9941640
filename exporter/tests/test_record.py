"""The run record: every validation rule names the field and the rule; derived fields are right."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest

from agent_exporter.record import FieldError, RunRecord, Status, parse_record, unknown_fields

from . import support
from .support import record

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC).timestamp()
resolved = partial(support.resolved, received_at=NOW)  # this module's clock


def errors_of(body: Any, **kwargs: Any) -> list[tuple[str, str]]:
    parsed = parse_record(body, now=NOW, max_future_skew=300, **kwargs)
    assert isinstance(parsed, list), f"expected errors, got a record: {parsed!r}"
    return [(e.field, e.rule) for e in parsed]


# -- required fields -------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["run_id", "agent", "status"])
def test_a_required_field_missing_is_named(missing: str) -> None:
    body = record("r")
    del body[missing]
    assert errors_of(body) == [(missing, "required")]


def test_a_record_needs_a_duration_or_both_timestamps() -> None:
    body = record("r", duration_seconds=None, started_at="2026-11-22T11:00:00Z")
    assert errors_of(body) == [("duration_seconds", "duration_or_timestamps")]


def test_a_record_that_is_not_an_object_is_rejected() -> None:
    parsed = parse_record([1, 2], now=NOW, max_future_skew=300, prefix="runs[3].")
    assert parsed == [FieldError("runs[3]", "object", "runs[3]: must be a JSON object, not an array")]


def test_errors_in_a_batch_carry_the_record_index() -> None:
    assert errors_of(record("r", input_tokens=-1), prefix="runs[7].") == [("runs[7].input_tokens", "minimum")]


# -- types and ranges ------------------------------------------------------------------------


def test_status_must_be_one_of_the_known_values() -> None:
    parsed = parse_record(record("r", status="ok"), now=NOW, max_future_skew=300)
    assert parsed == [
        FieldError(
            "status",
            "enum",
            "status: input should be 'success', 'failure', 'error', 'timeout' or 'cancelled' (got 'ok')",
        )
    ]


@pytest.mark.parametrize(
    "field", ["input_tokens", "output_tokens", "cache_read_tokens", "llm_calls", "tool_calls", "retries"]
)
def test_negative_counts_are_rejected(field: str) -> None:
    assert errors_of(record("r", **{field: -1})) == [(field, "minimum")]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("field", ["duration_seconds", "cost_usd", "quality_score"])
def test_nan_and_infinities_are_rejected(field: str, value: float) -> None:
    assert errors_of(record("r", **{field: value})) == [(field, "finite")]


def test_a_number_sent_as_a_string_is_rejected() -> None:
    parsed = parse_record(record("r", input_tokens="12"), now=NOW, max_future_skew=300)
    assert parsed == [
        FieldError("input_tokens", "number", "input_tokens: must be a JSON number, not a string (got '12')")
    ]


def test_a_boolean_is_not_a_count() -> None:
    assert errors_of(record("r", llm_calls=True)) == [("llm_calls", "number")]


def test_a_count_must_be_sent_as_an_integer() -> None:
    assert errors_of(record("r", input_tokens=1.5)) == [("input_tokens", "integer")]
    parsed = parse_record(record("r", input_tokens=7.0), now=NOW, max_future_skew=300)
    assert parsed == [FieldError("input_tokens", "integer", "input_tokens: must be an integer (got 7.0)")]


def test_a_duration_may_be_sent_as_an_integer() -> None:
    assert resolved(record("r", duration_seconds=42)).duration_seconds == 42.0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("input_tokens", 10**12 + 1),
        ("llm_calls", 10**7 + 1),
        ("cost_usd", 1_000_001.0),
        ("duration_seconds", 7 * 86400 + 1),
        ("confidence", 1.01),
    ],
)
def test_huge_numbers_are_rejected(field: str, value: float) -> None:
    assert errors_of(record("r", **{field: value})) == [(field, "maximum")]


@pytest.mark.parametrize(("field", "limit"), [("run_id", 128), ("agent", 128), ("error_summary", 4096)])
def test_over_long_strings_are_rejected(field: str, limit: int) -> None:
    too_long, longest = record("r"), record("r")
    too_long[field], longest[field] = "x" * (limit + 1), "x" * limit
    parsed = parse_record(too_long, now=NOW, max_future_skew=300)
    assert parsed == [
        FieldError(
            field,
            "max_length",
            f"{field}: string should have at most {limit} characters "
            f"(got a string of {limit + 1} characters)",
        )
    ]
    assert isinstance(parse_record(longest, now=NOW, max_future_skew=300), RunRecord)


@pytest.mark.parametrize("text", ["a\x00b", "tab\tinside", "bell\x07", "c1\x85"])
def test_control_characters_are_rejected_in_names(text: str) -> None:
    assert errors_of(record("r", model=text)) == [("model", "control_characters")]


def test_an_error_summary_may_span_lines_but_not_hold_other_controls() -> None:
    assert (
        resolved(record("r", error_summary="3 tests failed:\n\ttest_a")).error_summary
        == "3 tests failed:\n\ttest_a"
    )
    assert errors_of(record("r", error_summary="bad\x1b[31m")) == [("error_summary", "control_characters")]


def test_blank_names_are_rejected() -> None:
    assert errors_of(record("r", agent="  ")) == [("agent", "not_blank")]


def test_label_keys_and_values_are_checked() -> None:
    assert errors_of(record("r", labels={"bad-key": "v"})) == [("labels.bad-key", "label_key")]
    assert errors_of(record("r", labels={"k": "v\n"})) == [("labels.k", "control_characters")]
    assert errors_of(record("r", labels={"k": "v" * 257})) == [("labels.k", "max_length")]
    assert errors_of(record("r", labels={f"k{i}": "v" for i in range(33)})) == [("labels", "max_labels")]


def test_every_error_of_a_record_is_reported_at_once() -> None:
    body = record("r", status="done", input_tokens=-5, model="x" * 200)
    assert errors_of(body) == [("status", "enum"), ("model", "max_length"), ("input_tokens", "minimum")]


# -- timestamps ------------------------------------------------------------------------------


def test_timestamps_need_an_offset() -> None:
    body = record(
        "r", duration_seconds=None, started_at="2026-11-22T11:00:00", ended_at="2026-11-22T11:01:00Z"
    )
    assert errors_of(body) == [("started_at", "timezone_required")]


def test_a_timestamp_that_is_not_rfc3339_is_rejected() -> None:
    assert errors_of(record("r", ended_at="yesterday")) == [("ended_at", "rfc3339")]


def test_timestamps_more_than_the_skew_in_the_future_are_rejected() -> None:
    assert errors_of(record("r", ended_at="2026-11-22T12:05:01Z")) == [("ended_at", "future_timestamp")]
    assert resolved(record("r", ended_at="2026-11-22T12:05:00Z")).ended_at == NOW + 300


def test_a_start_plus_duration_in_the_future_is_rejected() -> None:
    body = record("r", started_at="2026-11-22T12:00:00Z", duration_seconds=3600)
    assert errors_of(body) == [("started_at", "future_timestamp")]


def test_ancient_timestamps_are_rejected() -> None:
    assert errors_of(record("r", ended_at="1970-01-01T00:00:00Z")) == [("ended_at", "ancient_timestamp")]


def test_ended_at_before_started_at_is_rejected() -> None:
    body = record(
        "r", duration_seconds=None, started_at="2026-11-22T11:00:00Z", ended_at="2026-11-22T10:59:59Z"
    )
    assert errors_of(body) == [("ended_at", "ended_before_started")]


def test_a_duration_that_disagrees_with_the_timestamps_is_rejected() -> None:
    body = record(
        "r", duration_seconds=50, started_at="2026-11-22T11:00:00Z", ended_at="2026-11-22T11:01:00Z"
    )
    assert errors_of(body) == [("duration_seconds", "inconsistent_duration")]
    body["duration_seconds"] = 59.5  # within a second: a monotonic clock beside a wall clock
    assert resolved(body).duration_seconds == 59.5


# -- token subsets ---------------------------------------------------------------------------


def test_cache_reads_larger_than_input_are_rejected() -> None:
    parsed = parse_record(record("r", input_tokens=100, cache_read_tokens=101), now=NOW, max_future_skew=300)
    assert parsed == [
        FieldError(
            "cache_read_tokens",
            "subset_exceeds_total",
            "cache_read_tokens: 101 exceeds input_tokens (100); input_tokens is inclusive of cached tokens",
        )
    ]


def test_cache_reads_and_writes_together_must_fit_in_input() -> None:
    body = record("r", input_tokens=100, cache_read_tokens=60, cache_write_tokens=41)
    assert errors_of(body) == [("cache_read_tokens", "subset_exceeds_total")]
    body["cache_write_tokens"] = 40
    assert resolved(body).cache_write_tokens == 40


def test_reasoning_larger_than_output_is_rejected() -> None:
    assert errors_of(record("r", output_tokens=10, reasoning_tokens=11)) == [
        ("reasoning_tokens", "subset_exceeds_total")
    ]


def test_usage_entries_are_checked_one_by_one() -> None:
    body = record(
        "r",
        model=None,
        usage=[{"model": "a", "input_tokens": 5}, {"model": "b", "input_tokens": 5, "cache_read_tokens": 6}],
    )
    assert errors_of(body) == [("usage[1].cache_read_tokens", "subset_exceeds_total")]


def test_tool_errors_cannot_exceed_calls() -> None:
    assert errors_of(record("r", tools=[{"name": "bash", "calls": 1, "errors": 2}])) == [
        ("tools[0].errors", "subset_exceeds_total")
    ]


# -- derived fields --------------------------------------------------------------------------


def test_duration_is_derived_from_the_timestamps() -> None:
    run = resolved(
        record(
            "r",
            duration_seconds=None,
            started_at="2026-11-22T11:00:00Z",
            ended_at="2026-11-22T13:30:00+02:00",
        )
    )
    assert run.duration_seconds == 1800.0
    assert run.started_at == datetime(2026, 11, 22, 11, 0, tzinfo=UTC).timestamp()


def test_ended_at_defaults_to_receipt_time_and_started_at_follows() -> None:
    run = resolved(record("r", duration_seconds=90), received_at=NOW - 5)
    assert (run.ended_at, run.started_at, run.ended_at_reported) == (NOW - 5, NOW - 95, False)


def test_ended_at_follows_from_started_at_and_duration() -> None:
    run = resolved(record("r", duration_seconds=60, started_at="2026-11-22T11:00:00Z"))
    assert run.ended_at == datetime(2026, 11, 22, 11, 1, tzinfo=UTC).timestamp()


def test_totals_are_summed_from_the_usage_breakdown() -> None:
    run = resolved(
        record(
            "r",
            model=None,
            provider=None,
            usage=[
                {
                    "model": "gpt-5",
                    "provider": "openai",
                    "input_tokens": 1000,
                    "output_tokens": 10,
                    "calls": 3,
                },
                {
                    "model": "claude-sonnet-4-5",
                    "provider": "anthropic",
                    "input_tokens": 5000,
                    "output_tokens": 50,
                    "cache_read_tokens": 4000,
                    "calls": 2,
                },
            ],
        )
    )
    assert (run.input_tokens, run.output_tokens, run.cache_read_tokens, run.llm_calls) == (6000, 60, 4000, 5)
    assert run.reasoning_tokens is None
    assert (run.model, run.provider) == ("claude-sonnet-4-5", "anthropic")  # the model with most tokens


def test_top_level_totals_win_over_the_breakdown() -> None:
    run = resolved(record("r", input_tokens=7, usage=[{"model": "gpt-5", "input_tokens": 5}]))
    assert (run.input_tokens, run.model) == (7, "claude-sonnet-4-5")


def test_tool_calls_are_summed_from_the_tool_breakdown() -> None:
    run = resolved(
        record("r", tools=[{"name": "bash", "calls": 4}, {"name": "edit", "calls": 3, "errors": 1}])
    )
    assert run.tool_calls == 7


def test_unknown_fields_are_ignored_and_listed() -> None:
    body = record("r", modifiedFiles=["a.py"], temperature=0.2)
    assert unknown_fields(body) == ["modifiedFiles", "temperature"]
    assert resolved(body).run_id == "r"


# -- the body hash (idempotency) -------------------------------------------------------------


def body_hash(body: dict[str, Any]) -> str:
    parsed = parse_record(body, now=NOW, max_future_skew=300)
    assert isinstance(parsed, RunRecord)
    return parsed.body_hash()


def test_equivalent_bodies_hash_the_same() -> None:
    a = record("r", duration_seconds=5, ended_at="2026-11-22T10:00:00Z")
    b = record("r", duration_seconds=5.0, ended_at="2026-11-22T12:00:00+02:00", model=None, team=None)
    b["model"] = "claude-sonnet-4-5"
    b["extra_unknown_field"] = 1
    assert body_hash(a) == body_hash(b)


def test_a_different_body_hashes_differently() -> None:
    assert body_hash(record("r", status="success")) != body_hash(record("r", status=Status.FAILURE.value))
