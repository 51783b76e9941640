"""Response models of the read API: what `/api/v1/runs`, `/summary`, `/timeseries`, `/report`,
`/trends`, `/health` and `/reprice` answer, documented field by field in the OpenAPI document.

Times are RFC 3339 in UTC; money is USD; rates are fractions (0.42, not 42 %); durations are seconds.
A figure that cannot be computed (a rate over no runs, a cost nobody knows) is null, never 0.

A failed run is status `failure`, `error` or `timeout`; a `cancelled` run is neither a success nor a
failure. `runs` counts every run; `attempts` = runs - cancelled is the denominator of every success
rate, Wilson bound and minimum-attempts guard, as in the Prometheus rules and alerts (docs/record.md,
"What counts as a failure").
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .insights import GroupScores, ScoreFigures, ScoreTrend, WorkflowAnswers
from .record import CostSource, Status


class _Out(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class ErrorDetail(_Out):
    """What went wrong."""

    code: str = Field(description="machine-readable: not_found, invalid_request, ...")
    message: str = Field(description="a sentence for a human, naming the field and the rule")


class Error(_Out):
    """The shape of every request-level error."""

    error: ErrorDetail


class Filters(_Out):
    """The filters a response was computed with, echoed so that a reader knows what it looks at."""

    from_: datetime | None = Field(None, alias="from", description="runs that ended at or after this")
    to: datetime | None = Field(None, description="runs that ended before this")
    agent: list[str] = Field(default_factory=list)
    model: list[str] = Field(default_factory=list)
    provider: list[str] = Field(default_factory=list)
    issue_type: list[str] = Field(default_factory=list)
    status: list[str] = Field(default_factory=list)
    project: list[str] = Field(default_factory=list)
    team: list[str] = Field(default_factory=list)
    environment: list[str] = Field(default_factory=list)


# --- runs ---------------------------------------------------------------------------------------


class RunSummary(_Out):
    """One run in a listing."""

    run_id: str
    agent: str
    agent_version: str | None = None
    model: str | None = None
    provider: str | None = None
    issue_type: str | None = None
    project: str | None = None
    team: str | None = None
    environment: str | None = None
    status: Status
    started_at: datetime
    ended_at: datetime
    duration_seconds: float
    input_tokens: int | None = Field(None, description="inclusive of cache reads and writes")
    output_tokens: int | None = Field(None, description="inclusive of reasoning")
    total_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    cost_usd: float | None = Field(None, description="null when nobody knows it (cost_source unknown)")
    cost_source: CostSource
    llm_calls: int | None = None
    tool_calls: int | None = None
    retries: int | None = None
    error_type: str | None = None
    error_summary: str | None = None
    session_id: str | None = Field(None, description="the conversation or job the run belongs to")
    parent_run_id: str | None = Field(None, description="the run that started this one (a sub-run)")
    counts: dict[str, int] = Field(
        default_factory=dict, description="domain objects the run produced: candidates, scenarios, ..."
    )


class RunPage(_Out):
    """A page of runs, newest first."""

    runs: list[RunSummary]
    next_cursor: str | None = Field(
        None, description="pass as `cursor` for the next (older) page; null on the last page"
    )


class UsageOut(_Out):
    """One model's share of a run."""

    model: str
    provider: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    cost_usd: float | None = None
    cost_source: CostSource
    calls: int | None = None


class ToolOut(_Out):
    """Calls to one tool during a run."""

    name: str
    calls: int
    errors: int
    duration_seconds: float | None = None


class PhaseOut(_Out):
    """One phase of a run."""

    name: str
    duration_seconds: float
    status: Status | None = None


class SubagentOut(_Out):
    """One sub-agent inside a run."""

    name: str
    attempts: int
    successes: int
    failures: int
    retries: int
    duration_seconds: float | None = None


class PipelineAttemptOut(_Out):
    """One pipeline attempt of a run, in order."""

    status: str = Field(description="success, failure, error or cancelled")
    id: str | None = None
    commit: str | None = None
    duration_seconds: float | None = None


class DebuggingCycleOut(_Out):
    """A failure the run had to rework."""

    agent: str | None = None
    error_type: str | None = None
    attempts: int
    resolved: bool
    duration_seconds: float | None = None


class ChildTotalsOut(_Out):
    """What a run's direct children add up to. They are runs in their own right: every figure of
    the API (summary, report, metrics) counts each child once as itself and never again inside its
    parent, so these totals are for reading, never to be added to the parent's own figures."""

    runs: int
    failures: int = Field(description="children that failed (failure, error or timeout)")
    duration_seconds: float = Field(description="sum of the children's durations (they may overlap)")
    cost_usd: float | None = Field(None, description="sum of the children's known costs")
    input_tokens: int | None = None
    output_tokens: int | None = None


class Derived(_Out):
    """Figures derived from the run's own numbers."""

    total_tokens: int | None = Field(None, description="input + output")
    uncached_input_tokens: int | None = Field(None, description="input minus cache reads and writes")
    cache_hit_ratio: float | None = Field(None, description="cache reads / input tokens")
    tokens_per_llm_call: float | None = None
    cost_per_llm_call_usd: float | None = None
    tool_errors: int = Field(0, description="errors summed over the per-tool breakdown")
    tool_error_rate: float | None = Field(None, description="tool errors / tool calls of the breakdown")
    phases_seconds: float | None = Field(None, description="sum of the phase durations")
    slowest_phase: str | None = None
    ingest_lag_seconds: float = Field(description="received_at - ended_at")


class RunDetailOut(RunSummary):
    """One run with everything stored about it."""

    quality_score: float | None = None
    confidence: float | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    received_at: datetime
    ended_at_reported: bool = Field(
        True,
        description="false when the agent sent neither ended_at nor started_at, and ended_at is the "
        "receipt time",
    )
    usage: list[UsageOut] = Field(default_factory=list, description="per-model breakdown")
    tools: list[ToolOut] = Field(default_factory=list, description="per-tool breakdown")
    phases: list[PhaseOut] = Field(default_factory=list)
    subagents: list[SubagentOut] = Field(default_factory=list, description="sub-agents inside the run")
    pipeline_attempts: list[PipelineAttemptOut] = Field(default_factory=list, description="in order")
    debugging_cycles: list[DebuggingCycleOut] = Field(default_factory=list)
    children: list[RunSummary] = Field(
        default_factory=list, description="runs whose parent_run_id is this run, oldest first (at most 200)"
    )
    children_totals: ChildTotalsOut | None = Field(None, description="null for a run without children")
    derived: Derived


class ScoreOut(_Out):
    """One score given to a run after it ended."""

    score_id: str = Field(description="the client's, or a digest of the score when it sent none")
    name: str = Field(description="quality, collaboration, helpfulness, ...")
    value: float = Field(description="0..1")
    source: str | None = Field(None, description="review, evaluation, peer, human, ...")
    comment: str | None = None
    author: str | None = None
    received_at: datetime


class ScoresOut(_Out):
    """The scores of one run."""

    run_id: str
    scores: list[ScoreOut]


# --- summaries ------------------------------------------------------------------------------------


_RUNS = "every run, cancelled ones included"
_CANCELLED = "runs stopped by someone (status cancelled): neither successes nor failures"
_ATTEMPTS = "runs - cancelled: the runs with a verdict, the denominator of the success rate"
_FAILURES = "failed runs (status failure, error or timeout) = attempts - successes"
_SUCCESS_RATE = "successes / attempts (cancelled runs left out); null without attempts"


class Figures(_Out):
    """The standard figures over a set of runs."""

    runs: int = Field(description=_RUNS)
    cancelled: int = Field(description=_CANCELLED)
    attempts: int = Field(description=_ATTEMPTS)
    successes: int
    failures: int = Field(description=_FAILURES)
    success_rate: float | None = Field(None, description=_SUCCESS_RATE)
    statuses: dict[str, int] = Field(default_factory=dict, description="runs per status")
    duration_mean_seconds: float | None = None
    duration_p50_seconds: float | None = None
    duration_p95_seconds: float | None = None
    duration_p99_seconds: float | None = None
    duration_max_seconds: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    tokens_per_run: float | None = Field(None, description="over the runs that reported tokens")
    cache_hit_ratio: float | None = Field(None, description="cache reads / input tokens")
    cost_usd: float = Field(0.0, description="sum of the known costs")
    cost_per_run_usd: float | None = Field(None, description="over the runs whose cost is known")
    cost_per_success_usd: float | None = Field(
        None,
        description="total cost / successful runs: what one success costs, failed attempts and cancelled "
        "runs included",
    )
    runs_without_cost: int = Field(0, description="runs whose cost is unknown (not counted as zero)")
    llm_calls: int = 0
    llm_calls_per_run: float | None = None
    tool_calls: int = 0
    tool_calls_per_run: float | None = None
    first_ended_at: datetime | None = None
    last_ended_at: datetime | None = None


class GroupFigures(Figures):
    """The figures of one group."""

    group: str | None = Field(description="the group's value; null for runs without one")


class SummaryOut(_Out):
    """Figures over the filtered runs, overall and per group."""

    filters: Filters
    summary: Figures
    group_by: str | None = None
    groups: list[GroupFigures] = Field(default_factory=list, description="largest group first")
    scores: ScoreFigures | None = Field(
        None, description="scores given after the runs, quality and collaboration"
    )
    group_scores: list[GroupScores] = Field(default_factory=list, description="scores per group, most first")


class Point(Figures):
    """The figures of one time bucket."""

    start: datetime = Field(description="the bucket's start (UTC)")


class Series(_Out):
    """One group's points over time, a point per bucket, empty buckets included."""

    group: str | None = None
    points: list[Point]


class TimeseriesOut(_Out):
    """Figures per hour, day or week."""

    filters: Filters
    bucket: Literal["hour", "day", "week"]
    bucket_seconds: int
    group_by: str | None = None
    series: list[Series]


# --- report ---------------------------------------------------------------------------------------


class Rated(_Out):
    """Attempts and successes of one agent, model or combination, with the Wilson interval."""

    runs: int = Field(description=_RUNS)
    cancelled: int = Field(description=_CANCELLED)
    attempts: int = Field(description=_ATTEMPTS)
    successes: int
    failures: int = Field(description=_FAILURES)
    success_rate: float | None = Field(None, description=_SUCCESS_RATE)
    success_rate_lower: float | None = Field(
        None,
        description="lower bound of the Wilson score interval of (successes, attempts): what rankings use",
    )
    success_rate_upper: float | None = None
    cost_usd: float = 0.0
    cost_per_run_usd: float | None = None
    cost_per_success_usd: float | None = None
    duration_mean_seconds: float | None = None
    tokens_per_run: float | None = None
    mean_confidence: float | None = None
    mean_quality_score: float | None = None


class AgentRow(Rated):
    """One agent across everything it did."""

    agent: str
    issue_types: list[str]
    models: list[str]


class ModelRow(Rated):
    """One model across every agent that used it."""

    model: str | None
    issue_types: list[str]
    agents: list[str]
    sufficient: bool = Field(
        description="has at least min_attempts attempts (cancelled runs aside): its ranking means something"
    )


class IssueTypeRow(Rated):
    """One kind of task across every agent and model."""

    issue_type: str | None
    agents: list[str]
    models: list[str]


class Pick(Rated):
    """The best candidate for an issue type, and how sure that is."""

    name: str = Field(description="the agent, the model, or 'agent / model'")
    agent: str | None = None
    model: str | None = None
    runner_up: str | None = None
    runner_up_success_rate_lower: float | None = None


class Recommendation(_Out):
    """Who to send an issue type to."""

    issue_type: str | None
    runs: int = Field(description=_RUNS)
    attempts: int = Field(description=_ATTEMPTS)
    agent: Pick | None = Field(None, description="best agent (all its models), null if none qualifies")
    model: Pick | None = Field(None, description="best model (all agents), null if none qualifies")
    combination: Pick | None = Field(None, description="best agent and model together")
    candidates: int = Field(description="agent/model combinations with at least min_attempts attempts")
    below_min_attempts: int = Field(description="combinations left out for having fewer attempts")


class ModelCell(Rated):
    """One model on one issue type."""

    model: str | None


class ModelMatchup(_Out):
    """The models side by side on one issue type."""

    issue_type: str | None
    models: list[ModelCell]
    leader: str | None = Field(None, description="highest Wilson lower bound among sufficient models")


class ModelComparison(_Out):
    """Every model on every issue type."""

    models: list[ModelRow]
    by_issue_type: list[ModelMatchup]


class ReportSummary(_Out):
    """The report's headline numbers."""

    total_runs: int = Field(description=_RUNS)
    total_cancelled: int = Field(description=_CANCELLED)
    total_attempts: int = Field(description=_ATTEMPTS)
    total_successful: int
    total_failed: int = Field(description=_FAILURES)
    overall_success_rate: float | None = Field(description="total_successful / total_attempts")
    total_agents: int
    total_issue_types: int
    total_models: int
    total_cost_usd: float
    cost_per_success_usd: float | None = None
    runs_without_cost: int = 0


class ReportOut(_Out):
    """The performance report: who does what, how well, at what cost, and who to send work to."""

    generated_at: datetime
    filters: Filters
    min_attempts: int
    confidence: float = Field(description="two-sided confidence of the Wilson intervals")
    summary: ReportSummary
    by_agent: list[AgentRow]
    by_issue_type: list[IssueTypeRow]
    by_model: list[ModelRow]
    recommendations: list[Recommendation]
    model_comparison: ModelComparison
    workflow: WorkflowAnswers | None = Field(
        None,
        description="seed 004: first-attempt pipelines, debugging cycles per issue, retries per "
        "sub-agent, what failed runs cost (success rate by model is by_model)",
    )
    scores: ScoreFigures | None = None
    scores_by_agent: list[GroupScores] = Field(default_factory=list)


# --- trends ---------------------------------------------------------------------------------------


class MetricTrend(_Out):
    """One metric over one window: its level now and where it is heading."""

    metric: Literal["success_rate", "duration_seconds", "cost_per_run_usd", "tokens_per_run"] = Field(
        description="success_rate is successes / attempts (cancelled runs left out); the others are over "
        "every run"
    )
    higher_is_better: bool
    current: float | None = Field(None, description="the metric over the whole window")
    data_points: int = Field(description="days of the window with a value")
    trend: Literal["improving", "stable", "declining", "insufficient data"]
    slope_per_day: float | None = Field(None, description="Theil-Sen slope of the daily values")
    level: float | None = Field(None, description="median of the daily values")
    change: float | None = Field(None, description="slope × window length: fitted change over the window")
    relative_change: float | None = Field(None, description="change / level; compared with the threshold")
    threshold: float


class WindowTrend(_Out):
    """A rolling window ending at `to`."""

    days: int
    from_: datetime = Field(alias="from")
    to: datetime
    runs: int = Field(description=_RUNS)
    data_points: int = Field(description="days of the window with at least one run")
    status: Literal["ok", "insufficient data"]
    metrics: list[MetricTrend]


class TrendsOut(_Out):
    """Rolling windows with a Theil-Sen trend per metric."""

    filters: Filters
    min_points: int
    windows: list[WindowTrend]
    scores: list[ScoreTrend] = Field(
        default_factory=list, description="per window and score name, the trend of the daily mean scores"
    )


# --- health ---------------------------------------------------------------------------------------


class Period(_Out):
    """A time range."""

    from_: datetime = Field(alias="from")
    to: datetime


class Totals(_Out):
    """Counts over a period."""

    runs: int = Field(description=_RUNS)
    cancelled: int = Field(description=_CANCELLED)
    attempts: int = Field(description=_ATTEMPTS)
    successes: int
    failures: int = Field(description=_FAILURES)
    success_rate: float | None = Field(None, description=_SUCCESS_RATE)
    cost_usd: float = 0.0
    duration_p95_seconds: float | None = None


class Failure(RunSummary):
    """A failed run (failure, error or timeout) and how long ago it ended."""

    age_seconds: float


class StreakOut(_Out):
    """An agent whose latest runs all failed, cancelled runs aside."""

    agent: str
    failures: int = Field(
        description="consecutive failed runs up to the agent's latest; a cancelled run neither breaks "
        "nor extends the streak"
    )
    since: datetime = Field(description="when the first failure of the streak ended")
    last: datetime = Field(description="when the latest failure ended")
    at_least: bool = Field(description="no success in the period looked at: the streak may be longer")
    cancelled: int = Field(0, description="cancelled runs since the last success, ignored by the streak")
    error_types: list[str]


class ErrorGroupOut(_Out):
    """Failed runs (failure, error, timeout) sharing one error_type; cancelled runs are not failures."""

    error_type: str | None = Field(description="null: failed runs that reported no error_type")
    runs: int
    agents: int
    statuses: dict[str, int]
    first_seen: datetime
    last_seen: datetime
    latest_run_id: str | None = Field(
        description="the newest failed run of the group; null when retention deleted the window's runs"
    )
    latest_agent: str | None
    latest_summary: str | None = None


class AnomalyOut(_Out):
    """A figure of the window far from the trailing baseline."""

    agent: str
    metric: Literal[
        "failure_rate", "duration_p95_seconds", "cost_per_run_usd", "tokens_per_run", "silence"
    ] = Field(description="failure_rate is failures / attempts (cancelled runs left out)")
    window_value: float
    baseline_value: float
    message: str


class HealthOut(_Out):
    """An operational digest: is anything wrong right now, and why."""

    status: Literal["ok", "degraded", "no data"] = Field(
        description="degraded when an anomaly or a failure streak is found"
    )
    findings: list[str] = Field(description="one sentence per thing worth knowing, most important first")
    as_of: datetime
    filters: Filters
    window: Period
    baseline: Period
    totals: Totals = Field(description="the window")
    baseline_totals: Totals
    last_run: RunSummary | None = None
    most_recent_failure: Failure | None = Field(
        None, description="the newest failed run (failure, error or timeout; not cancelled)"
    )
    failure_streaks: list[StreakOut]
    errors: list[ErrorGroupOut] = Field(description="failed runs of the window by error_type")
    anomalies: list[AnomalyOut]


# --- reprice --------------------------------------------------------------------------------------


class RepriceOut(_Out):
    """What recomputing the estimated costs changed."""

    dry_run: bool
    price_file: str | None = Field(None, description="the price file read (null: genai-prices only)")
    runs_examined: int = Field(description="runs whose cost (or part of it) is not reported")
    runs_changed: int
    usage_lines_changed: int
    became_known: int = Field(description="runs with an unknown cost that now have an estimate")
    became_unknown: int = Field(description="runs whose model lost its price")
    cost_before_usd: float
    cost_after_usd: float
    delta_usd: float
