"""What each web page shows, assembled from the read API's own handlers (`api/read.py`): the same
figures, from the same queries, as `/api/v1/summary`, `/timeseries`, `/runs`, `/report`, `/trends`
and `/health` answer agents, so that a page and the API never disagree.

A page's data is a plain dict the template renders; charts are built here (`charts`), as SVG.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import parse_qsl, quote, urlencode

from fastapi import Request
from fastapi.exceptions import RequestValidationError

from .. import humanize, queries
from .. import read_models as m
from ..queries import FAILED, RunFilter
from ..record import Status
from . import charts, read
from .viewstate import PAGE_SIZE, SHOWN, View

#: the run dashboard's uid in the generated Grafana dashboards (mixin/rules.py RUN_UID; a test checks)
GRAFANA_RUN_DASHBOARD: Final = "agent-exporter-run"
STATUS_TONES: Final = {
    "success": "ok",
    "failure": "bad",
    "error": "err",
    "timeout": "warn",
    "cancelled": "muted",
}
#: a status in words and a sign, so that no status is told by colour alone
STATUS_SIGNS: Final = {"success": "✓", "failure": "✗", "error": "!", "timeout": "◔", "cancelled": "–"}
MODEL_SERIES: Final = 6  # models drawn on their own; the rest are summed as "other models"
RUN_POINTS: Final = 100  # runs drawn in the per-run charts (each a link with a title: about 1 KB)
OPTION_LIMIT: Final = 300
FAILURES_LISTED: Final = 8

Tone = Literal["good", "bad", "flat"]


@dataclass(frozen=True)
class Delta:
    """A change against the previous period, in words and with its direction."""

    text: str
    tone: Tone
    words: str  # "better", "worse", "no change", or "" when neither is better


@dataclass(frozen=True)
class Tile:
    """One figure at the top of the overview."""

    key: str
    label: str
    value: str
    detail: str = ""
    delta: Delta | None = None


def _change(
    now: float | None, before: float | None, *, higher_is_better: bool | None, points: bool = False
) -> Delta | None:
    if now is None or before is None:
        return None
    if points:  # rates: the change in percentage points
        diff = (now - before) * 100
        text = f"{'▲' if diff > 0 else '▼' if diff < 0 else '='} {abs(diff):.1f} pts"
    else:
        if before == 0:
            return None if now == 0 else Delta("new", "flat", "")
        diff = (now - before) / before
        text = f"{'▲' if diff > 0 else '▼' if diff < 0 else '='} {abs(diff):.0%}"
    if abs(diff) < (0.05 if points else 0.005) or higher_is_better is None:
        return Delta(text, "flat", "no change" if abs(diff) < 0.005 else "")
    better = (diff > 0) == higher_is_better
    return Delta(text, "good" if better else "bad", "better" if better else "worse")


def _failed_cost(groups: Sequence[m.GroupFigures]) -> float:
    return sum(g.cost_usd for g in groups if g.group in FAILED)


def tiles(now: m.SummaryOut, before: m.SummaryOut | None) -> list[Tile]:
    """The overview's figures, each against the previous period when there is one."""
    f, p = now.summary, before.summary if before is not None else None

    def delta(attr: str, higher_is_better: bool | None, *, points: bool = False) -> Delta | None:
        if p is None:
            return None
        return _change(getattr(f, attr), getattr(p, attr), higher_is_better=higher_is_better, points=points)

    failed_now = _failed_cost(now.groups)
    failed_before = _failed_cost(before.groups) if before is not None else None
    cost_detail = (
        f"{humanize.plural(f.runs_without_cost, 'run')} without a known cost" if f.runs_without_cost else ""
    )
    return [
        Tile(
            "runs",
            "Executions",
            humanize.count(f.runs),
            f"{humanize.count(f.attempts)} attempts · {humanize.count(f.cancelled)} cancelled",
            delta("runs", None),
        ),
        Tile(
            "success_rate",
            "Success rate",
            humanize.rate(f.success_rate),
            f"{humanize.count(f.successes)} succeeded · {humanize.count(f.failures)} failed",
            delta("success_rate", True, points=True),
        ),
        Tile(
            "p50",
            "Duration p50",
            humanize.duration(f.duration_p50_seconds),
            "median run",
            delta("duration_p50_seconds", False),
        ),
        Tile(
            "p95",
            "Duration p95",
            humanize.duration(f.duration_p95_seconds),
            f"max {humanize.duration(f.duration_max_seconds)}",
            delta("duration_p95_seconds", False),
        ),
        Tile(
            "tokens",
            "Tokens",
            humanize.compact(f.total_tokens),
            f"in {humanize.compact(f.input_tokens)} (cache reads {humanize.compact(f.cache_read_tokens)}) · "
            f"out {humanize.compact(f.output_tokens)}",
            delta("total_tokens", None),
        ),
        Tile(
            "cost",
            "Cost",
            humanize.usd(f.cost_usd),
            cost_detail or f"{humanize.usd(f.cost_per_run_usd)} a run",
            delta("cost_usd", False),
        ),
        Tile(
            "cost_per_success",
            "Cost per success",
            humanize.usd(f.cost_per_success_usd),
            "all cost / successful runs",
            delta("cost_per_success_usd", False),
        ),
        Tile(
            "failed_cost",
            "Spent on failed runs",
            humanize.usd(failed_now),
            humanize.rate(failed_now / f.cost_usd) + " of the cost" if f.cost_usd else "",
            _change(failed_now, failed_before, higher_is_better=False) if before is not None else None,
        ),
        Tile(
            "llm_calls",
            "LLM calls",
            humanize.compact(f.llm_calls),
            f"{humanize.count(f.llm_calls_per_run)} a run" if f.llm_calls_per_run is not None else "",
            delta("llm_calls", None),
        ),
        Tile(
            "tool_calls",
            "Tool calls",
            humanize.compact(f.tool_calls),
            f"{humanize.count(f.tool_calls_per_run)} a run" if f.tool_calls_per_run is not None else "",
            delta("tool_calls", None),
        ),
    ]


# --- charts -------------------------------------------------------------------------------------


def _present_statuses(points: Sequence[m.Figures]) -> list[str]:
    seen = {s for p in points for s, n in p.statuses.items() if n}
    return [s.value for s in Status if s.value in seen] or ["success"]


def bucket_charts(series: m.TimeseriesOut, by_model: m.TimeseriesOut) -> list[Any]:
    """The overview's charts over time buckets."""
    points = series.series[0].points if series.series else []
    xs = [p.start.timestamp() for p in points]
    step = float(series.bucket_seconds)
    note = f"per {series.bucket} · UTC"

    def line(
        name: str, get: Callable[[m.Point], float | None], tone: str, dashed: bool = False
    ) -> charts.Series:
        return charts.Series(name, [get(p) for p in points], tone, dashed)

    statuses = _present_statuses(points)
    models = _model_series(by_model, len(points))
    out = [
        charts.Chart(
            "Runs by status",
            "count",
            "bars",
            xs,
            [
                charts.Series(s, [float(p.statuses.get(s, 0)) for p in points], STATUS_TONES[s])
                for s in statuses
            ],
            step,
            (note,),
        ),
        charts.Chart(
            "Success rate",
            "ratio",
            "lines",
            xs,
            [line("successes / attempts", lambda p: p.success_rate, "ok")],
            step,
            (note, "cancelled runs left out"),
        ),
        charts.Chart(
            "Duration",
            "seconds",
            "lines",
            xs,
            [
                line("p50", lambda p: p.duration_p50_seconds, "c1"),
                line("p95", lambda p: p.duration_p95_seconds, "c2", dashed=True),
            ],
            step,
            (note,),
        ),
        charts.Chart(
            "Tokens",
            "tokens",
            "bars",
            xs,
            [
                line("input (cache reads included)", lambda p: float(p.input_tokens), "c1"),
                line("output", lambda p: float(p.output_tokens), "c3"),
            ],
            step,
            (note,),
        ),
        charts.Chart("Cost by model", "usd", "bars", xs, models, step, (note, "USD, known costs")),
        charts.Chart(
            "LLM and tool calls",
            "count",
            "lines",
            xs,
            [  # a gap where no run reported the calls: unknown, not none made
                line(
                    "LLM calls", lambda p: None if p.llm_calls_per_run is None else float(p.llm_calls), "c1"
                ),
                line(
                    "tool calls",
                    lambda p: None if p.tool_calls_per_run is None else float(p.tool_calls),
                    "c4",
                    dashed=True,
                ),
            ],
            step,
            (note,),
        ),
    ]
    return [charts.render(c) for c in out]


def _model_series(by_model: m.TimeseriesOut, length: int) -> list[charts.Series]:
    lines = [s for s in by_model.series if any(p.cost_usd for p in s.points)]
    out = [
        charts.Series(s.group or "no model", [p.cost_usd for p in s.points], f"c{n + 1}")
        for n, s in enumerate(lines[:MODEL_SERIES])
    ]
    rest = lines[MODEL_SERIES:]
    if rest:
        out.append(
            charts.Series(
                f"{len(rest)} other models",
                [sum(s.points[i].cost_usd for s in rest) for i in range(length)],
                "muted",
            )
        )
    return out or [charts.Series("cost", [0.0] * length, "c1")]


def run_charts(runs: Sequence[m.RunSummary], base: str) -> list[Any]:
    """The overview's per-run charts: one point a run, its marker by status."""
    ordered = sorted(runs, key=lambda r: r.ended_at)
    xs = [r.ended_at.timestamp() for r in ordered]
    labels = [r.run_id for r in ordered]
    statuses = [s.value for s in Status if any(r.status == s for r in ordered)] or ["success"]

    def chart(title: str, unit: charts.Unit, get: Callable[[m.RunSummary], float | None]) -> Any:
        series = [
            charts.Series(
                s,
                [get(r) if r.status == s else None for r in ordered],
                STATUS_TONES[s],
                links=[f"{base}/runs/{quote(r.run_id, safe='')}" if r.status == s else None for r in ordered],
            )
            for s in statuses
        ]
        notes = (f"the newest {len(ordered)} runs · UTC", "click a point to open its run")
        return charts.render(charts.Chart(title, unit, "points", xs, series, None, notes, labels))

    return [
        chart("Duration per run", "seconds", lambda r: r.duration_seconds),
        chart("Cost per run", "usd", lambda r: r.cost_usd),
        chart(
            "Tokens per run",
            "tokens",
            lambda r: float(r.total_tokens) if r.total_tokens is not None else None,
        ),
        chart(
            "LLM calls per run", "count", lambda r: float(r.llm_calls) if r.llm_calls is not None else None
        ),
    ]


# --- pages --------------------------------------------------------------------------------------


def newest_run(request: Request) -> m.RunSummary | None:
    """The newest run in the store, whatever the filters (None: the store is empty)."""
    page = read.list_runs(request, RunFilter(), limit=1, cursor=None)
    return page.runs[0] if page.runs else None


def failed_filter(flt: RunFilter) -> RunFilter | None:
    """`flt` narrowed to failed runs; None when its status filter leaves none."""
    wanted = [s for s in (flt.values("status") or FAILED) if s in FAILED]
    if not wanted:
        return None
    dims = (*((n, v) for n, v in flt.dimensions if n != "status"), ("status", tuple(wanted)))
    return RunFilter(flt.start, flt.end, dims)


def overview(request: Request, view: View) -> dict[str, Any]:
    """Tiles against the previous period, charts over time, recent failures."""
    now = read.summary_of(request, view.flt, "status", scores=False)
    figures = now.summary
    data: dict[str, Any] = {
        "summary": figures,
        "newest": None,
        "bucket": None,
        "charts": [],
        "chart_error": None,
    }
    if figures.runs == 0:
        data["newest"] = newest_run(request)
        data["tiles"] = []
        data["failures"] = []
        return data
    previous = view.previous()
    before = read.summary_of(request, previous, "status", scores=False) if previous is not None else None
    data["tiles"] = tiles(now, before)
    data["previous_runs"] = before.summary.runs if before is not None else None
    first = figures.first_ended_at.timestamp() if figures.first_ended_at else None
    last = figures.last_ended_at.timestamp() if figures.last_ended_at else None
    bucket = view.bucket(first, last)
    data["bucket"] = bucket
    chart_flt = RunFilter(None, view.flt.end, view.flt.dimensions) if view.preset == "all" else view.flt
    try:
        if bucket == "run":
            runs = read.list_runs(request, view.flt, limit=RUN_POINTS, cursor=None).runs
            data["charts"] = run_charts(runs, "")
        else:
            series = read.timeseries(request, chart_flt, bucket=bucket, group_by=None)  # type: ignore[arg-type]
            by_model = read.timeseries(request, chart_flt, bucket=bucket, group_by="model")  # type: ignore[arg-type]
            data["charts"] = bucket_charts(series, by_model)
    except RequestValidationError as exc:  # too many buckets for the range
        data["chart_error"] = "; ".join(str(e["msg"]) for e in exc.errors())
    failed = failed_filter(view.flt)
    data["failures"] = []
    if failed is not None:
        data["failures"] = read.list_runs(request, failed, limit=FAILURES_LISTED, cursor=None).runs
        kept = parse_qsl(view.query(drop=("bucket", "status")))
        data["failed_link"] = "/runs?" + urlencode(kept + [("status", s) for s in failed.values("status")])
    return data


def filter_options(request: Request, view: View) -> dict[str, list[str]]:
    """The values each filter of the form offers: those in the store, and those asked for."""
    out: dict[str, list[str]] = {}
    with read.reading(request) as conn:
        for name in SHOWN:
            if name == "status":  # in the order of the product's words: success first
                out[name] = [s.value for s in Status]
                continue
            found = queries.dimension_values(conn, name, limit=OPTION_LIMIT)
            out[name] = sorted(set(found) | set(view.values(name)), key=lambda v: (v not in found, v))
    return out


def runs_page(request: Request, view: View) -> dict[str, Any]:
    """A page of the run table in the view's order, and how many runs match."""
    sort, descending = view.sort
    with read.reading(request) as conn:
        rows = queries.list_runs_sorted(
            conn,
            view.flt,
            sort=sort,
            descending=descending,
            limit=PAGE_SIZE + 1,
            offset=(view.page - 1) * PAGE_SIZE,
        )
        total = queries.count_runs(conn, view.flt)
    runs = [m.RunSummary.model_validate(read.summary_row(r)) for r in rows[:PAGE_SIZE]]
    return {"runs": runs, "more": len(rows) > PAGE_SIZE, "total": total}


def run_page(request: Request, view: View, run_id: str) -> dict[str, Any]:
    """One run, its neighbouring failures in the view, and where its other views are."""
    run = read.get_run(request, run_id)
    key = (run.ended_at.timestamp(), run.run_id)
    with read.reading(request) as conn:
        older = queries.adjacent_run(conn, view.flt, key, newer=False, failed=True)
        newer = queries.adjacent_run(conn, view.flt, key, newer=True, failed=True)
        scores = queries.scores_of(conn, run.run_id) or []
    phases = [(p.name, p.duration_seconds, p.status.value if p.status else None) for p in run.phases]
    return {
        "run": run,
        "older_failure": older,
        "newer_failure": newer,
        "timeline": charts.timeline(phases) if phases else None,
        "scores": [m.ScoreOut.model_validate(dict(s)) for s in scores],
    }


def report_page(request: Request, view: View) -> dict[str, Any]:
    """The report over the view, and the trends ending at its end."""
    report = read.report(request, view.flt, min_attempts=5, confidence=0.95)
    trend_flt = RunFilter(None, view.flt.end, view.flt.dimensions)
    trends = read.trends(
        request=request,
        flt=trend_flt,
        window=None,
        min_points=5,
        threshold=0.1,
        success_rate_threshold=None,
        duration_threshold=None,
        cost_threshold=None,
        tokens_threshold=None,
    )
    return {"report": report, "trends": trends}


def health_page(request: Request, view: View) -> dict[str, Any]:
    """The on-call digest of `/api/v1/health` over the view's filters."""
    health = read.health(
        request=request,
        flt=view.flt,
        window="24h",
        baseline="7d",
        min_runs=5,
        ratio=1.5,
        min_increase=0.1,
        min_streak=3,
        errors=10,
    )
    return {"health": health}


def exporter_strip(request: Request) -> dict[str, Any]:
    """The exporter's own state: records accepted and rejected since it started, the store's state."""
    service = request.app.state.service

    def records(outcome: str) -> int:
        value = service.registry.get_sample_value("agent_exporter_records_total", {"outcome": outcome})
        return int(value or 0)

    writer = service.writer
    return {
        "accepted": records("accepted"),
        "rejected": records("rejected"),
        "conflicts": records("conflict"),
        "store_ok": writer.alive and writer.last_error is None,
        "store_error": str(writer.last_error) if writer.last_error is not None else None,
    }
