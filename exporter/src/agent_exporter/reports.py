"""From aggregates to answers: figures, the performance report, trends and the health digest.

The database has already reduced the runs to a few rows per group (`queries`); this module folds
those rows into the objects of `read_models`, applying the statistics of `analytics`.

Success and failure follow the one definition of the product (docs/record.md, "What counts as a
failure"): failed is `failure`, `error` or `timeout`; `cancelled` runs are neither. Every success rate,
Wilson bound, minimum-attempts guard and failure ratio here is over `attempts` (runs minus cancelled),
as the Prometheus rules and alerts are; counts of runs, durations, tokens and cost keep every run.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from statistics import NormalDist
from typing import Any, Final, Literal, TypeVar

from . import read_models as m
from .aggregates import DAY, Aggregate, Bucket
from .analytics import (
    Trend,
    classify_trend,
    failure_rate_anomaly,
    ratio_anomaly,
    wilson_lower_bound,
    wilson_upper_bound,
)
from .queries import ErrorGroup, Streak
from .record import total_tokens

K = TypeVar("K", bound=Hashable)
TrendMetric = Literal["success_rate", "duration_seconds", "cost_per_run_usd", "tokens_per_run"]
AnomalyMetric = Literal[
    "failure_rate", "duration_p95_seconds", "cost_per_run_usd", "tokens_per_run", "silence"
]


def timestamp(value: float | None) -> datetime | None:
    """Unix seconds as an aware UTC datetime (None stays None)."""
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _utc(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator, or None over nothing."""
    return numerator / denominator if denominator else None


def money(value: float) -> float:
    """USD rounded to a millionth of a dollar: sums of floats otherwise show 1217.8999999999."""
    return round(value, 6)


def z_for(confidence: float) -> float:
    """The z of a two-sided interval of `confidence` (0.95 -> 1.96)."""
    return NormalDist().inv_cdf(1 - (1 - confidence) / 2)


def figures(a: Aggregate) -> m.Figures:
    """The standard figures of an aggregate."""
    return m.Figures(**_figures(a))


def group_figures(a: Aggregate) -> m.GroupFigures:
    """The standard figures of an aggregate of one group (its key's first value)."""
    return m.GroupFigures(group=a.key[0], **_figures(a))


def _figures(a: Aggregate) -> dict[str, Any]:
    """The fields of `read_models.Figures`, for it and the models extending it."""
    tokens = total_tokens(a.input_tokens, a.output_tokens)
    return {
        "runs": a.runs,
        "cancelled": a.cancelled,
        "attempts": a.attempts,
        "successes": a.successes,
        "failures": a.failures,
        "success_rate": ratio(a.successes, a.attempts),
        "statuses": dict(a.statuses),
        "duration_mean_seconds": ratio(a.duration_sum, a.runs),
        "duration_p50_seconds": a.duration_percentiles.get(0.5),
        "duration_p95_seconds": a.duration_percentiles.get(0.95),
        "duration_p99_seconds": a.duration_percentiles.get(0.99),
        "duration_max_seconds": a.duration_max,
        "input_tokens": a.input_tokens,
        "output_tokens": a.output_tokens,
        "total_tokens": tokens,
        "cache_read_tokens": a.cache_read_tokens,
        "cache_write_tokens": a.cache_write_tokens,
        "reasoning_tokens": a.reasoning_tokens,
        "tokens_per_run": ratio(tokens, a.token_runs),
        "cache_hit_ratio": ratio(a.cache_read_tokens, a.input_tokens),
        "cost_usd": money(a.cost_sum),
        "cost_per_run_usd": ratio(a.cost_sum, a.cost_runs),
        "cost_per_success_usd": ratio(a.cost_sum, a.successes) if a.cost_runs else None,
        "runs_without_cost": a.runs - a.cost_runs,
        "llm_calls": a.llm_calls,
        "llm_calls_per_run": ratio(a.llm_calls, a.llm_runs),
        "tool_calls": a.tool_calls,
        "tool_calls_per_run": ratio(a.tool_calls, a.tool_runs),
        "first_ended_at": timestamp(a.first_ended_at),
        "last_ended_at": timestamp(a.last_ended_at),
    }


def total(aggregates: Iterable[Aggregate]) -> Aggregate:
    """All the aggregates folded into one (percentiles dropped)."""
    out = Aggregate()
    for a in aggregates:
        out.add(a)
    return out


def fold(cells: Iterable[Aggregate], key: Callable[[Aggregate], K]) -> dict[K, Aggregate]:
    """Cells folded per `key`, in order of first appearance."""
    out: dict[K, Aggregate] = {}
    for cell in cells:
        out.setdefault(key(cell), Aggregate()).add(cell)
    return out


# --- timeseries -----------------------------------------------------------------------------------


def series(aggregates: Sequence[Aggregate], bucket: Bucket, indices: range) -> list[m.Series]:
    """A point per bucket of `indices` per group, empty buckets filled with zero runs; without
    aggregates, one series (of no group) of empty buckets."""
    per_group: dict[str | None, dict[int, Aggregate]] = {}
    order: dict[str | None, int] = defaultdict(int)
    for a in aggregates:
        group = a.key[0] if a.key else None
        assert a.bucket is not None
        per_group.setdefault(group, {})[a.bucket] = a
        order[group] += a.runs
    if not per_group and indices:
        per_group[None] = {}
    return [
        m.Series(
            group=group,
            points=[
                m.Point(
                    start=timestamp(bucket.start(index)),
                    **_figures(per_group[group].get(index) or Aggregate()),
                )
                for index in indices
            ],
        )
        for group in sorted(per_group, key=lambda g: (-order[g], g or ""))
    ]


# --- report ---------------------------------------------------------------------------------------


def rated(a: Aggregate, z: float) -> dict[str, Any]:
    """The fields of `read_models.Rated` of an aggregate: attempts, successes, the Wilson interval
    and cost, for the models extending it."""
    return {
        "runs": a.runs,
        "cancelled": a.cancelled,
        "attempts": a.attempts,
        "successes": a.successes,
        "failures": a.failures,
        "success_rate": ratio(a.successes, a.attempts),
        "success_rate_lower": wilson_lower_bound(a.successes, a.attempts, z) if a.attempts else None,
        "success_rate_upper": wilson_upper_bound(a.successes, a.attempts, z) if a.attempts else None,
        "cost_usd": money(a.cost_sum),
        "cost_per_run_usd": ratio(a.cost_sum, a.cost_runs),
        "cost_per_success_usd": ratio(a.cost_sum, a.successes) if a.cost_runs else None,
        "duration_mean_seconds": ratio(a.duration_sum, a.runs),
        "tokens_per_run": ratio(total_tokens(a.input_tokens, a.output_tokens), a.token_runs),
        "mean_confidence": ratio(a.confidence_sum, a.confidence_runs),
        "mean_quality_score": ratio(a.quality_sum, a.quality_runs),
    }


def _rank_key(a: Aggregate, name: str, z: float) -> tuple[float, int, str]:
    # highest lower bound first; among equal bounds (no success at all, or the same record: equal
    # bounds mean equal rates) more attempts, then the name, whatever order the groups came in
    return (-wilson_lower_bound(a.successes, a.attempts, z), -a.attempts, name)


def _pick(
    candidates: dict[tuple[str | None, str | None], Aggregate], min_attempts: int, z: float
) -> m.Pick | None:
    """The candidate (agent, model) with the best Wilson lower bound among those with at least
    `min_attempts` attempts (cancelled runs are not attempts)."""

    def name(key: tuple[str | None, str | None]) -> str:
        return " / ".join(part for part in key if part is not None)

    qualified = sorted(
        ((key, a) for key, a in candidates.items() if a.attempts >= min_attempts),
        key=lambda item: _rank_key(item[1], name(item[0]), z),
    )
    if not qualified:
        return None
    (agent, model), best = qualified[0]
    out = m.Pick(name=name((agent, model)), agent=agent, model=model, **rated(best, z))
    if len(qualified) > 1:
        second_key, second = qualified[1]
        out.runner_up = name(second_key)
        out.runner_up_success_rate_lower = wilson_lower_bound(second.successes, second.attempts, z)
    return out


def _pair(agent: str | None, model: str | None) -> tuple[str | None, str | None]:
    return agent, model


def _names(values: Iterable[str | None]) -> list[str]:
    return sorted({v for v in values if v is not None})


def build_report(
    cells: Sequence[Aggregate],
    *,
    min_attempts: int,
    confidence: float,
    generated_at: datetime,
    filters: m.Filters,
) -> m.ReportOut:
    """The performance report from aggregates per (agent, model, issue_type)."""
    z = z_for(confidence)
    everything = total(cells)

    def by_runs(groups: dict[K, Aggregate]) -> list[tuple[K, Aggregate]]:
        return sorted(groups.items(), key=lambda item: (-item[1].runs, str(item[0])))

    agents = fold(cells, lambda c: c.key[0])
    models = fold(cells, lambda c: c.key[1])
    issue_types = fold(cells, lambda c: c.key[2])

    def related(position: int, value: str | None, other: int) -> list[str]:
        return _names(c.key[other] for c in cells if c.key[position] == value)

    by_agent = [
        m.AgentRow(agent=agent, issue_types=related(0, agent, 2), models=related(0, agent, 1), **rated(a, z))
        for agent, a in by_runs(agents)
    ]
    by_model = [
        m.ModelRow(
            model=model,
            issue_types=related(1, model, 2),
            agents=related(1, model, 0),
            sufficient=a.attempts >= min_attempts,
            **rated(a, z),
        )
        for model, a in by_runs(models)
    ]
    by_issue_type = [
        m.IssueTypeRow(
            issue_type=issue_type,
            agents=related(2, issue_type, 0),
            models=related(2, issue_type, 1),
            **rated(a, z),
        )
        for issue_type, a in by_runs(issue_types)
    ]

    recommendations = []
    matchups = []
    for issue_type, a in by_runs(issue_types):
        mine = [c for c in cells if c.key[2] == issue_type]
        per_agent = fold(mine, lambda c: _pair(c.key[0], None))
        per_model = fold((c for c in mine if c.key[1] is not None), lambda c: _pair(None, c.key[1]))
        per_pair = fold(mine, lambda c: _pair(c.key[0], c.key[1]))
        recommendations.append(
            m.Recommendation(
                issue_type=issue_type,
                runs=a.runs,
                attempts=a.attempts,
                agent=_pick(per_agent, min_attempts, z),
                model=_pick(per_model, min_attempts, z),
                combination=_pick(per_pair, min_attempts, z),
                candidates=sum(1 for p in per_pair.values() if p.attempts >= min_attempts),
                below_min_attempts=sum(1 for p in per_pair.values() if p.attempts < min_attempts),
            )
        )
        cells_by_model = fold(mine, lambda c: c.key[1])
        leader = _pick(
            {(None, model): cm for model, cm in cells_by_model.items() if model is not None}, min_attempts, z
        )
        matchups.append(
            m.ModelMatchup(
                issue_type=issue_type,
                models=[m.ModelCell(model=model, **rated(cm, z)) for model, cm in by_runs(cells_by_model)],
                leader=leader.model if leader else None,
            )
        )

    return m.ReportOut(
        generated_at=generated_at,
        filters=filters,
        min_attempts=min_attempts,
        confidence=confidence,
        summary=m.ReportSummary(
            total_runs=everything.runs,
            total_cancelled=everything.cancelled,
            total_attempts=everything.attempts,
            total_successful=everything.successes,
            total_failed=everything.failures,
            overall_success_rate=ratio(everything.successes, everything.attempts),
            total_agents=len(agents),
            total_issue_types=len([k for k in issue_types if k is not None]),
            total_models=len([k for k in models if k is not None]),
            total_cost_usd=money(everything.cost_sum),
            cost_per_success_usd=(
                ratio(everything.cost_sum, everything.successes) if everything.cost_runs else None
            ),
            runs_without_cost=everything.runs - everything.cost_runs,
        ),
        by_agent=by_agent,
        by_issue_type=by_issue_type,
        by_model=by_model,
        recommendations=recommendations,
        model_comparison=m.ModelComparison(models=by_model, by_issue_type=matchups),
    )


# --- trends ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """How to read one trend metric off a day's aggregate."""

    name: TrendMetric
    higher_is_better: bool
    value: Callable[[Aggregate], float | None]


TREND_METRICS: Final = (
    MetricSpec("success_rate", True, lambda a: ratio(a.successes, a.attempts)),
    MetricSpec("duration_seconds", False, lambda a: ratio(a.duration_sum, a.runs)),
    MetricSpec("cost_per_run_usd", False, lambda a: ratio(a.cost_sum, a.cost_runs)),
    MetricSpec(
        "tokens_per_run", False, lambda a: ratio(total_tokens(a.input_tokens, a.output_tokens), a.token_runs)
    ),
)


def build_trends(
    days: Sequence[Aggregate],
    *,
    origin: float,
    end: float,
    windows: Sequence[int],
    thresholds: dict[str, float],
    min_points: int,
) -> list[m.WindowTrend]:
    """Rolling windows ending at `end`, from daily aggregates whose buckets count from `origin`.

    Day `i` covers [origin + i·86400, origin + (i+1)·86400); `origin` is `end` minus the longest
    window, so every window is a whole number of these days.
    """
    span = round((end - origin) / DAY)
    out = []
    for window in windows:
        first = span - window
        inside = [a for a in days if a.bucket is not None and a.bucket >= first]
        whole = total(inside)
        metrics = []
        for spec in TREND_METRICS:
            points = [
                (float(a.bucket), value)
                for a in inside
                if a.bucket is not None and (value := spec.value(a)) is not None
            ]
            fit = classify_trend(
                points,
                window_days=window,
                threshold=thresholds[spec.name],
                higher_is_better=spec.higher_is_better,
                min_points=min_points,
            )
            metrics.append(
                m.MetricTrend(
                    metric=spec.name,
                    higher_is_better=spec.higher_is_better,
                    current=spec.value(whole) if whole.runs else None,
                    data_points=fit.points,
                    trend=fit.trend.value,
                    slope_per_day=fit.slope_per_day,
                    level=fit.level,
                    change=fit.change,
                    relative_change=fit.relative_change,
                    threshold=thresholds[spec.name],
                )
            )
        data_points = sum(1 for a in inside if a.runs)
        out.append(
            m.WindowTrend(
                days=window,
                from_=_utc(end - window * DAY),
                to=_utc(end),
                runs=whole.runs,
                data_points=data_points,
                status="ok" if data_points >= min_points else Trend.INSUFFICIENT.value,
                metrics=metrics,
            )
        )
    return out


# --- health ---------------------------------------------------------------------------------------


def human_duration(seconds: float) -> str:
    """A short human duration: 45s, 12m, 24h, 7d (days from two days on, hours from two hours on)."""
    seconds = max(0.0, seconds)
    for unit, size in (("d", DAY), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size or (seconds >= size and unit == "m"):
            count = seconds / size
            return f"{count:.0f}{unit}" if count >= 10 or count.is_integer() else f"{count:.1f}{unit}"
    return f"{seconds:.0f}s"


def totals(a: Aggregate) -> m.Totals:
    """The compact counts of a period."""
    return m.Totals(
        runs=a.runs,
        cancelled=a.cancelled,
        attempts=a.attempts,
        successes=a.successes,
        failures=a.failures,
        success_rate=ratio(a.successes, a.attempts),
        cost_usd=money(a.cost_sum),
        duration_p95_seconds=a.duration_percentiles.get(0.95),
    )


def period(start: float, end: float) -> m.Period:
    """[start, end) as the response names it."""
    return m.Period(from_=_utc(start), to=_utc(end))


@dataclass(frozen=True, slots=True)
class AnomalyRules:
    """When a window's figure counts as anomalous against its baseline."""

    min_runs: int = 5
    ratio: float = 1.5
    min_increase: float = 0.10


def anomalies(
    window: dict[str, Aggregate],
    baseline: dict[str, Aggregate],
    *,
    rules: AnomalyRules,
    window_seconds: float,
    baseline_seconds: float,
) -> list[m.AnomalyOut]:
    """Per agent: failure rate, p95 duration, cost and tokens per run, and silence, against baseline.

    The failure rate is over attempts (cancelled runs left out) and needs `min_runs` attempts on
    each side; silence, duration, cost and tokens look at every run, cancelled ones included.
    """
    w_label, b_label = human_duration(window_seconds), human_duration(baseline_seconds)
    found: list[m.AnomalyOut] = []

    def add(agent: str, metric: AnomalyMetric, now: float, before: float, message: str) -> None:
        found.append(
            m.AnomalyOut(agent=agent, metric=metric, window_value=now, baseline_value=before, message=message)
        )

    for agent in sorted(set(window) | set(baseline)):
        w, b = window.get(agent, Aggregate()), baseline.get(agent, Aggregate())
        expected = b.runs * window_seconds / baseline_seconds
        if w.runs == 0 and b.runs >= rules.min_runs and expected >= rules.min_runs:
            add(
                agent,
                "silence",
                0,
                expected,
                f"{agent}: no runs in the last {w_label}; about {expected:.0f} expected from the "
                f"{b.runs} runs of the {b_label} before",
            )
            continue
        if failure_rate_anomaly(
            w.failures,
            w.attempts,
            b.failures,
            b.attempts,
            min_attempts=rules.min_runs,
            min_increase=rules.min_increase,
        ):
            now, before = w.failures / w.attempts, b.failures / b.attempts
            left_out = f", {w.cancelled} cancelled left out" if w.cancelled else ""
            add(
                agent,
                "failure_rate",
                now,
                before,
                f"{agent}: failure rate {now:.0%} ({w.failures} of {w.attempts} runs{left_out}) in the last "
                f"{w_label} against {before:.0%} in the {b_label} before",
            )
        if w.runs >= rules.min_runs and b.runs >= rules.min_runs:
            p95_now, p95_before = w.duration_percentiles.get(0.95), b.duration_percentiles.get(0.95)
            if ratio_anomaly(p95_now, p95_before, rules.ratio):
                assert p95_now is not None
                assert p95_before is not None
                add(
                    agent,
                    "duration_p95_seconds",
                    p95_now,
                    p95_before,
                    f"{agent}: p95 duration {human_duration(p95_now)} in the last {w_label}, "
                    f"{p95_now / p95_before:.1f}× the {human_duration(p95_before)} of the {b_label} before",
                )
        if w.cost_runs >= rules.min_runs and b.cost_runs >= rules.min_runs:
            now_c, before_c = w.cost_sum / w.cost_runs, b.cost_sum / b.cost_runs
            if ratio_anomaly(now_c, before_c, rules.ratio):
                add(
                    agent,
                    "cost_per_run_usd",
                    now_c,
                    before_c,
                    f"{agent}: USD {now_c:.2f} per run in the last {w_label}, {now_c / before_c:.1f}× the "
                    f"USD {before_c:.2f} of the {b_label} before",
                )
        if w.token_runs >= rules.min_runs and b.token_runs >= rules.min_runs:
            now_t = total_tokens(w.input_tokens, w.output_tokens) / w.token_runs
            before_t = total_tokens(b.input_tokens, b.output_tokens) / b.token_runs
            if ratio_anomaly(now_t, before_t, rules.ratio):
                add(
                    agent,
                    "tokens_per_run",
                    now_t,
                    before_t,
                    f"{agent}: {now_t:,.0f} tokens per run in the last {w_label}, {now_t / before_t:.1f}× "
                    f"the {before_t:,.0f} of the {b_label} before",
                )
    return found


def streak_out(s: Streak) -> m.StreakOut:
    """A failure streak as the response shows it."""
    return m.StreakOut(
        agent=s.agent,
        failures=s.failures,
        since=_utc(s.since),
        last=_utc(s.last),
        at_least=s.bounded,
        cancelled=s.cancelled,
        error_types=s.error_types,
    )


def error_group_out(g: ErrorGroup) -> m.ErrorGroupOut:
    """An error group as the response shows it."""
    return m.ErrorGroupOut(
        error_type=g.error_type,
        runs=g.runs,
        agents=g.agents,
        statuses=g.statuses,
        first_seen=_utc(g.first_seen),
        last_seen=_utc(g.last_seen),
        latest_run_id=g.latest_run_id,
        latest_agent=g.latest_agent,
        latest_summary=g.latest_summary,
    )


def findings(
    *,
    window_label: str,
    window_totals: Aggregate,
    streaks: Sequence[Streak],
    anomalies_found: Sequence[m.AnomalyOut],
    last_failure: m.Failure | None,
    errors: Sequence[ErrorGroup],
    as_of: float,
) -> list[str]:
    """The digest in sentences, most important first."""
    out = []
    w = window_totals
    cost = f", USD {w.cost_sum:,.2f}" if w.cost_runs else ""
    if w.attempts:
        cancelled = f" ({w.cancelled} cancelled, left out of the rate)" if w.cancelled else ""
        out.append(
            f"Last {window_label}: {_plural(w.runs, 'run')}{cancelled}, "
            f"{w.successes / w.attempts:.0%} succeeded ({w.successes} of {w.attempts}), "
            f"{w.failures} failed{cost}."
        )
    elif w.runs:
        out.append(f"Last {window_label}: {_plural(w.runs, 'run')}, all cancelled{cost}.")
    else:
        out.append(f"Last {window_label}: no runs.")
    for s in streaks:
        kinds = f"; error types: {', '.join(s.error_types)}" if s.error_types else ""
        more = "at least " if s.bounded else ""
        aside = f" ({_plural(s.cancelled, 'cancelled run')} ignored)" if s.cancelled else ""
        out.append(
            f"{s.agent} has failed its last {more}{s.failures} runs{aside}, since "
            f"{human_duration(as_of - s.since)} ago{kinds}."
        )
    out += [f"{a.message}." for a in anomalies_found]
    if last_failure is not None:
        why = last_failure.error_type or f"status {last_failure.status.value}"
        summary = last_failure.error_summary
        detail = f": {_first_line(summary)}" if summary else ""
        out.append(
            f"Most recent failure: run {last_failure.run_id} ({last_failure.agent}), "
            f"{human_duration(last_failure.age_seconds)} ago, {why}{detail}."
        )
    if errors:
        top = errors[0]
        out.append(
            f"Most frequent error in the last {window_label}: {top.error_type or 'unspecified'} "
            f"({_plural(top.runs, 'run')}, {_plural(top.agents, 'agent')})."
        )
    return out


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _first_line(text: str, limit: int = 200) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"
