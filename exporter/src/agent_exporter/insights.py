"""The read side's answers to the seeds: scores over runs (per name, and `quality` and
`collaboration` composed by `scoring`'s strategies), their daily means for trends, and the seed-004
questions (first-attempt pipelines, debugging cycles per issue, retries per sub-agent, what failed
runs cost, success by model).

Pipelines and debugging cycles come from the rollups' facts (`Aggregate.pipeline_*`,
`debugging_*`); scores and sub-agents are read from their own tables joined to the runs, so that the
run filters (agent, team, project, time, ...) apply to them: they are few per run, and a run
deleted by retention takes its scores and sub-agents with it (docs/scores.md).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, Float, cast, func, literal_column, select, text

from . import schema
from .aggregates import Aggregate, facts, summary
from .analytics import classify_trend
from .budgets import OwnerBudget, period_bounds, projected
from .queries import FAILED, RunFilter
from .scoring import Evidence, Mean, Strategies

R = schema.runs
S = schema.run_scores
SUB = schema.run_subagents
DBG = schema.run_debugging_cycles
DAY = 86400


class _Out(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class NamedScore(_Out):
    """The scores of one name from one source over the filtered runs."""

    name: str
    source: str | None = None
    scores: int
    mean: float


class ScoreFigures(_Out):
    """Scores given after the runs, and the named scores the strategies compose from them."""

    quality: float | None = Field(
        None, description="layered: the sources' mean quality scores and the runs' own"
    )
    collaboration: float | None = Field(
        None, description="layered: peer collaboration scores, sub-agent success, debugging cycles resolved"
    )
    scores: int = Field(description="scores given to the filtered runs")
    by_name: list[NamedScore] = Field(default_factory=list, description="per name and source, most first")


class GroupScores(ScoreFigures):
    """The scores of one value of a dimension (an agent, a team, a project)."""

    key: str | None


class SubagentRetries(_Out):
    """One sub-agent's work over the filtered runs."""

    name: str
    runs: int = Field(description="runs that reported this sub-agent")
    attempts: int
    failures: int
    retries: int
    retries_per_run: float


class WorkflowAnswers(_Out):
    """Seed 004's questions, answered over the filtered runs."""

    pipeline_runs: int = Field(description="runs that reported pipeline attempts (one run handles one issue)")
    pipeline_attempts: int
    first_attempt_passed: int = Field(description="runs whose first pipeline attempt succeeded")
    first_attempt_pass_rate: float | None = Field(None, description="first_attempt_passed / pipeline_runs")
    debugging_runs: int = Field(
        description="runs that reported pipeline attempts or debugging cycles: the issues tracked"
    )
    debugging_cycles: int
    debugging_cycles_per_issue: float | None = Field(None, description="debugging_cycles / debugging_runs")
    subagents: list[SubagentRetries] = Field(default_factory=list, description="most retries first")
    most_retries: str | None = Field(
        None, description="the sub-agent that causes most retries (none: no retry)"
    )
    cost_usd: float = Field(description="known cost of every filtered run")
    failed_cost_usd: float = Field(description="known cost of the runs that failed (failure, error, timeout)")
    failed_cost_share: float | None = Field(None, description="failed_cost_usd / cost_usd")
    failed_cost_sentence: str = Field(description='"USD X of Y went to runs that failed"')


def _joined(table: Any, flt: RunFilter) -> Any:
    """`table` joined to its runs, read from `table` (few rows) into the runs by their key: the
    child's side of the condition is an expression, so no plan can walk the runs (a million rows)
    and probe the child table per run, which SQLite chose when the child table was empty."""
    return table.join(R, R.c.run_id == table.c.run_id.concat("")), flt.conditions()


def evidence(
    conn: Connection, flt: RunFilter, by: str | None = None, rollup: Sequence[Aggregate] | None = None
) -> dict[str | None, Evidence]:
    """The strategies' evidence over the filtered runs, per value of the dimension `by` (one group,
    keyed None, without). `rollup`, the rollups' aggregates of the same filter and grouping if the
    caller has them, saves reading them again."""
    out: dict[str | None, Evidence] = defaultdict(Evidence)
    group = [R.c[by]] if by else []

    def key(row: Any) -> str | None:
        return row[0] if by else None

    source, where = _joined(S, flt)
    # grouped by the output's names: PostgreSQL sees two coalesce(source, $n) as two expressions
    src = func.coalesce(S.c.source, literal_column("''")).label("src")
    query = select(*group, S.c.name, src, func.sum(S.c.value), func.count())
    query = query.select_from(source).where(*where).group_by(*group, S.c.name, text("src"))
    for row in conn.execute(query):
        name, src, total, count = row[-4:]
        out[key(row)].scores.setdefault((name, src), Mean()).add(float(total), int(count))
    if rollup is None:
        rollup = facts(conn, flt, (by,) if by else ())
    for agg in rollup:  # the runs' own quality: rollup facts
        if agg.quality_runs:
            out[agg.key[0] if by else None].self_quality.add(agg.quality_sum, agg.quality_runs)
    source, where = _joined(SUB, flt)
    subs = (
        select(*group, func.sum(SUB.c.successes), func.sum(SUB.c.attempts)).select_from(source).where(*where)
    )
    for row in conn.execute(subs.group_by(*group)):
        if row[-1] is not None:
            e = out[key(row)]
            e.subagent_successes, e.subagent_attempts = int(row[-2]), int(row[-1])
    source, where = _joined(DBG, flt)
    cycles = select(*group, func.sum(DBG.c.resolved), func.count()).select_from(source).where(*where)
    for row in conn.execute(cycles.group_by(*group)):
        if row[-1]:
            e = out[key(row)]
            e.cycles_resolved, e.cycles = int(row[-2]), int(row[-1])
    return dict(out)


def figures(evidence: Evidence, strategies: Strategies) -> ScoreFigures:
    """The score figures of one group's evidence."""
    named = [
        NamedScore(name=name, source=source or None, scores=mean.count, mean=mean.total / mean.count)
        for (name, source), mean in evidence.scores.items()
        if mean.count
    ]
    named.sort(key=lambda n: (-n.scores, n.name, n.source or ""))
    return ScoreFigures(
        quality=strategies.quality.quality(evidence),
        collaboration=strategies.collaboration.collaboration(evidence),
        scores=sum(n.scores for n in named),
        by_name=named,
    )


def score_figures(
    conn: Connection, flt: RunFilter, strategies: Strategies, overall: Sequence[Aggregate] | None = None
) -> ScoreFigures:
    """The scores over every filtered run (`overall`: `aggregates.summary(conn, flt)`, if read)."""
    return figures(evidence(conn, flt, None, overall).get(None, Evidence()), strategies)


def group_scores(
    conn: Connection,
    flt: RunFilter,
    by: str,
    strategies: Strategies,
    groups: Sequence[Aggregate] | None = None,
) -> list[GroupScores]:
    """The scores per value of `by` (agent, team, project, ...), most scored first (`groups`:
    `aggregates.summary(conn, flt, (by,))`, if read)."""
    found = evidence(conn, flt, by, groups)
    scored = [GroupScores(key=k, **figures(e, strategies).model_dump()) for k, e in found.items()]
    return sorted(scored, key=lambda g: (-g.scores, g.key or ""))


def daily_score_means(conn: Connection, flt: RunFilter, origin: float) -> dict[str, list[tuple[int, float]]]:
    """Per score name, (day, mean) of the scores of runs that ended on each UTC day counted from
    `origin`; days without scores are absent."""
    day = cast(func.floor((R.c.ended_at - origin) / DAY), Float).label("day")
    source, where = _joined(S, flt)
    query = select(S.c.name, day, func.avg(S.c.value)).select_from(source).where(*where)
    out: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for name, d, mean in conn.execute(query.group_by(S.c.name, text("day")).order_by(S.c.name, text("day"))):
        out[name].append((int(d), float(mean)))
    return dict(out)


class ScoreTrend(_Out):
    """One score name over one rolling window: the Theil-Sen trend of its daily means."""

    days: int
    name: str
    current: float | None = Field(None, description="mean of the daily means in the window")
    data_points: int = Field(description="days of the window with scores")
    trend: str = Field(description="improving, stable, declining or insufficient data")
    slope_per_day: float | None = None
    relative_change: float | None = None


def score_trends(
    days: dict[str, list[tuple[int, float]]],
    *,
    span: int,
    windows: Sequence[int],
    min_points: int,
    threshold: float,
) -> list[ScoreTrend]:
    """Per window and score name, the Theil-Sen trend of the daily means (higher is better)."""
    out = []
    for window in windows:
        first = span - window
        for name, points in sorted(days.items()):
            inside = [(float(d), v) for d, v in points if d >= first]
            fit = classify_trend(
                inside, window_days=window, threshold=threshold, higher_is_better=True, min_points=min_points
            )
            out.append(
                ScoreTrend(
                    days=window,
                    name=name,
                    current=sum(v for _, v in inside) / len(inside) if inside else None,
                    data_points=fit.points,
                    trend=fit.trend.value,
                    slope_per_day=fit.slope_per_day,
                    relative_change=fit.relative_change,
                )
            )
    return out


def subagent_retries(conn: Connection, flt: RunFilter, limit: int = 50) -> list[SubagentRetries]:
    """Retries per sub-agent over the filtered runs, most first (ties by name)."""
    source, where = _joined(SUB, flt)
    retries = func.sum(SUB.c.retries)
    query = (
        select(
            SUB.c.name,
            func.count(func.distinct(SUB.c.run_id)),
            func.sum(SUB.c.attempts),
            func.sum(SUB.c.failures),
            retries,
        )
        .select_from(source)
        .where(*where)
        .group_by(SUB.c.name)
        .order_by(retries.desc(), SUB.c.name)
        .limit(limit)
    )
    return [
        SubagentRetries(
            name=name,
            runs=int(runs),
            attempts=int(attempts),
            failures=int(failures),
            retries=int(r),
            retries_per_run=int(r) / int(runs),
        )
        for name, runs, attempts, failures, r in conn.execute(query)
    ]


class BudgetOut(_Out):
    """One owner's budget: spend so far in the current period, and projected to its end."""

    owner: str = Field(description="team, project or agent")
    name: str
    period: str = Field(description="day or month (UTC)")
    budget_usd: float
    period_start: float = Field(description="Unix seconds")
    period_end: float
    spent_usd: float = Field(description="known cost of the owner's runs that ended in the period so far")
    spent_share: float = Field(description="spent / budget")
    projected_usd: float = Field(description="the spend at the period's end at the pace so far")
    projected_share: float
    over_budget: bool = Field(description="the projection exceeds the budget")


def budget_view(conn: Connection, budgets: Sequence[OwnerBudget], now: float) -> list[BudgetOut]:
    """Each budget's spend in its current period (from the rollups) and its projection."""
    out = []
    for b in budgets:
        start, end = period_bounds(b.period, now)
        flt = RunFilter.of(start, now + 1, **{b.owner: [b.name]})
        whole = summary(conn, flt)
        spent = whole[0].cost_sum if whole else 0.0
        proj = projected(spent, start, end, now)
        out.append(
            BudgetOut(
                owner=b.owner,
                name=b.name,
                period=b.period,
                budget_usd=b.usd,
                period_start=start,
                period_end=end,
                spent_usd=spent,
                spent_share=spent / b.usd,
                projected_usd=proj,
                projected_share=proj / b.usd,
                over_budget=proj > b.usd,
            )
        )
    return out


def workflow(
    whole: Aggregate, by_status: Sequence[Aggregate], subagents: list[SubagentRetries]
) -> WorkflowAnswers:
    """The seed-004 answers from the rollups' aggregate of every filtered run, its aggregates per
    status (`key` = (status,)), and the sub-agents' retries."""
    cost = sum(a.cost_sum for a in by_status)
    failed = sum(a.cost_sum for a in by_status if a.key and a.key[0] in FAILED)
    top = subagents[0] if subagents and subagents[0].retries else None
    return WorkflowAnswers(
        pipeline_runs=whole.pipeline_runs,
        pipeline_attempts=whole.pipeline_attempts,
        first_attempt_passed=whole.pipeline_first_pass,
        first_attempt_pass_rate=whole.pipeline_first_pass / whole.pipeline_runs
        if whole.pipeline_runs
        else None,
        debugging_runs=whole.debugging_runs,
        debugging_cycles=whole.debugging_cycles,
        debugging_cycles_per_issue=whole.debugging_cycles / whole.debugging_runs
        if whole.debugging_runs
        else None,
        subagents=subagents,
        most_retries=top.name if top else None,
        cost_usd=cost,
        failed_cost_usd=failed,
        failed_cost_share=failed / cost if cost else None,
        failed_cost_sentence=f"USD {failed:,.2f} of {cost:,.2f} went to runs that failed",
    )
