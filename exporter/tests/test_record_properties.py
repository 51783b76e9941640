"""Properties of the record model, over generated records rather than hand-picked ones.

- every valid record is accepted, resolves to a consistent run and prices without error, and its
  digest survives a JSON round trip, key order and explicit nulls;
- every mutation that breaks one rule is rejected, with the broken field and the rule named;
- `parse_record` never raises, whatever JSON it gets.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent_exporter.pricing import PriceBook
from agent_exporter.record import (
    MAX_DURATION_SECONDS,
    RULES,
    FieldError,
    RunRecord,
    Status,
    parse_record,
)

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC).timestamp()
SKEW = 300.0
PRICES = PriceBook()
EXAMPLES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEWER = settings(EXAMPLES, max_examples=50)

# Text without control characters (Unicode category Cc is exactly C0, DEL and C1) or surrogates.
_visible = st.characters(blacklist_categories=("Cc", "Cs"))
names = st.text(_visible, min_size=1, max_size=40).filter(lambda s: s.strip() != "")
label_keys = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,20}\Z")
label_values = st.text(_visible, max_size=60)
tokens = st.integers(0, 10**9)
calls = st.integers(0, 10**5)
fractions = st.floats(0, 1)
usd = st.floats(0, 1000, allow_nan=False)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


@st.composite
def token_counts(draw: st.DrawFn) -> dict[str, int]:
    """Input and output with cache and reasoning subsets that fit inside them; any may be absent."""
    out: dict[str, int] = {}
    if draw(st.booleans()):
        total = draw(tokens)
        out["input_tokens"] = total
        read = draw(st.integers(0, total))
        write = draw(st.integers(0, total - read))
        if draw(st.booleans()):
            out["cache_read_tokens"] = read
        if draw(st.booleans()):
            out["cache_write_tokens"] = write
    if draw(st.booleans()):
        total = draw(tokens)
        out["output_tokens"] = total
        if draw(st.booleans()):
            out["reasoning_tokens"] = draw(st.integers(0, total))
    return out


@st.composite
def timing(draw: st.DrawFn) -> dict[str, Any]:
    """duration_seconds, both timestamps, or a duration with one timestamp: all consistent."""
    ended = NOW - draw(st.floats(0, 10**8))
    duration = draw(st.floats(0, MAX_DURATION_SECONDS))
    started = ended - duration
    shape = draw(st.sampled_from(["duration", "timestamps", "started", "ended", "all"]))
    out: dict[str, Any] = {}
    if shape in {"duration", "started", "ended", "all"}:
        out["duration_seconds"] = duration
    if shape in {"timestamps", "started", "all"}:
        out["started_at"] = _iso(started)
    if shape in {"timestamps", "ended", "all"}:
        out["ended_at"] = _iso(ended)
    return out


@st.composite
def usage_entries(draw: st.DrawFn) -> dict[str, Any]:
    entry: dict[str, Any] = {"model": draw(names), **draw(token_counts())}
    if draw(st.booleans()):
        entry["cost_usd"] = draw(usd)
    if draw(st.booleans()):
        entry["calls"] = draw(calls)
    return entry


@st.composite
def tool_entries(draw: st.DrawFn) -> dict[str, Any]:
    total = draw(calls)
    return {"name": draw(names), "calls": total, "errors": draw(st.integers(0, total))}


@st.composite
def valid_records(draw: st.DrawFn) -> dict[str, Any]:
    """A record that obeys every rule, with a random selection of the optional fields."""
    body: dict[str, Any] = {
        "run_id": draw(names),
        "agent": draw(names),
        "status": draw(st.sampled_from([s.value for s in Status])),
        **draw(timing()),
        **draw(token_counts()),
    }
    optional: dict[str, st.SearchStrategy[Any]] = {
        "agent_version": names,
        "model": st.sampled_from(["claude-sonnet-4-5", "gpt-4o", "internal-model"]) | names,
        "provider": names,
        "issue_type": names,
        "project": names,
        "team": names,
        "environment": names,
        "cost_usd": usd,
        "llm_calls": calls,
        "tool_calls": calls,
        "retries": calls,
        "quality_score": fractions,
        "confidence": fractions,
        "error_type": names,
        "error_summary": st.text(_visible | st.sampled_from("\n\t"), max_size=200),
        "labels": st.dictionaries(label_keys, label_values, max_size=5),
        "usage": st.lists(usage_entries(), max_size=3),
        "tools": st.lists(tool_entries(), max_size=3),
        "phases": st.lists(
            st.fixed_dictionaries(
                {"name": names, "duration_seconds": st.floats(0, 3600)},
                optional={"status": st.sampled_from([s.value for s in Status])},
            ),
            max_size=3,
        ),
    }
    for name in draw(st.sets(st.sampled_from(sorted(optional)))):
        body[name] = draw(optional[name])
    if body.get("usage"):
        # the totals then come from the breakdown (top-level totals that disagree with it are a
        # different, inconsistent record)
        for name in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"):
            body.pop(name, None)
        body.pop("reasoning_tokens", None)
    return body


def parse(body: Any) -> RunRecord | list[FieldError]:
    return parse_record(body, now=NOW, max_future_skew=SKEW)


def over_the_wire(body: Any) -> Any:
    return orjson.loads(orjson.dumps(body))


@EXAMPLES
@given(valid_records())
def test_every_valid_record_is_accepted_and_resolves_to_a_consistent_run(body: dict[str, Any]) -> None:
    parsed = parse(over_the_wire(body))
    assert isinstance(parsed, RunRecord), parsed
    run = parsed.resolve(NOW)
    PRICES.price(run)
    assert run.run_id == body["run_id"]
    assert run.status.value == body["status"]
    assert run.duration_seconds >= 0
    assert run.started_at <= run.ended_at <= NOW + SKEW
    assert math.isclose(run.ended_at - run.started_at, run.duration_seconds, rel_tol=0.01, abs_tol=1.0)
    for name in ("input_tokens", "output_tokens", "cache_read_tokens", "reasoning_tokens"):
        given_total = body.get(name)
        from_usage = [u[name] for u in body.get("usage", []) if name in u]
        expected = given_total if given_total is not None else (sum(from_usage) if from_usage else None)
        assert getattr(run, name) == expected, name
    if "cost_usd" in body:
        assert (run.cost_usd, run.cost_source.value) == (body["cost_usd"], "reported")
    else:
        assert (run.cost_usd is None) == (run.cost_source.value == "unknown")
        assert run.cost_usd is None or run.cost_usd >= 0


@FEWER
@given(valid_records(), st.randoms(use_true_random=False))
def test_the_digest_ignores_key_order_and_explicit_nulls(body: dict[str, Any], rnd: Any) -> None:
    first = parse(over_the_wire(body))
    shuffled = list(body.items())
    rnd.shuffle(shuffled)
    again = dict(shuffled) | {name: None for name in ("team", "retries", "confidence") if name not in body}
    second = parse(over_the_wire(again))
    assert isinstance(first, RunRecord)
    assert isinstance(second, RunRecord)
    assert first.body_hash() == second.body_hash()


# (field, value that breaks a rule, the field the error names, the rule)
MUTATIONS: list[tuple[str, Any, str, str]] = [
    ("run_id", "", "run_id", "min_length"),
    ("run_id", "r" * 129, "run_id", "max_length"),
    ("run_id", 42, "run_id", "string"),
    ("agent", "   ", "agent", "not_blank"),
    ("agent", "fix\x00er", "agent", "control_characters"),
    ("agent", "fix\u0085er", "agent", "control_characters"),
    ("status", "done", "status", "enum"),
    ("status", None, "status", "enum"),
    ("input_tokens", -1, "input_tokens", "minimum"),
    ("input_tokens", 10**13, "input_tokens", "maximum"),
    ("input_tokens", 2**70, "input_tokens", "maximum"),
    ("input_tokens", 1.5, "input_tokens", "integer"),
    ("input_tokens", "12", "input_tokens", "number"),
    ("output_tokens", True, "output_tokens", "number"),
    ("llm_calls", -3, "llm_calls", "minimum"),
    ("cost_usd", -0.01, "cost_usd", "minimum"),
    ("cost_usd", 1e300, "cost_usd", "maximum"),
    ("duration_seconds", -1.0, "duration_seconds", "minimum"),
    ("duration_seconds", 1e9, "duration_seconds", "maximum"),
    ("quality_score", 1.5, "quality_score", "maximum"),
    ("confidence", -0.1, "confidence", "minimum"),
    ("started_at", "yesterday", "started_at", "rfc3339"),
    ("ended_at", "2026-11-22T11:00:00", "ended_at", "timezone_required"),
    ("ended_at", "2099-01-01T00:00:00Z", "ended_at", "future_timestamp"),
    ("ended_at", "1970-01-02T00:00:00Z", "ended_at", "ancient_timestamp"),
    ("labels", {"9lives": "x"}, "labels.9lives", "label_key"),
    ("labels", {"tier": "gold\x07"}, "labels.tier", "control_characters"),
    ("labels", {"tier": "g" * 257}, "labels.tier", "max_length"),
    ("labels", {f"k{i}": "v" for i in range(33)}, "labels", "max_labels"),
    ("labels", ["tier"], "labels", "object"),
    ("usage", "claude", "usage", "array"),
    ("usage", [{"input_tokens": 5}], "usage[0].model", "required"),
    ("usage", [{"model": "m", "input_tokens": 1, "cache_read_tokens": 2}], "usage[0].cache_read_tokens",
     "subset_exceeds_total"),
    ("tools", [{"name": "bash", "calls": 1, "errors": 2}], "tools[0].errors", "subset_exceeds_total"),
    ("phases", [{"name": "plan"}], "phases[0].duration_seconds", "required"),
    ("error_summary", "line\x1b[31m", "error_summary", "control_characters"),
]  # fmt: skip


@EXAMPLES
@given(valid_records(), st.sampled_from(MUTATIONS))
def test_a_mutation_that_breaks_a_rule_is_rejected_naming_field_and_rule(
    body: dict[str, Any], mutation: tuple[str, Any, str, str]
) -> None:
    name, value, field, rule = mutation
    if name in {"started_at", "ended_at"}:
        body.pop("started_at", None)
        body.pop("ended_at", None)
        body["duration_seconds"] = 1.0
    parsed = parse({**body, name: value})
    assert isinstance(parsed, list), f"{name}={value!r} was accepted"
    assert (field, rule) in [(e.field, e.rule) for e in parsed]


@FEWER
@given(valid_records(), st.integers(1, 10**6))
def test_a_subset_larger_than_its_total_is_rejected(body: dict[str, Any], excess: int) -> None:
    body["input_tokens"] = body.get("input_tokens", 100)
    body["cache_read_tokens"] = body["input_tokens"] + excess
    body.pop("cache_write_tokens", None)
    parsed = parse(body)
    assert isinstance(parsed, list)
    assert ("cache_read_tokens", "subset_exceeds_total") in [(e.field, e.rule) for e in parsed]


@FEWER
@given(valid_records(), st.floats(1, 10**6))
def test_ended_at_before_started_at_is_rejected(body: dict[str, Any], gap: float) -> None:
    ended = NOW - 3600
    body.pop("duration_seconds", None)
    body["ended_at"] = _iso(ended)
    body["started_at"] = _iso(ended + gap)
    parsed = parse(body)
    assert isinstance(parsed, list)
    assert ("ended_at", "ended_before_started") in [(e.field, e.rule) for e in parsed]


@FEWER
@given(valid_records(), st.floats(SKEW + 1, 10**9))
def test_a_timestamp_beyond_the_clock_skew_is_rejected(body: dict[str, Any], ahead: float) -> None:
    body.pop("started_at", None)
    body["duration_seconds"] = 1.0
    body["ended_at"] = (datetime.fromtimestamp(NOW, UTC) + timedelta(seconds=ahead)).isoformat()
    parsed = parse(body)
    assert isinstance(parsed, list)
    assert ("ended_at", "future_timestamp") in [(e.field, e.rule) for e in parsed]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
record_like = st.dictionaries(
    st.sampled_from([*RunRecord.model_fields, "runs", "extra"]), json_values, max_size=12
) | st.builds(lambda base, noise: {**base, **noise}, valid_records(), st.dictionaries(
    st.sampled_from(list(RunRecord.model_fields)), json_values, max_size=3))  # fmt: skip


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values | record_like)
def test_parse_record_never_raises_and_every_error_names_a_field_and_a_known_rule(value: Any) -> None:
    parsed = parse(value)
    if isinstance(parsed, RunRecord):
        PRICES.price(parsed.resolve(NOW))
        return
    assert parsed
    for error in parsed:
        assert error.rule in RULES | {"object"}, error
        assert error.message.startswith(error.field + ": "), error
