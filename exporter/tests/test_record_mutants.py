"""Record details the mutation run (make mutate, docs/quality.md) found untested: the exact error of
each kind of bad value (rule, field path, sentence, how the value is shown), and which model of a
breakdown a run is attributed to."""

from __future__ import annotations

from typing import Any

import pytest

from agent_exporter.fields import (
    MAX_COUNT_KEYS,
    MAX_LABEL_KEY_LENGTH,
    MAX_LABEL_VALUE_LENGTH,
    MAX_LABELS,
    Score,
    _rule_and_sentence,
    parse_score,
)
from agent_exporter.record import (
    MAX_NAME_LENGTH,
    FieldError,
    RunRecord,
    name_problem,
    parse_record,
    total_tokens,
)

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
        ([0] * 20, repr([0] * 20)),  # a repr of 60 characters: shown whole
        ([10] + [0] * 19, repr([10] + [0] * 19)[:57] + "..."),  # of 61: cut
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


def test_a_name_from_elsewhere_follows_the_records_name_rule() -> None:
    longest = "x" * MAX_NAME_LENGTH
    assert name_problem(longest) is None
    assert (
        name_problem(longest + "x")
        == f"must be at most {MAX_NAME_LENGTH} characters (got {MAX_NAME_LENGTH + 1})"
    )
    assert name_problem("a\x00") == "must not contain control characters"
    assert (name_problem("  "), name_problem("")) == (
        "must not be empty or blank",
        "must not be empty or blank",
    )


def test_total_tokens_counts_what_was_reported_and_nothing_else() -> None:
    assert (total_tokens(None, None), total_tokens(5, None), total_tokens(None, 7), total_tokens(5, 7)) == (
        None,
        5,
        7,
        12,
    )


def test_a_usage_line_keeps_its_reasoning_tokens() -> None:
    run = resolved(
        record("r", model=None, usage=[{"model": "a", "output_tokens": 10, "reasoning_tokens": 4}])
    )
    assert (run.usage[0].reasoning_tokens, run.reasoning_tokens) == (4, 4)


def test_a_run_without_a_model_or_a_breakdown_has_no_model() -> None:
    assert resolved(record("r", model=None)).model is None


def test_a_run_keeps_every_descriptive_field_of_its_record() -> None:
    run = resolved(
        record(
            "r",
            agent_version="2.1.0",
            project="billing",
            team="payments",
            environment="prod",
            retries=2,
            quality_score=0.75,
            confidence=0.5,
            tools=[{"name": "bash", "calls": 3}, {"name": "edit", "calls": 2}],
        )
    )
    kept = (run.agent_version, run.project, run.team, run.environment, run.retries, run.quality_score)
    assert kept == ("2.1.0", "billing", "payments", "prod", 2, 0.75)
    assert (run.confidence, run.tool_calls) == (0.5, 5)  # tool calls summed from the tools


def test_reported_totals_win_over_the_breakdowns() -> None:
    usage = [
        {"model": "a", "provider": "pa", "input_tokens": 10, "calls": 1},
        {"model": "b", "provider": "pb", "input_tokens": 5, "calls": 2},
    ]
    run = resolved(
        record(
            "r",
            model=None,
            provider="gateway",
            llm_calls=7,
            tool_calls=9,
            tools=[{"name": "x", "calls": 2}],
            usage=usage,
        )
    )
    assert (run.model, run.provider, run.llm_calls, run.tool_calls) == ("a", "gateway", 7, 9)
    named = resolved(record("r", model="own", provider="p-own", usage=usage))
    assert (named.model, named.provider, named.llm_calls) == ("own", "p-own", 3)
    derived = resolved(record("r", model=None, provider=None, usage=usage))
    assert (derived.model, derived.provider) == ("a", "pa")


def parsed(body: dict[str, Any]) -> RunRecord:
    out = parse_record(body, now=NOW, max_future_skew=300)
    assert isinstance(out, RunRecord), out
    return out


def test_tool_errors_may_equal_calls_but_not_exceed_them() -> None:
    assert parsed(record("r", tools=[{"name": "bash", "calls": 2, "errors": 2}])).tools[0].errors == 2
    assert errors(tools=[{"name": "bash", "calls": 2, "errors": 3}]) == [
        ("tools[0].errors", "subset_exceeds_total", "tools[0].errors: errors (3) must not exceed calls (2)")
    ]


def test_label_limits_hold_at_their_edges() -> None:
    at_most = {"k" * MAX_LABEL_KEY_LENGTH: "v" * MAX_LABEL_VALUE_LENGTH} | {
        f"k{i}": "v" for i in range(MAX_LABELS - 1)
    }
    assert len(parsed(record("r", labels=at_most)).labels) == MAX_LABELS
    key = "k" * (MAX_LABEL_KEY_LENGTH + 1)
    assert errors(labels={key: "v"}) == [
        (
            f"labels.{key[:MAX_LABEL_KEY_LENGTH]}",
            "label_key",
            f"labels.{key[:MAX_LABEL_KEY_LENGTH]}: label keys must match [A-Za-z_][A-Za-z0-9_]* "
            f"and be at most {MAX_LABEL_KEY_LENGTH} characters",
        )
    ]
    too_many = {f"k{i}": "v" for i in range(MAX_LABELS + 1)}
    assert errors(labels=too_many) == [
        ("labels", "max_labels", f"labels: at most {MAX_LABELS} labels are allowed (got {MAX_LABELS + 1})")
    ]
    assert errors(labels={"k": "v" * (MAX_LABEL_VALUE_LENGTH + 1)}) == [
        ("labels.k", "max_length", f"labels.k: must be at most {MAX_LABEL_VALUE_LENGTH} characters")
    ]


def test_nulls_and_defaults_sent_or_left_out_hash_the_same() -> None:
    bare = parsed(record("r"))
    spelled = parsed(record("r") | {"project": None, "labels": {}, "tools": [], "retries": None})
    assert spelled.body_hash() == bare.body_hash()
    assert parsed(record("r", project="x")).body_hash() != bare.body_hash()


def test_the_digest_of_a_record_is_stable() -> None:
    # stored runs were deduplicated by this digest: a change to it turns every resent run into a conflict
    # (defaults such as labels {} and tools [] are left out, so a field added with a default keeps it)
    assert (
        parsed(record("r-1", cost_usd=1.0)).body_hash()
        == "4fafb44aa6137ecdb5676a9f208701cc8cab9306203134078cf80bec9509f0aa"
    )


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"started_at": "1999-12-31T23:59:59Z"},
            (
                "started_at",
                "ancient_timestamp",
                "started_at: 1999-12-31T23:59:59+00:00 is before 2000-01-01; check the units",
            ),
        ),
        (
            {"duration_seconds": None, "started_at": "2026-11-18T08:00:00Z"},
            (
                "duration_seconds",
                "duration_or_timestamps",
                "duration_seconds: send duration_seconds, or both started_at and ended_at",
            ),
        ),
        (
            {"ended_at": "2027-01-01T00:00:00Z"},
            (
                "ended_at",
                "future_timestamp",
                "ended_at: 2027-01-01T00:00:00+00:00 is more than 300 s in the future; "
                "check the agent's clock",
            ),
        ),
        (
            {
                "duration_seconds": None,
                "started_at": "2026-11-18T08:00:10Z",
                "ended_at": "2026-11-18T08:00:00Z",
            },
            ("ended_at", "ended_before_started", "ended_at: 2026-11-18T08:00:00+00:00 is before started_at"),
        ),
        (
            {"labels": {"k": "a\x00"}},
            ("labels.k", "control_characters", "labels.k: must not contain control characters"),
        ),
    ],
)
def test_each_cross_field_rule_says_what_is_wrong(
    fields: dict[str, Any], expected: tuple[str, str, str]
) -> None:
    assert errors(**fields) == [expected]


@pytest.mark.parametrize(
    ("started_at", "ended_at", "duration"),
    [
        ("2000-01-01T00:00:00Z", None, 5.0),  # the earliest instant allowed
        ("2026-11-18T08:00:00Z", "2026-11-18T08:00:00Z", 0.0),  # an instant run
        ("2026-11-18T08:00:00Z", "2026-11-18T08:00:00.500Z", None),  # under a second
        ("2026-11-18T08:00:00Z", "2026-11-18T08:01:40Z", 99.0),  # 1 s off 100 s: just within the tolerance
    ],
)
def test_timestamps_at_the_edges_of_the_rules_are_accepted(
    started_at: str, ended_at: str | None, duration: float | None
) -> None:
    parsed(record("r", started_at=started_at, ended_at=ended_at, duration_seconds=duration))


def test_the_duration_tolerance_grows_with_the_span() -> None:
    # 1000 s between the timestamps: 5 s off is within 1 % (10 s), though over the 1 s floor
    parsed(
        record(
            "r", started_at="2026-11-18T08:00:00Z", ended_at="2026-11-18T08:16:40Z", duration_seconds=995.0
        )
    )
    assert errors(
        started_at="2026-11-18T08:00:00Z", ended_at="2026-11-18T08:01:40Z", duration_seconds=98.9
    ) == [
        (
            "duration_seconds",
            "inconsistent_duration",
            "duration_seconds: 98.9 s disagrees with ended_at - started_at (100 s)",
        )
    ]


def test_a_run_may_end_at_the_latest_instant_allowed_but_not_after() -> None:
    # received at 11:06:40 with 300 s of skew allowed: 11:11:40 is the latest end
    parsed(record("r", started_at="2026-11-18T11:11:10Z", duration_seconds=30.0))
    assert errors(started_at="2026-11-18T11:11:10Z", duration_seconds=31.0) == [
        (
            "started_at",
            "future_timestamp",
            "started_at: started_at + duration_seconds ends in the future; check the agent's clock",
        )
    ]


def test_cache_over_input_is_judged_on_the_runs_own_figures_or_its_breakdowns() -> None:
    inclusive = "input_tokens is inclusive of cached tokens"
    # the run's own cache reads against the input its breakdown adds up to
    assert errors(cache_read_tokens=50, usage=[{"model": "a", "input_tokens": 40}]) == [
        (
            "cache_read_tokens",
            "subset_exceeds_total",
            f"cache_read_tokens: 50 exceeds input_tokens (40); {inclusive}",
        )
    ]
    # the run's own input against the cache reads of its breakdown
    assert errors(input_tokens=10, usage=[{"model": "a", "cache_read_tokens": 20}]) == [
        (
            "cache_read_tokens",
            "subset_exceeds_total",
            f"cache_read_tokens: 20 exceeds input_tokens (10); {inclusive}",
        )
    ]
    # nothing of its own: the lines are judged one by one, not their sums against each other
    lines = [{"model": "a", "input_tokens": 10, "output_tokens": 10}, {"model": "b", "cache_read_tokens": 20}]
    parsed(
        record(
            "r", model=None, usage=[*lines, {"model": "c", "cache_write_tokens": 20, "reasoning_tokens": 20}]
        )
    )


def test_reasoning_over_output_is_judged_on_the_runs_own_figures_or_its_breakdowns() -> None:
    inclusive = "output_tokens is inclusive of reasoning tokens"
    assert errors(output_tokens=5, usage=[{"model": "a", "reasoning_tokens": 10}]) == [
        (
            "reasoning_tokens",
            "subset_exceeds_total",
            f"reasoning_tokens: 10 exceeds output_tokens (5); {inclusive}",
        )
    ]
    assert errors(reasoning_tokens=30, usage=[{"model": "a", "output_tokens": 20}]) == [
        (
            "reasoning_tokens",
            "subset_exceeds_total",
            f"reasoning_tokens: 30 exceeds output_tokens (20); {inclusive}",
        )
    ]


def test_cache_writes_and_both_cache_kinds_over_input_are_named() -> None:
    inclusive = "input_tokens is inclusive of cached tokens"
    assert errors(input_tokens=10, usage=[{"model": "a", "cache_write_tokens": 20}]) == [
        (
            "cache_write_tokens",
            "subset_exceeds_total",
            f"cache_write_tokens: 20 exceeds input_tokens (10); {inclusive}",
        )
    ]
    assert errors(input_tokens=10, cache_read_tokens=6, cache_write_tokens=6) == [
        (
            "cache_read_tokens",
            "subset_exceeds_total",
            "cache_read_tokens: cache_read_tokens + cache_write_tokens (12) exceed input_tokens (10); "
            + inclusive,
        )
    ]


def test_reasoning_may_be_all_of_the_output() -> None:
    assert parsed(record("r", output_tokens=10, reasoning_tokens=10)).reasoning_tokens == 10


# --- fields.py: scores and the items of a run ----------------------------------------------------


def test_a_score_that_is_not_an_object_or_breaks_a_rule_is_named() -> None:
    assert parse_score(3, "scores[1].") == [
        FieldError("scores[1]", "object", "scores[1]: must be a JSON object")
    ]
    assert parse_score([], "") == [FieldError("(score)", "object", "(score): must be a JSON object")]
    assert parse_score({"name": "review", "value": 1.5}, "scores[0].") == [
        FieldError(
            "scores[0].value", "maximum", "scores[0].value: input should be less than or equal to 1 (got 1.5)"
        )
    ]


def test_a_scores_key_is_its_id_or_a_stable_digest_of_it() -> None:
    score = parse_score({"name": "review", "value": 0.8, "source": "ci"}, "")
    same = parse_score({"name": "review", "value": 0.8, "source": "ci", "comment": None}, "")
    named = parse_score({"name": "review", "value": 0.8, "score_id": "rev-1"}, "")
    assert isinstance(score, Score)
    assert isinstance(same, Score)
    assert isinstance(named, Score)
    # the digest scores were deduplicated by: absent and null alike, and stable across versions
    assert score.key() == same.key() == "sha256:b72036258cba03881e5e04f0d5e248cc5516d505"
    assert named.key() == "rev-1"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"parent_run_id": "r"},
            (
                "parent_run_id",
                "parent_is_self",
                "parent_run_id: a run cannot be its own parent (equals run_id)",
            ),
        ),
        (
            {"counts": {"two words": 1}},
            (
                "counts.two words",
                "count_key",
                "counts.two words: count keys must match [A-Za-z_][A-Za-z0-9_]* and be at most 64 characters",
            ),
        ),
        (
            {"counts": {f"k{i}": 1 for i in range(MAX_COUNT_KEYS + 1)}},
            (
                "counts",
                "max_keys",
                f"counts: at most {MAX_COUNT_KEYS} counts are allowed (got {MAX_COUNT_KEYS + 1})",
            ),
        ),
        (
            {"subagents": [{"name": "s", "attempts": 2, "successes": 2, "failures": 1}]},
            (
                "subagents[0].attempts",
                "subset_exceeds_total",
                "subagents[0].attempts: successes + failures (3) must not exceed attempts (2)",
            ),
        ),
    ],
)
def test_each_rule_across_a_runs_items_says_what_is_wrong(
    fields: dict[str, Any], expected: tuple[str, str, str]
) -> None:
    assert errors(**fields) == [expected]


def test_a_runs_items_at_the_edges_of_their_rules_are_accepted() -> None:
    counts = {"k" * MAX_LABEL_KEY_LENGTH: 1} | {f"k{i}": 1 for i in range(MAX_COUNT_KEYS - 1)}
    subagents = [{"name": "s", "attempts": 3, "successes": 2, "failures": 1}]
    run = parsed(record("r", parent_run_id="p", counts=counts, subagents=subagents))
    assert (len(run.counts), run.subagents[0].attempts, run.parent_run_id) == (MAX_COUNT_KEYS, 3, "p")
