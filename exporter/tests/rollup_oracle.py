"""The figures a read must give, computed in Python from the runs themselves: the oracle the
rollups are held to (tests/test_rollups.py)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pytest

from agent_exporter.aggregates import Aggregate
from agent_exporter.analytics import PERCENTILES, interpolate
from agent_exporter.queries import FAILED, ErrorGroup, RunFilter
from agent_exporter.record import Run
from agent_exporter.sketch import MIN_VALUE, RELATIVE_ACCURACY

FIELDS = (
    "run_id",
    "agent",
    "model",
    "provider",
    "issue_type",
    "status",
    "project",
    "team",
    "environment",
    "cost_source",
    "ended_at",
    "duration_seconds",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cost_usd",
    "llm_calls",
    "tool_calls",
    "confidence",
    "quality_score",
    "error_type",
    "error_summary",
)
COUNTS = (
    "runs",
    "successes",
    "cancelled",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "token_runs",
    "cost_runs",
    "llm_calls",
    "llm_runs",
    "tool_calls",
    "tool_runs",
    "confidence_runs",
    "quality_runs",
)
SUMS = ("duration_sum", "cost_sum", "confidence_sum", "quality_sum")
EXTREMES = ("duration_max", "first_ended_at", "last_ended_at")


def as_row(run: Run) -> dict[str, Any]:
    """The fields of a run the figures read, enums as their values."""
    return {name: getattr(getattr(run, name), "value", getattr(run, name)) for name in FIELDS}


def selected(rows: Iterable[Mapping[str, Any]], flt: RunFilter) -> list[Mapping[str, Any]]:
    """The rows `flt` looks at."""
    out = []
    for row in rows:
        if flt.start is not None and row["ended_at"] < flt.start:
            continue
        if flt.end is not None and row["ended_at"] >= flt.end:
            continue
        if all(row[name] in values for name, values in flt.dimensions):
            out.append(row)
    return out


def figures(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Every figure of `Aggregate` over `rows`, percentiles exact (percentile_cont)."""

    def total(name: str) -> Any:
        return sum(r[name] for r in rows if r[name] is not None)

    def present(*names: str) -> int:
        return sum(1 for r in rows if any(r[n] is not None for n in names))

    durations = sorted(r["duration_seconds"] for r in rows)
    ranked = {i + 1: v for i, v in enumerate(durations)}
    statuses: dict[str, int] = {}
    for r in rows:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    return {
        "runs": len(rows),
        "successes": statuses.get("success", 0),
        "cancelled": statuses.get("cancelled", 0),
        "statuses": statuses,
        "input_tokens": total("input_tokens"),
        "output_tokens": total("output_tokens"),
        "cache_read_tokens": total("cache_read_tokens"),
        "cache_write_tokens": total("cache_write_tokens"),
        "reasoning_tokens": total("reasoning_tokens"),
        "token_runs": present("input_tokens", "output_tokens"),
        "cost_runs": present("cost_usd"),
        "llm_calls": total("llm_calls"),
        "llm_runs": present("llm_calls"),
        "tool_calls": total("tool_calls"),
        "tool_runs": present("tool_calls"),
        "confidence_runs": present("confidence"),
        "quality_runs": present("quality_score"),
        "duration_sum": total("duration_seconds"),
        "cost_sum": total("cost_usd"),
        "confidence_sum": total("confidence"),
        "quality_sum": total("quality_score"),
        "duration_max": max(durations) if durations else None,
        "first_ended_at": min((r["ended_at"] for r in rows), default=None),
        "last_ended_at": max((r["ended_at"] for r in rows), default=None),
        "percentiles": {p: interpolate(len(durations), p, ranked) for p in PERCENTILES},
    }


def grouped(rows: Sequence[Mapping[str, Any]], by: Sequence[str]) -> dict[tuple[Any, ...], dict[str, Any]]:
    """`figures` per group of the fields `by`."""
    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row[name] for name in by), []).append(row)
    return {key: figures(members) for key, members in groups.items()}


def assert_matches(
    got: Aggregate, want: dict[str, Any], *, percentiles: bool = True, where: Any = ""
) -> None:
    """Counts equal, sums equal to the last bits of a float, percentiles within the sketch's error."""
    for name in COUNTS:
        assert getattr(got, name) == want[name], (where, name)
    assert got.statuses == want["statuses"], where
    for name in SUMS:
        assert getattr(got, name) == pytest.approx(want[name], rel=1e-9, abs=1e-9), (where, name)
    for name in EXTREMES:
        assert getattr(got, name) == want[name], (where, name)
    if percentiles:
        for p, exact in want["percentiles"].items():
            assert exact is not None
            estimate = got.duration_percentiles[p]
            assert estimate is not None, (where, p)
            # relative error within the stated accuracy; values under MIN_VALUE count as 0
            assert abs(estimate - exact) <= RELATIVE_ACCURACY * exact + MIN_VALUE, (where, p, estimate, exact)


def error_groups(rows: Iterable[Mapping[str, Any]], flt: RunFilter, limit: int) -> list[ErrorGroup]:
    """The health digest's failed runs by error type, the most first, then by name, the runs
    without a type last; each with its newest run (by end, then run id) as the example."""
    groups: dict[str | None, list[Mapping[str, Any]]] = {}
    for row in selected(rows, flt):
        if row["status"] in FAILED:
            groups.setdefault(row["error_type"], []).append(row)
    out = []
    for error_type, members in groups.items():
        latest = max(members, key=lambda r: (r["ended_at"], r["run_id"]))
        statuses: dict[str, int] = {}
        for r in members:
            statuses[r["status"]] = statuses.get(r["status"], 0) + 1
        out.append(
            ErrorGroup(
                error_type=error_type,
                runs=len(members),
                agents=len({r["agent"] for r in members}),
                first_seen=min(r["ended_at"] for r in members),
                last_seen=max(r["ended_at"] for r in members),
                statuses={s: statuses[s] for s in FAILED if s in statuses},
                latest_run_id=latest["run_id"],
                latest_agent=latest["agent"],
                latest_summary=latest["error_summary"],
            )
        )
    out.sort(key=lambda g: (-g.runs, g.error_type is None, g.error_type or ""))
    return out[:limit]
