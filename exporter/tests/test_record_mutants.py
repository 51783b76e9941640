"""Record details the mutation run (make mutate, docs/quality.md) found untested: the exact error of
each kind of bad value (rule, field path, sentence, how the value is shown), and which model of a
breakdown a run is attributed to."""

from __future__ import annotations

from typing import Any

import pytest

from agent_exporter.fields import _rule_and_sentence
from agent_exporter.record import FieldError, parse_record

from .support import NOW, record, resolved

CONTROL = "\x00"


def errors(**fields: Any) -> list[tuple[str, str, str]]:
    parsed = parse_record(record("r", **fields), now=NOW, max_future_skew=300)
    assert isinstance(parsed, list), parsed
    return [(e.field, e.rule, e.message) for e in parsed]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"agent": "  "}, ("agent", "not_blank", "agent: must not be empty or blank (got '  ')")),
        (
            {"agent": "a\x00b"},
            ("agent", "control_characters", "agent: must not contain control characters (got 'a\\x00b')"),
        ),
        (
            {"duration_seconds": True},
            (
                "duration_seconds",
                "number",
                "duration_seconds: must be a JSON number, not a boolean (got True)",
            ),
        ),
        (
            {"duration_seconds": "3"},
            ("duration_seconds", "number", "duration_seconds: must be a JSON number, not a string (got '3')"),
        ),
        (
            {"input_tokens": True},
            ("input_tokens", "number", "input_tokens: must be a JSON number, not a boolean (got True)"),
        ),
        ({"input_tokens": 1.5}, ("input_tokens", "integer", "input_tokens: must be an integer (got 1.5)")),
        (
            {"duration_seconds": float("inf")},
            ("duration_seconds", "finite", "duration_seconds: must be a finite number (got inf)"),
        ),
        ({"agent": float("inf")}, ("agent", "string", "agent: input should be a valid string (got inf)")),
        (
            {"duration_seconds": [1]},
            ("duration_seconds", "number", "duration_seconds: input should be a valid number (got [1])"),
        ),
        ({"usage": [{"input_tokens": 1}]}, ("usage[0].model", "required", "usage[0].model: field required")),
        ({"labels": {"a": 1}}, ("labels.a", "string", "labels.a: input should be a valid string (got 1)")),
        (
            {"tools": [{"name": "x", "calls": "y"}]},
            ("tools[0].calls", "number", "tools[0].calls: must be a JSON number, not a string (got 'y')"),
        ),
    ],
)
def test_each_kind_of_bad_value_has_its_rule_path_and_sentence(
    fields: dict[str, Any], expected: tuple[str, str, str]
) -> None:
    assert errors(**fields) == [expected]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (CONTROL + "x" * 39, repr(CONTROL + "x" * 39)),  # 40 characters: shown whole
        (CONTROL + "x" * 40, "a string of 41 characters"),
        (CONTROL * 40, repr(CONTROL * 40)[:57] + "..."),  # a repr over 60 characters is cut
        ([0] * 41, "an array of 41 items"),
        ({f"k{i}": i for i in range(41)}, "an object of 41 keys"),
    ],
)
def test_a_long_value_is_described_not_echoed(value: Any, shown: str) -> None:
    [(_, _, message)] = errors(agent=value)
    assert message.endswith(f" (got {shown})")


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (None, "null"),
        (True, "a boolean"),
        (3, "a number"),
        (2.5, "a number"),
        ("x", "a string"),
        ([], "an array"),
    ],
)
def test_a_record_that_is_not_an_object_is_named_by_its_json_kind(value: object, kind: str) -> None:
    assert parse_record(value, now=NOW, max_future_skew=300, prefix="runs[2].") == [
        FieldError("runs[2]", "object", f"runs[2]: must be a JSON object, not {kind}")
    ]


def test_a_python_value_that_is_no_json_kind_is_named_by_its_type() -> None:
    assert parse_record((), now=NOW, max_future_skew=300) == [
        FieldError("(record)", "object", "(record): must be a JSON object, not tuple")
    ]


def test_an_error_type_without_a_rule_of_its_own_is_invalid() -> None:
    assert _rule_and_sentence("url_parsing", "x", "Input should be a valid URL") == (
        "invalid",
        "input should be a valid URL",
    )


@pytest.mark.parametrize(
    ("usage", "model"),
    [
        ([{"model": "a", "output_tokens": 5}, {"model": "b", "input_tokens": 5}], "a"),  # a tie: the first
        ([{"model": "a", "input_tokens": 1, "output_tokens": 10}, {"model": "b", "input_tokens": 5}], "a"),
        ([{"model": "a", "output_tokens": 3}, {"model": "b", "input_tokens": 3, "output_tokens": 1}], "b"),
        ([{"model": "a", "input_tokens": 3}, {"model": "b", "input_tokens": 1, "output_tokens": 3}], "b"),
        ([{"model": "a"}], "a"),  # no tokens at all still names the model
    ],
)
def test_a_run_without_a_model_takes_the_model_that_carried_most_tokens(
    usage: list[dict[str, Any]], model: str
) -> None:
    assert resolved(record("r", model=None, usage=usage)).model == model
