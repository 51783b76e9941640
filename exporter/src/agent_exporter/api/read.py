"""The read API under `/api/v1`: run history, summaries, time series, the report, trends, health,
and repricing.

Every endpoint takes the same filters: `from` and `to` (RFC 3339, or relative to now such as `7d`,
`24h`, `30m`), and `agent`, `model`, `provider`, `issue_type`, `status`, `project`, `team`,
`environment`, each repeatable (`agent=a&agent=b` means either). A bad parameter is a 422 that
names it. Handlers are plain functions: FastAPI runs them in its thread pool, off the event loop.

A failed run is status `failure`, `error` or `timeout`; `cancelled` runs are neither, and success
rates, Wilson bounds and minimum-attempts guards are over attempts (runs minus cancelled), as in the
Prometheus rules (docs/record.md, "What counts as a failure").
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import logging
import math
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Annotated, Any, Final, Literal

import orjson
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy import Connection

from .. import aggregates, insights, queries, reports
from .. import read_models as m
from ..aggregates import DAY, HOUR, MONDAY_ORIGIN, WEEK, Bucket
from ..pricing import PriceBook, PriceFileError
from ..queries import DIMENSIONS, RunFilter
from ..record import CONTROL_CHARACTERS, MAX_ID_LENGTH, Status, name_problem, total_tokens
from ..reprice import reprice
from ..scoring import Strategies, strategies
from ..store import StoreError
from .http import RETRY_AFTER, error_response
from .service import service

log = logging.getLogger(__name__)

MAX_PAGE: Final = 1000
MAX_BUCKETS: Final = 5000
MAX_TREND_DAYS: Final = 366
MAX_SPAN_SECONDS: Final = 3650 * 86400
EARLIEST: Final = datetime(1990, 1, 1, tzinfo=UTC)  # with ten years of window, still after 1970
LATEST: Final = datetime(2200, 1, 1, tzinfo=UTC)
BUCKETS: Final = {"hour": (HOUR, 0), "day": (DAY, 0), "week": (WEEK, MONDAY_ORIGIN)}
_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h|d|w)$")
_UNITS: Final = {"s": 1, "m": 60, "h": HOUR, "d": DAY, "w": WEEK}

_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    422: {"model": m.Error, "description": "a query parameter is invalid; the message names it"}
}

router = APIRouter(prefix="/api/v1", tags=["read"], responses=_ERRORS)

GroupBy = Literal["agent", "model", "provider", "issue_type", "status", "project", "team", "environment"]


def invalid(field: str, message: str, value: Any = None) -> RequestValidationError:
    """A 422 naming the query parameter `field` (the app renders it as `field: message`)."""
    return RequestValidationError(
        [{"type": "value_error", "loc": ("query", field), "msg": message, "input": value}]
    )


def check_name(field: str, value: str) -> None:
    """A filter value is a name as runs carry them (`record.name_problem`).

    Nothing stored can match anything else, and PostgreSQL refuses a NUL in a query outright.
    """
    problem = name_problem(value)
    if problem is not None:
        raise invalid(field, problem, value[:40])


def parse_duration(value: str, field: str) -> float:
    """Seconds of a duration such as `90s`, `30m`, `24h`, `7d`, `2w` (ten years at most)."""
    match = _RELATIVE.match(value.strip().lower())
    seconds = float(match.group(1)) * _UNITS[match.group(2)] if match else 0.0
    if not match or seconds <= 0:
        raise invalid(field, f"{value!r} is not a duration such as 30m, 24h, 7d or 2w", value)
    if seconds > MAX_SPAN_SECONDS:
        raise invalid(field, f"{value!r} is longer than ten years", value)
    return seconds


def parse_time(value: str, field: str, now: float) -> float:
    """Unix seconds of an RFC 3339 time (`2026-01-31T12:00:00Z`), a date (midnight UTC), `now`, or a
    time relative to now (`7d` = seven days ago)."""
    text = value.strip()
    if text.lower() == "now":
        return now
    if _RELATIVE.match(text.lower()):
        return now - parse_duration(text, field)
    try:
        if len(text) == 10:
            moment = datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
        else:
            moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise invalid(
            field,
            f"{value!r} is not a time: give RFC 3339 with an offset (2026-01-31T12:00:00Z), "
            "a date (2026-01-31), or a time relative to now (30m, 24h, 7d, 2w)",
            value,
        )
    if not EARLIEST <= moment <= LATEST:
        raise invalid(field, f"{value!r} is not between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}", value)
    return moment.timestamp()


def run_filter(
    *,
    from_: Annotated[
        str | None,
        Query(alias="from", description="runs that ended at or after: RFC 3339, a date, or relative (7d)"),
    ] = None,
    to: Annotated[
        str | None, Query(description="runs that ended before: RFC 3339, a date, or relative")
    ] = None,
    agent: Annotated[list[str] | None, Query(description="repeatable")] = None,
    model: Annotated[list[str] | None, Query(description="repeatable")] = None,
    provider: Annotated[list[str] | None, Query(description="repeatable")] = None,
    issue_type: Annotated[list[str] | None, Query(description="repeatable")] = None,
    status: Annotated[
        list[str] | None, Query(description="repeatable: success, failure, error, timeout, cancelled")
    ] = None,
    project: Annotated[list[str] | None, Query(description="repeatable")] = None,
    team: Annotated[list[str] | None, Query(description="repeatable")] = None,
    environment: Annotated[list[str] | None, Query(description="repeatable")] = None,
) -> RunFilter:
    """The filters every read endpoint takes, validated."""
    now = time.time()
    start = parse_time(from_, "from", now) if from_ is not None else None
    end = parse_time(to, "to", now) if to is not None else None
    if start is not None and end is not None and start >= end:
        raise invalid("from", f"must be before to ({from_!r} is not before {to!r})", from_)
    for name, given in (
        ("agent", agent),
        ("model", model),
        ("provider", provider),
        ("issue_type", issue_type),
        ("project", project),
        ("team", team),
        ("environment", environment),
    ):
        for value in given or []:
            check_name(name, value)
    known = {s.value for s in Status}
    for value in status or []:
        if value not in known:
            raise invalid("status", f"{value!r} is not one of {', '.join(s.value for s in Status)}", value)
    values = {
        "agent": agent,
        "model": model,
        "provider": provider,
        "issue_type": issue_type,
        "status": status,
        "project": project,
        "team": team,
        "environment": environment,
    }
    return RunFilter.of(start, end, **{k: v for k, v in values.items() if v})


Filter = Annotated[RunFilter, Depends(run_filter)]


def echo(flt: RunFilter) -> m.Filters:
    """The filters as the response repeats them."""
    return m.Filters.model_validate(
        {
            "from": reports.timestamp(flt.start),
            "to": reports.timestamp(flt.end),
            **{name: list(flt.values(name)) for name in DIMENSIONS},
        }
    )


@contextmanager
def reading(request: Request) -> Iterator[Connection]:
    """A connection to the store; a database failure is a 503 that says so, not a 500."""
    try:
        with service(request).store.reading() as conn:
            yield conn
    except StoreError as exc:
        raise _unavailable(exc) from exc


def _unavailable(exc: StoreError) -> HTTPException:
    log.warning("a query of the read API failed: %s", exc.detail)
    return HTTPException(503, f"the store did not answer ({exc.detail}); retry later", headers=RETRY_AFTER)


# --- runs -------------------------------------------------------------------------------------------


def encode_cursor(ended_at: float, run_id: str) -> str:
    """An opaque cursor: the keyset of the last run of a page."""
    return base64.urlsafe_b64encode(orjson.dumps([ended_at, run_id])).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    """The keyset in a cursor from `encode_cursor`; a 422 on anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        ended_at, run_id = orjson.loads(raw)
        if isinstance(ended_at, int | float) and math.isfinite(ended_at) and isinstance(run_id, str):
            return float(ended_at), run_id
    except (binascii.Error, orjson.JSONDecodeError, ValueError, TypeError):
        pass
    raise invalid("cursor", "is not a cursor from this API: pass next_cursor of the previous page", cursor)


def summary_row(row: Any) -> dict[str, Any]:
    out = {name: row[name] for name in queries.LIST_COLUMNS}
    out["started_at"] = reports.timestamp(row["started_at"])
    out["ended_at"] = reports.timestamp(row["ended_at"])
    out["total_tokens"] = total_tokens(row["input_tokens"], row["output_tokens"])
    out["counts"] = row["counts"] or {}
    return out


@router.get("/runs", summary="Run history, newest first")
def list_runs(
    request: Request,
    flt: Filter,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="runs per page")] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> m.RunPage:
    """Runs ordered by `ended_at` (newest first), a page at a time (keyset pagination)."""
    after = decode_cursor(cursor) if cursor is not None else None
    with reading(request) as conn:
        rows = queries.list_runs(conn, flt, limit=limit + 1, after=after)
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1]["ended_at"], page[-1]["run_id"]) if len(rows) > limit else None
    return m.RunPage(
        runs=[m.RunSummary.model_validate(summary_row(r)) for r in page], next_cursor=next_cursor
    )


def _derived(detail: queries.RunDetail) -> m.Derived:
    run = detail.run
    inp, out, calls = run["input_tokens"], run["output_tokens"], run["llm_calls"]
    total = total_tokens(inp, out)
    uncached = None
    if inp is not None:
        uncached = inp - (run["cache_read_tokens"] or 0) - (run["cache_write_tokens"] or 0)
    tool_calls = sum(t["calls"] for t in detail.tools)
    tool_errors = sum(t["errors"] for t in detail.tools)
    phases = [(p["duration_seconds"], p["name"]) for p in detail.phases]
    return m.Derived(
        total_tokens=total,
        uncached_input_tokens=uncached,
        cache_hit_ratio=(
            reports.ratio(run["cache_read_tokens"], inp)
            if inp and run["cache_read_tokens"] is not None
            else None
        ),
        tokens_per_llm_call=reports.ratio(total, calls) if total is not None and calls else None,
        cost_per_llm_call_usd=reports.ratio(run["cost_usd"], calls)
        if run["cost_usd"] is not None and calls
        else None,
        tool_errors=tool_errors,
        tool_error_rate=reports.ratio(tool_errors, tool_calls) if detail.tools else None,
        phases_seconds=sum(d for d, _ in phases) if phases else None,
        slowest_phase=max(phases)[1] if phases else None,
        ingest_lag_seconds=run["received_at"] - run["ended_at"],
    )


@router.get(
    "/runs/{run_id:path}",
    summary="One run with its phases, per-model usage, tools and derived figures",
    responses={404: {"model": m.Error, "description": "no run with this run_id"}},
)
def get_run(
    request: Request, run_id: Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH)]
) -> m.RunDetailOut:
    """Everything stored about one run. `run_id` may contain slashes."""
    if CONTROL_CHARACTERS.search(run_id):
        # no stored run has such an id (ingest refuses them), and PostgreSQL refuses a NUL outright
        raise HTTPException(404, f"no run with run_id {run_id[:MAX_ID_LENGTH]!r}: not a valid run_id")
    with reading(request) as conn:
        detail = queries.get_run(conn, run_id)
    if detail is None:
        raise HTTPException(404, f"no run with run_id {run_id!r}")
    row = detail.run
    body = summary_row(row)
    body.update(
        quality_score=row["quality_score"],
        confidence=row["confidence"],
        labels=row["labels"] or {},
        received_at=reports.timestamp(row["received_at"]),
        # a run sent without an end (or a start and duration) ended when it was received: the
        # store keeps both from the same clock reading, so equality says which it was
        ended_at_reported=row["ended_at"] != row["received_at"],
        usage=[dict(u) for u in detail.usage],
        tools=[dict(t) for t in detail.tools],
        phases=[dict(p) for p in detail.phases],
        subagents=[dict(s) for s in detail.subagents],
        pipeline_attempts=[{**p, "commit": p["commit_sha"]} for p in detail.pipeline_attempts],
        debugging_cycles=[{**d, "resolved": bool(d["resolved"])} for d in detail.debugging_cycles],
        children=[summary_row(c) for c in detail.children],
        children_totals=(dataclasses.asdict(detail.children_total) if detail.children_total.runs else None),
        derived=_derived(detail),
    )
    return m.RunDetailOut.model_validate(body)


# --- summary and time series ----------------------------------------------------------------------


@router.get("/summary", summary="Figures over the filtered runs, overall and per group")
def summary(
    request: Request,
    flt: Filter,
    group_by: Annotated[GroupBy | None, Query(description="figures per value of this field")] = None,
) -> m.SummaryOut:
    """Count, success rate, duration percentiles, tokens, cost, calls; with `group_by`, per group too."""
    return summary_of(request, flt, group_by)


def summary_of(
    request: Request, flt: RunFilter, group_by: str | None, *, scores: bool = True
) -> m.SummaryOut:
    """`GET /summary`'s answer; without `scores`, the figures only (the overview page shows no
    scores, and reading them costs a query per table of them)."""
    scoring = _strategies(request)
    group_scores: list[insights.GroupScores] = []
    with reading(request) as conn:
        overall, groups = (
            aggregates.summaries(conn, flt, (), (group_by,))
            if group_by
            else (
                aggregates.summary(conn, flt),
                [],
            )
        )
        score_figures = insights.score_figures(conn, flt, scoring, overall) if scores else None
        if scores and group_by:
            group_scores = insights.group_scores(conn, flt, group_by, scoring, groups)
    whole = overall[0] if overall else aggregates.Aggregate()
    return m.SummaryOut(
        filters=echo(flt),
        summary=reports.figures(whole),
        group_by=group_by,
        groups=[reports.group_figures(g) for g in groups],
        scores=score_figures,
        group_scores=group_scores,
    )


def _strategies(request: Request) -> Strategies:
    """The configured scoring strategies (cheap to build: weights only)."""
    return strategies(service(request).settings.scoring)


@router.get("/timeseries", summary="Figures per hour, day or week")
def timeseries(
    request: Request,
    flt: Filter,
    bucket: Annotated[
        Literal["hour", "day", "week"], Query(description="UTC; weeks start on Monday")
    ] = "day",
    group_by: Annotated[GroupBy | None, Query(description="a series per value of this field")] = None,
) -> m.TimeseriesOut:
    """The summary figures per time bucket; buckets without runs are included with zero runs."""
    size, origin = BUCKETS[bucket]
    spec = Bucket(size, origin)
    with reading(request) as conn:
        indices = aggregates.bucket_range(conn, flt, spec)
        if len(indices) > MAX_BUCKETS:
            first, last = (
                reports.timestamp(spec.start(indices.start)),
                reports.timestamp(spec.start(indices.stop)),
            )
            raise invalid(
                "bucket",
                f"{len(indices)} {bucket} buckets from {first:%Y-%m-%d} to {last:%Y-%m-%d} are over the "
                f"limit of {MAX_BUCKETS}: use a larger bucket or narrow from/to",
                bucket,
            )
        found = aggregates.series(conn, flt, spec, (group_by,) if group_by else ()) if indices else []
    return m.TimeseriesOut(
        filters=echo(flt),
        bucket=bucket,
        bucket_seconds=size,
        group_by=group_by,
        series=reports.series(found, spec, indices),
    )


# --- report -----------------------------------------------------------------------------------------


@router.get("/report", summary="The performance report: by agent, issue type and model, with recommendations")
def report(
    request: Request,
    flt: Filter,
    min_attempts: Annotated[
        int,
        Query(
            ge=1,
            le=1_000_000,
            description="attempts (runs not cancelled) a candidate needs before it can be recommended",
        ),
    ] = 5,
    confidence: Annotated[
        float, Query(gt=0.5, lt=1, description="confidence of the Wilson intervals that rank candidates")
    ] = 0.95,
) -> m.ReportOut:
    """Who does what, how well and at what cost; the best agent and model per issue type, ranked by the
    Wilson lower bound of their success rate over attempts (3 of 3 does not beat 90 of 100; cancelled
    runs are not attempts)."""
    scoring = _strategies(request)
    with reading(request) as conn:
        cells, by_status, overall, agents = aggregates.summaries(
            conn, flt, aggregates.REPORT_CELLS, ("status",), (), ("agent",)
        )
        subagents = insights.subagent_retries(conn, flt)
        scores = insights.score_figures(conn, flt, scoring, overall)
        by_agent = insights.group_scores(conn, flt, "agent", scoring, agents)
    report = reports.build_report(
        cells,
        min_attempts=min_attempts,
        confidence=confidence,
        generated_at=datetime.now(UTC),
        filters=echo(flt),
    )
    whole = overall[0] if overall else aggregates.Aggregate()
    report.workflow = insights.workflow(whole, by_status, subagents)
    report.scores, report.scores_by_agent = scores, by_agent
    return report


@router.get("/budget", summary="Each owner's budget: spend in the current day or month, and its projection")
def budget(request: Request) -> list[insights.BudgetOut]:
    """The budgets per owner of `alerts/config.yaml` (setting `budgets_file`): each team's, project's
    or agent's spend so far in its current UTC day or month, from the store, and the spend at the
    period's end if the pace so far holds. Empty without budgets."""
    budgets = service(request).settings.owner_budgets
    with reading(request) as conn:
        return insights.budget_view(conn, budgets, time.time())


# --- trends -----------------------------------------------------------------------------------------


@router.get("/trends", summary="Rolling windows with a Theil-Sen trend per metric")
def trends(
    *,
    request: Request,
    flt: Filter,
    window: Annotated[
        list[int] | None, Query(description="window lengths in days, repeatable (default 7, 30 and 90)")
    ] = None,
    min_points: Annotated[int, Query(ge=2, le=1000, description="days with data a trend needs")] = 5,
    threshold: Annotated[
        float, Query(gt=0, le=10, description="relative change over a window that counts as a trend")
    ] = 0.1,
    success_rate_threshold: Annotated[float | None, Query(gt=0, le=10)] = None,
    duration_threshold: Annotated[float | None, Query(gt=0, le=10)] = None,
    cost_threshold: Annotated[float | None, Query(gt=0, le=10)] = None,
    tokens_threshold: Annotated[float | None, Query(gt=0, le=10)] = None,
) -> m.TrendsOut:
    """Success rate, duration, cost per run and tokens per run over windows of whole UTC days ending
    at the midnight after `to` (default now: the current day is the last). A data point is a day
    with runs; below `min_points` a window says "insufficient data". The Theil-Sen slope of the
    daily values, times the window length and relative to their median, is compared with the
    threshold: rising success rate is improving, rising duration, cost and tokens are declining."""
    windows = sorted(set(window or [7, 30, 90]))
    for length in windows:
        if not 1 <= length <= MAX_TREND_DAYS:
            raise invalid("window", f"{length} is not a number of days from 1 to {MAX_TREND_DAYS}", length)
    # whole UTC days, the current one included: the rollups' days
    end = math.ceil((flt.end if flt.end is not None else time.time()) / DAY) * DAY
    origin = end - max(windows) * DAY
    thresholds = {
        "success_rate": success_rate_threshold or threshold,
        "duration_seconds": duration_threshold or threshold,
        "cost_per_run_usd": cost_threshold or threshold,
        "tokens_per_run": tokens_threshold or threshold,
    }
    with reading(request) as conn:
        days = aggregates.daily(conn, flt.narrowed(origin, end), origin)
        score_days = insights.daily_score_means(conn, flt.narrowed(origin, end), origin)
    return m.TrendsOut(
        filters=echo(flt),
        min_points=min_points,
        windows=reports.build_trends(
            days, origin=origin, end=end, windows=windows, thresholds=thresholds, min_points=min_points
        ),
        scores=insights.score_trends(
            score_days, span=max(windows), windows=windows, min_points=min_points, threshold=threshold
        ),
    )


# --- health -----------------------------------------------------------------------------------------


@router.get("/health", summary="Operational digest for humans and AI agents")
def health(
    *,
    request: Request,
    flt: Filter,
    window: Annotated[str, Query(description="recent period looked at, when `from` is not given")] = "24h",
    baseline: Annotated[str, Query(description="trailing period before the window to compare with")] = "7d",
    min_runs: Annotated[
        int,
        Query(
            ge=1,
            le=1_000_000,
            description="runs a period needs for comparisons (for the failure rate: attempts, cancelled "
            "runs aside)",
        ),
    ] = 5,
    ratio: Annotated[
        float,
        Query(gt=1, le=100, description="window/baseline ratio of p95 duration, cost or tokens per run"),
    ] = 1.5,
    min_increase: Annotated[
        float, Query(gt=0, le=1, description="failure-rate rise (absolute) that counts as an anomaly")
    ] = 0.1,
    min_streak: Annotated[
        int,
        Query(ge=1, le=1_000_000, description="consecutive failures reported (cancelled runs are ignored)"),
    ] = 3,
    errors: Annotated[int, Query(ge=1, le=100, description="error types listed")] = 10,
) -> m.HealthOut:
    """Is anything wrong right now, and why: the most recent failure, agents failing in a row, failed
    runs by error_type, and figures of the window far from the baseline before it, with a sentence per
    finding. Failed means failure, error or timeout; a cancelled run is no failure and neither breaks
    nor extends a streak. The window is [from, to) when `from` is given, else the `window` before `to`
    (default now)."""
    now = time.time()
    end = flt.end if flt.end is not None else now
    start = flt.start if flt.start is not None else end - parse_duration(window, "window")
    baseline_start = start - parse_duration(baseline, "baseline")
    window_flt = RunFilter(start, end, flt.dimensions)
    baseline_flt = RunFilter(baseline_start, start, flt.dimensions)
    lookback_flt = RunFilter(baseline_start, end, flt.dimensions)
    upto_flt = RunFilter(None, end, flt.dimensions)
    with reading(request) as conn:
        w_agents, w_total = aggregates.summaries(conn, window_flt, ("agent",), ())
        b_agents, b_total = aggregates.summaries(conn, baseline_flt, ("agent",), ())
        last = queries.latest_run(conn, upto_flt)
        last_failed = queries.latest_run(conn, upto_flt, failed=True)
        agents = sorted({a.key[0] for a in (*w_agents, *b_agents) if a.key[0] is not None})
        streaks = queries.failure_streaks(conn, lookback_flt, agents=agents, min_failures=min_streak)
        groups = aggregates.error_groups(conn, window_flt, limit=errors)
    w_all = w_total[0] if w_total else aggregates.Aggregate()
    b_all = b_total[0] if b_total else aggregates.Aggregate()
    found = reports.anomalies(
        {a.key[0] or "": a for a in w_agents},
        {a.key[0] or "": a for a in b_agents},
        rules=reports.AnomalyRules(min_runs=min_runs, ratio=ratio, min_increase=min_increase),
        window_seconds=end - start,
        baseline_seconds=start - baseline_start,
    )
    failure = None
    if last_failed is not None:
        failure = m.Failure(**summary_row(last_failed), age_seconds=max(0.0, now - last_failed["ended_at"]))
    if w_all.runs == 0 and b_all.runs == 0 and last is None:
        status: Literal["ok", "degraded", "no data"] = "no data"
    else:
        status = "degraded" if found or streaks else "ok"
    sentences = reports.findings(
        window_label=reports.human_duration(end - start),
        window_totals=w_all,
        streaks=streaks,
        anomalies_found=found,
        last_failure=failure,
        errors=groups,
        as_of=now,
    )
    return m.HealthOut(
        status=status,
        findings=sentences,
        as_of=datetime.fromtimestamp(end, UTC),
        filters=echo(flt),
        window=reports.period(start, end),
        baseline=reports.period(baseline_start, start),
        totals=reports.totals(w_all),
        baseline_totals=reports.totals(b_all),
        last_run=m.RunSummary(**summary_row(last)) if last is not None else None,
        most_recent_failure=failure,
        failure_streaks=[reports.streak_out(s) for s in streaks],
        errors=[reports.error_group_out(g) for g in groups],
        anomalies=found,
    )


# --- reprice ----------------------------------------------------------------------------------------


@router.post(
    "/reprice",
    summary="Recompute estimated costs with the current prices",
    tags=["maintenance"],
    response_model=m.RepriceOut,
    responses={409: {"model": m.Error, "description": "the price file does not load; nothing was repriced"}},
)
def post_reprice(
    request: Request,
    flt: Filter,
    dry_run: Annotated[bool, Query(description="compute and report the changes, store nothing")] = False,
) -> Any:
    """Price again, with the price file re-read from disk and genai-prices, every filtered run whose
    cost is estimated or unknown; reported costs are never touched. The new price book also prices
    the runs ingested from now on. Counters already exported are not rewritten."""
    svc = service(request)
    price_file = svc.settings.price_file
    try:
        prices = PriceBook.from_file(price_file)
    except PriceFileError as exc:
        return error_response(409, "invalid_price_file", f"{exc}; nothing was repriced")
    if not dry_run:
        svc.reprice_with(prices)
    try:
        result = reprice(svc.store, prices, flt, dry_run=dry_run)
    except StoreError as exc:  # batches stored before the failure stay repriced: rerun to finish
        raise _unavailable(exc) from exc
    return m.RepriceOut(
        dry_run=dry_run,
        price_file=str(price_file) if price_file is not None else None,
        runs_examined=result.runs_examined,
        runs_changed=result.runs_changed,
        usage_lines_changed=result.usage_lines_changed,
        became_known=result.became_known,
        became_unknown=result.became_unknown,
        cost_before_usd=reports.money(result.cost_before_usd),
        cost_after_usd=reports.money(result.cost_after_usd),
        delta_usd=reports.money(result.cost_after_usd - result.cost_before_usd),
    )
