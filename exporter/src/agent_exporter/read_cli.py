"""CLI commands that talk to a running exporter: runs, show, summary, report, trends, health, import,
reprice. Rich tables for people, `--json` (the API's own JSON) for machines.

The server is `--url`, or `AGENT_EXPORTER_URL`, or http://127.0.0.1:9477. "failed" is status failure,
error or timeout; cancelled runs are shown on their own and left out of success rates (README, "What
counts as a failure").
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Final, NoReturn
from urllib.parse import quote

import httpx
import orjson
import typer
from rich import box
from rich.console import Console, Group
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from .importer import Checkpoint, ImportAbortedError, Importer, ImportResult, LineError, default_checkpoint

DEFAULT_URL: Final = "http://127.0.0.1:9477"
READ_TIMEOUT: Final = 120.0
REPRICE_TIMEOUT: Final = 3600.0

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

UrlOption = Annotated[
    str,
    typer.Option("--url", envvar="AGENT_EXPORTER_URL", help="Base URL of the running exporter."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the API's JSON instead of tables.")]
FromOption = Annotated[
    str | None,
    typer.Option(
        "--from", "--since", help="Runs that ended at or after: RFC 3339, a date, or relative (7d, 24h)."
    ),
]
ToOption = Annotated[str | None, typer.Option("--to", "--until", help="Runs that ended before (same forms).")]
AgentOption = Annotated[list[str] | None, typer.Option("--agent", help="Only this agent (repeatable).")]
ModelOption = Annotated[list[str] | None, typer.Option("--model", help="Only this model (repeatable).")]
StatusOption = Annotated[
    list[str] | None,
    typer.Option("--status", help="success, failure, error, timeout or cancelled (repeatable)."),
]
IssueTypeOption = Annotated[
    list[str] | None, typer.Option("--issue-type", help="Only this issue type (repeatable).")
]
ProjectOption = Annotated[list[str] | None, typer.Option("--project", help="Only this project (repeatable).")]

STATUS_STYLE: Final = {
    "success": "green",
    "failure": "red",
    "error": "bold red",
    "timeout": "yellow",
    "cancelled": "dim",
}
TREND_STYLE: Final = {"improving": "green", "stable": "cyan", "declining": "red", "insufficient data": "dim"}


# --- plumbing --------------------------------------------------------------------------------------


def _fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


@contextmanager
def _client(url: str, timeout: float = READ_TIMEOUT) -> Iterator[httpx.Client]:
    base = url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        _fail(f"--url {url!r}: give an http:// or https:// URL, such as {DEFAULT_URL}", 2)
    # the same variable as the client SDK's; with separate tokens, set it per command
    token = os.environ.get("AGENT_EXPORTER_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=base, timeout=httpx.Timeout(timeout, connect=5.0), headers=headers) as client:
        yield client


def _request(url: str, method: str, path: str, params: dict[str, Any], timeout: float = READ_TIMEOUT) -> Any:
    """The decoded JSON of a read-API call; a clear message and exit 1 on any failure."""
    with _client(url, timeout) as client:
        try:
            response = client.request(method, path, params={k: v for k, v in params.items() if v is not None})
        except httpx.TransportError as exc:
            _fail(
                f"cannot reach the exporter at {client.base_url} ({exc}): is it running? "
                "Point --url or AGENT_EXPORTER_URL at it."
            )
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:300] or response.reason_phrase
        if response.status_code == 401:
            message += " (set AGENT_EXPORTER_TOKEN to a token the exporter accepts)"
        _fail(f"HTTP {response.status_code}: {message}", 2 if response.status_code == 422 else 1)
    return response.json()


def _filters(
    *,
    since: str | None,
    until: str | None,
    agent: list[str] | None,
    model: list[str] | None,
    status: list[str] | None,
    issue_type: list[str] | None,
    project: list[str] | None,
) -> dict[str, Any]:
    return {
        "from": since,
        "to": until,
        "agent": agent or None,
        "model": model or None,
        "status": status or None,
        "issue_type": issue_type or None,
        "project": project or None,
    }


def _print_json(body: Any) -> None:
    sys.stdout.write(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode() + "\n")


# --- formatting ------------------------------------------------------------------------------------


def fmt_time(value: str | None) -> str:
    """An API timestamp as `YYYY-MM-DD HH:MM` (UTC)."""
    if not value:
        return "-"
    return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M")


def fmt_duration(seconds: float | None) -> str:
    """Seconds as 850ms, 42.5s, 3m 05s, 2h 04m."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def fmt_count(value: float | None) -> str:
    """1234 -> 1,234; 1234567 -> 1.23M."""
    if value is None:
        return "-"
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e4, "k")):
        if abs(value) >= size:
            return f"{value / size:.2f}{suffix}" if suffix != "k" else f"{value / 1e3:.1f}k"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def fmt_usd(value: float | None) -> str:
    """USD with cents ($0.0042 for sub-cent amounts)."""
    if value is None:
        return "-"
    return f"${value:,.4f}" if 0 < abs(value) < 0.01 else f"${value:,.2f}"


def fmt_rate(value: float | None) -> str:
    """A fraction as a percentage."""
    return "-" if value is None else f"{value:.1%}"


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _status(value: str) -> Text:
    return Text(value, style=STATUS_STYLE.get(value, ""))


def _table(title: str | None = None, **kwargs: Any) -> Table:
    return Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", title_style="bold", **kwargs)


def _first_line(text: str | None, limit: int = 80) -> str:
    if not text:
        return ""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


# --- commands --------------------------------------------------------------------------------------


def runs(
    *,
    url: UrlOption = DEFAULT_URL,
    since: FromOption = None,
    until: ToOption = None,
    agent: AgentOption = None,
    model: ModelOption = None,
    status: StatusOption = None,
    issue_type: IssueTypeOption = None,
    project: ProjectOption = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000, help="Runs to list.")] = 20,
    cursor: Annotated[str | None, typer.Option(help="Continue after a previous page.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List runs, newest first, with status, duration, tokens, cost and error."""
    params = {
        **_filters(
            since=since,
            until=until,
            agent=agent,
            model=model,
            status=status,
            issue_type=issue_type,
            project=project,
        ),
        "limit": limit,
        "cursor": cursor,
    }
    body = _request(url, "GET", "/api/v1/runs", params)
    if as_json:
        _print_json(body)
        return
    table = _table(f"{_n(len(body['runs']), 'run')}, newest first")
    for name, justify in (
        ("ended (UTC)", "left"),
        ("run", "left"),
        ("agent", "left"),
        ("model", "left"),
        ("issue type", "left"),
        ("status", "left"),
        ("duration", "right"),
        ("tokens", "right"),
        ("cost", "right"),
        ("error", "left"),
    ):
        table.add_column(name, justify=justify, overflow="fold" if name == "run" else "ellipsis")  # type: ignore[arg-type]
    for run in body["runs"]:
        error = run.get("error_type") or ""
        if run.get("error_summary"):
            error = (
                f"{error}: {_first_line(run['error_summary'], 60)}"
                if error
                else _first_line(run["error_summary"], 60)
            )
        table.add_row(
            fmt_time(run["ended_at"]),
            run["run_id"],
            run["agent"],
            run.get("model") or "-",
            run.get("issue_type") or "-",
            _status(run["status"]),
            fmt_duration(run["duration_seconds"]),
            fmt_count(run.get("total_tokens")),
            fmt_usd(run.get("cost_usd")),
            error,
        )
    out.print(table)
    if body.get("next_cursor"):
        out.print(f"[dim]more: --cursor {body['next_cursor']}[/dim]")


def show(
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
    *,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Everything about one run: phases, per-model usage, tools, error, derived figures."""
    body = _request(url, "GET", f"/api/v1/runs/{quote(run_id, safe='/')}", {})
    if as_json:
        _print_json(body)
        return
    d = body["derived"]
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    rows: list[tuple[str, Any]] = [
        ("status", _status(body["status"])),
        ("agent", f"{body['agent']} {body.get('agent_version') or ''}".strip()),
        ("model", f"{body.get('model') or '-'} ({body.get('provider') or 'provider unknown'})"),
        ("issue type", body.get("issue_type") or "-"),
        (
            "project",
            " / ".join(x for x in (body.get("project"), body.get("team"), body.get("environment")) if x)
            or "-",
        ),
        ("started", fmt_time(body["started_at"])),
        (
            "ended",
            fmt_time(body["ended_at"]) + ("" if body.get("ended_at_reported", True) else " (receipt time)"),
        ),
        ("duration", fmt_duration(body["duration_seconds"])),
        (
            "tokens",
            f"{fmt_count(body.get('input_tokens'))} in, {fmt_count(body.get('output_tokens'))} out"
            f" (cache hit {fmt_rate(d.get('cache_hit_ratio'))},"
            f" reasoning {fmt_count(body.get('reasoning_tokens'))})",
        ),
        ("cost", f"{fmt_usd(body.get('cost_usd'))} ({body['cost_source']})"),
        (
            "calls",
            f"{fmt_count(body.get('llm_calls'))} LLM, {fmt_count(body.get('tool_calls'))} tool"
            f" ({d['tool_errors']} tool errors)"
            + (f", {body['retries']} retries" if body.get("retries") is not None else ""),
        ),
        (
            "per LLM call",
            f"{fmt_count(d.get('tokens_per_llm_call'))} tokens, {fmt_usd(d.get('cost_per_llm_call_usd'))}",
        ),
    ]
    if body.get("quality_score") is not None or body.get("confidence") is not None:
        rows.append(("quality / confidence", f"{body.get('quality_score')} / {body.get('confidence')}"))
    if body.get("error_type") or body.get("error_summary"):
        rows.append(
            (
                "error",
                Text(f"{body.get('error_type') or ''}\n{body.get('error_summary') or ''}".strip(), "red"),
            )
        )
    if body.get("labels"):
        rows.append(("labels", ", ".join(f"{k}={v}" for k, v in sorted(body["labels"].items()))))
    for key, value in rows:
        facts.add_row(key, value)
    parts: list[Any] = [facts]
    if body["phases"]:
        phases = _table("phases")
        for name in ("phase", "duration", "status"):
            phases.add_column(name, justify="right" if name == "duration" else "left")
        for p in body["phases"]:
            phases.add_row(
                p["name"],
                fmt_duration(p["duration_seconds"]),
                _status(p["status"]) if p.get("status") else "-",
            )
        parts.append(phases)
    if body["usage"]:
        usage = _table("usage by model")
        for name in ("model", "input", "output", "cache read", "calls", "cost"):
            usage.add_column(name, justify="left" if name == "model" else "right")
        for u in body["usage"]:
            usage.add_row(
                u["model"],
                fmt_count(u.get("input_tokens")),
                fmt_count(u.get("output_tokens")),
                fmt_count(u.get("cache_read_tokens")),
                fmt_count(u.get("calls")),
                f"{fmt_usd(u.get('cost_usd'))} ({u['cost_source']})",
            )
        parts.append(usage)
    if body["tools"]:
        tools = _table("tools")
        for name in ("tool", "calls", "errors", "time"):
            tools.add_column(name, justify="left" if name == "tool" else "right")
        for t in body["tools"]:
            tools.add_row(
                t["name"], str(t["calls"]), str(t["errors"]), fmt_duration(t.get("duration_seconds"))
            )
        parts.append(tools)
    out.print(Panel(Group(*parts), title=f"run {body['run_id']}", title_align="left", box=box.ROUNDED))


def _figures_row(f: dict[str, Any]) -> list[Any]:
    return [
        fmt_count(f["runs"]),
        fmt_count(f["cancelled"]),
        fmt_count(f["failures"]),
        fmt_rate(f.get("success_rate")),
        fmt_duration(f.get("duration_p50_seconds")),
        fmt_duration(f.get("duration_p95_seconds")),
        fmt_count(f.get("tokens_per_run")),
        fmt_usd(f.get("cost_usd")),
        fmt_usd(f.get("cost_per_run_usd")),
        fmt_usd(f.get("cost_per_success_usd")),
        fmt_count(f.get("llm_calls_per_run")),
        fmt_count(f.get("tool_calls_per_run")),
    ]


_FIGURE_HEADERS: Final = (
    "runs",
    "cancelled",
    "failed",
    "success",
    "p50",
    "p95",
    "tokens/run",
    "cost",
    "cost/run",
    "cost/success",
    "LLM calls/run",
    "tool calls/run",
)


def summary(
    *,
    url: UrlOption = DEFAULT_URL,
    since: FromOption = None,
    until: ToOption = None,
    agent: AgentOption = None,
    model: ModelOption = None,
    status: StatusOption = None,
    issue_type: IssueTypeOption = None,
    project: ProjectOption = None,
    group_by: Annotated[
        str | None,
        typer.Option(help="agent, model, provider, issue_type, status, project, team or environment."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Count, success rate, duration percentiles, tokens, cost and calls, overall and per group."""
    params = {
        **_filters(
            since=since,
            until=until,
            agent=agent,
            model=model,
            status=status,
            issue_type=issue_type,
            project=project,
        ),
        "group_by": group_by,
    }
    body = _request(url, "GET", "/api/v1/summary", params)
    if as_json:
        _print_json(body)
        return
    table = _table("summary" + (f" by {group_by}" if group_by else ""))
    table.add_column(group_by or "", style="bold")
    for name in _FIGURE_HEADERS:
        table.add_column(name, justify="right")
    for g in body["groups"]:
        table.add_row(g["group"] or "(none)", *_figures_row(g))
    table.add_row("all", *_figures_row(body["summary"]), style="bold" if body["groups"] else None)
    out.print(table)


def _rated_columns(table: Table, first: str) -> None:
    table.add_column(first, style="bold", overflow="fold")
    for name in (
        "runs",
        "cancelled",
        "successes",
        "failed",
        "success",
        "lower 95%",
        "cost",
        "cost/success",
        "mean duration",
    ):
        table.add_column(name, justify="right")


def _rated_row(name: str | None, r: dict[str, Any]) -> list[Any]:
    return [
        name or "(none)",
        fmt_count(r["runs"]),
        fmt_count(r["cancelled"]),
        fmt_count(r["successes"]),
        fmt_count(r["failures"]),
        fmt_rate(r.get("success_rate")),
        fmt_rate(r.get("success_rate_lower")),
        fmt_usd(r.get("cost_usd")),
        fmt_usd(r.get("cost_per_success_usd")),
        fmt_duration(r.get("duration_mean_seconds")),
    ]


def _pick(p: dict[str, Any] | None) -> str:
    if not p:
        return "[dim]not enough attempts[/dim]"
    return (
        f"{p['name']} {fmt_rate(p['success_rate'])} "
        f"(≥{fmt_rate(p['success_rate_lower'])}, {_n(p['attempts'], 'attempt')})"
    )


def report(
    *,
    url: UrlOption = DEFAULT_URL,
    since: FromOption = None,
    until: ToOption = None,
    agent: AgentOption = None,
    model: ModelOption = None,
    status: StatusOption = None,
    issue_type: IssueTypeOption = None,
    project: ProjectOption = None,
    min_attempts: Annotated[int, typer.Option(min=1, help="Runs a candidate needs to be recommended.")] = 5,
    as_json: JsonOption = False,
) -> None:
    """The performance report: by model, agent and issue type; best agent and model per issue type."""
    params = {
        **_filters(
            since=since,
            until=until,
            agent=agent,
            model=model,
            status=status,
            issue_type=issue_type,
            project=project,
        ),
        "min_attempts": min_attempts,
    }
    body = _request(url, "GET", "/api/v1/report", params)
    if as_json:
        _print_json(body)
        return
    s = body["summary"]
    cancelled = (
        f" ({fmt_count(s['total_cancelled'])} cancelled, left out of the rates)"
        if s["total_cancelled"]
        else ""
    )
    out.print(
        f"[bold]{fmt_count(s['total_runs'])} runs[/bold]{cancelled}, {fmt_count(s['total_successful'])} "
        f"successful, {fmt_count(s['total_failed'])} failed ({fmt_rate(s['overall_success_rate'])} success), "
        f"{fmt_usd(s['total_cost_usd'])}"
        f" ({fmt_usd(s.get('cost_per_success_usd'))} per success); {_n(s['total_agents'], 'agent')}, "
        f"{_n(s['total_models'], 'model')}, {_n(s['total_issue_types'], 'issue type')}"
    )
    if s.get("runs_without_cost"):
        out.print(
            f"[yellow]{s['runs_without_cost']} runs have no known cost "
            "and are not in the cost figures[/yellow]"
        )
    for title, key, first in (
        ("by model", "by_model", "model"),
        ("by agent", "by_agent", "agent"),
        ("by issue type", "by_issue_type", "issue_type"),
    ):
        table = _table(title)
        _rated_columns(table, first.replace("_", " "))
        for row in body[key]:
            table.add_row(*_rated_row(row[first], row))
        out.print(table)
    recs = _table(
        "recommendations (ranked by the lower bound of the 95% interval; "
        f"at least {_n(body['min_attempts'], 'attempt')}, cancelled runs aside)"
    )
    for name in ("issue type", "best agent", "best model", "best combination"):
        recs.add_column(name, overflow="fold")
    for r in body["recommendations"]:
        recs.add_row(
            r["issue_type"] or "(none)", _pick(r["agent"]), _pick(r["model"]), _pick(r["combination"])
        )
    out.print(recs)
    comparison = body["model_comparison"]
    models = [m["model"] for m in comparison["models"]]
    if len(models) > 1:
        matrix = _table("model comparison: success rate per issue type (attempts)")
        matrix.add_column("issue type", style="bold", overflow="fold")
        for name in models:
            matrix.add_column(name or "(none)", justify="right")
        matrix.add_column("leader")
        for matchup in comparison["by_issue_type"]:
            cells = {c["model"]: c for c in matchup["models"]}
            row = [matchup["issue_type"] or "(none)"]
            for name in models:
                cell = cells.get(name)
                row.append(f"{fmt_rate(cell['success_rate'])} ({cell['attempts']})" if cell else "-")
            row.append(matchup.get("leader") or "-")
            matrix.add_row(*row)
        out.print(matrix)


def trends(
    *,
    url: UrlOption = DEFAULT_URL,
    until: ToOption = None,
    agent: AgentOption = None,
    model: ModelOption = None,
    status: StatusOption = None,
    issue_type: IssueTypeOption = None,
    project: ProjectOption = None,
    window: Annotated[
        list[int] | None, typer.Option(help="Window in days (repeatable; default 7, 30, 90).")
    ] = None,
    threshold: Annotated[
        float, typer.Option(help="Relative change over a window that counts as a trend.")
    ] = 0.1,
    as_json: JsonOption = False,
) -> None:
    """Rolling 7/30/90-day windows: level and Theil-Sen trend of success rate, duration, cost, tokens."""
    params = {
        **_filters(
            since=None,
            until=until,
            agent=agent,
            model=model,
            status=status,
            issue_type=issue_type,
            project=project,
        ),
        "window": window or None,
        "threshold": threshold,
    }
    body = _request(url, "GET", "/api/v1/trends", params)
    if as_json:
        _print_json(body)
        return
    table = _table(f"trends (Theil-Sen over daily values; a trend needs {body['min_points']} days with runs)")
    for name, justify in (
        ("window", "left"),
        ("metric", "left"),
        ("now", "right"),
        ("trend", "left"),
        ("change over window", "right"),
        ("per day", "right"),
        ("days", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    fmt = {
        "success_rate": fmt_rate,
        "duration_seconds": fmt_duration,
        "cost_per_run_usd": fmt_usd,
        "tokens_per_run": fmt_count,
    }
    label = {
        "success_rate": "success rate",
        "duration_seconds": "mean duration",
        "cost_per_run_usd": "cost per run",
        "tokens_per_run": "tokens per run",
    }
    for w in body["windows"]:
        for i, metric in enumerate(w["metrics"]):
            show_value = fmt[metric["metric"]]
            change = metric.get("relative_change")
            table.add_row(
                f"{w['days']}d ({w['runs']} run{'' if w['runs'] == 1 else 's'})" if i == 0 else "",
                label[metric["metric"]],
                show_value(metric.get("current")),
                Text(metric["trend"], style=TREND_STYLE.get(metric["trend"], "")),
                "-" if change is None else f"{change:+.1%}",
                "-" if metric.get("slope_per_day") is None else f"{metric['slope_per_day']:+.4g}",
                str(metric["data_points"]),
                end_section=i == len(w["metrics"]) - 1,
            )
    out.print(table)


def health(
    *,
    url: UrlOption = DEFAULT_URL,
    since: FromOption = None,
    until: ToOption = None,
    agent: AgentOption = None,
    model: ModelOption = None,
    issue_type: IssueTypeOption = None,
    project: ProjectOption = None,
    window: Annotated[str, typer.Option(help="Recent period to look at (when --from is not given).")] = "24h",
    baseline: Annotated[str, typer.Option(help="Trailing period before the window to compare with.")] = "7d",
    as_json: JsonOption = False,
) -> None:
    """Operational digest: failures, streaks, error types, anomalies against the baseline."""
    params = {
        **_filters(
            since=since,
            until=until,
            agent=agent,
            model=model,
            status=None,
            issue_type=issue_type,
            project=project,
        ),
        "window": window,
        "baseline": baseline,
    }
    body = _request(url, "GET", "/api/v1/health", params)
    if as_json:
        _print_json(body)
        return
    style = {"ok": "green", "degraded": "red", "no data": "yellow"}[body["status"]]
    out.print(f"[bold {style}]{body['status'].upper()}[/bold {style}]  as of {fmt_time(body['as_of'])} UTC")
    for sentence in body["findings"]:
        out.print(f"  • {sentence}")
    if body["failure_streaks"]:
        table = _table("failure streaks")
        for name in ("agent", "failed in a row", "cancelled (ignored)", "since", "error types"):
            table.add_column(name)
        for s in body["failure_streaks"]:
            table.add_row(
                s["agent"],
                ("≥" if s["at_least"] else "") + str(s["failures"]),
                str(s["cancelled"]),
                fmt_time(s["since"]),
                ", ".join(s["error_types"]),
            )
        out.print(table)
    if body["anomalies"]:
        table = _table("anomalies against the baseline")
        for name in ("agent", "metric", "window", "baseline"):
            table.add_column(name)
        for a in body["anomalies"]:
            table.add_row(a["agent"], a["metric"], f"{a['window_value']:.4g}", f"{a['baseline_value']:.4g}")
        out.print(table)
    if body["errors"]:
        table = _table("failed runs by error type (window)")
        for name, justify in (
            ("error type", "left"),
            ("runs", "right"),
            ("agents", "right"),
            ("last", "left"),
        ):
            table.add_column(name, justify=justify)  # type: ignore[arg-type]
        table.add_column("latest", overflow="fold")
        for e in body["errors"]:
            table.add_row(
                e["error_type"] or "(unspecified)",
                str(e["runs"]),
                str(e["agents"]),
                fmt_time(e["last_seen"]),
                e["latest_run_id"]
                + (f": {_first_line(e['latest_summary'], 80)}" if e.get("latest_summary") else ""),
            )
        out.print(table)


def import_runs(
    file: Annotated[str, typer.Argument(help="JSON lines of run records; - reads standard input.")],
    *,
    url: UrlOption = DEFAULT_URL,
    batch_size: Annotated[int, typer.Option(min=1, max=100_000, help="Records per request.")] = 500,
    backfill: Annotated[
        bool, typer.Option(help="Historical import: store without counting the runs in the agent_* metrics.")
    ] = False,
    checkpoint: Annotated[
        Path | None, typer.Option(help="Checkpoint file (default FILE.checkpoint); a rerun resumes from it.")
    ] = None,
    restart: Annotated[
        bool, typer.Option(help="Ignore the checkpoint and start from the first line.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Import run records, in batches, resumably: rerun the same command to continue after an interruption."""
    stdin = file == "-"
    source = Path(file)
    if not stdin and not source.is_file():
        _fail(f"{file}: no such file")
    marker = None if stdin else (checkpoint or default_checkpoint(source))
    start_line = start_offset = 0
    if marker is not None and not restart and marker.exists():
        saved = Checkpoint.load(marker)
        if saved is not None and saved.matches(source):
            start_line, start_offset = saved.line, saved.offset
            if not as_json:
                err.print(f"resuming after line {start_line} (checkpoint {marker}; --restart to start over)")
        else:
            err.print(
                f"[yellow]{marker} does not match {file} (changed since?): "
                "starting from the first line[/yellow]"
            )
    total = None if stdin else source.stat().st_size
    shown = 0

    def on_error(e: LineError) -> None:
        nonlocal shown
        shown += 1
        if not as_json and shown <= 100:
            progress.console.print(f"[red]{e}[/red]", markup=False, highlight=False, style="red")

    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]importing[/bold]"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(),
        console=err,
        disable=as_json,
    )
    task = progress.add_task("import", total=total, completed=start_offset, counts="")

    def on_progress(offset: int, r: ImportResult) -> None:
        progress.update(
            task, completed=offset, counts=f"{r.accepted} new, {r.duplicates} dup, {r.failed} failed"
        )

    def on_batch_done(offset: int, line: int) -> None:
        if marker is not None:
            Checkpoint(offset, line, Checkpoint.fingerprint(source, offset)).save(marker, source)

    with _client(url) as client, progress:
        importer = Importer(
            client, batch_size=batch_size, backfill=backfill, on_error=on_error, on_progress=on_progress
        )
        try:
            if stdin:
                result = importer.run(sys.stdin.buffer)
            else:
                with source.open("rb") as stream:
                    stream.seek(start_offset)
                    result = importer.run(
                        stream, start_line=start_line, start_offset=start_offset, on_batch_done=on_batch_done
                    )
        except ImportAbortedError as exc:
            progress.stop()
            where = f"; rerun the same command to resume from the checkpoint {marker}" if marker else ""
            _fail(f"{exc}{where}")
    if as_json:
        _print_json(result.as_dict())
    else:
        if shown > 100:
            err.print(f"[red]… and {shown - 100} more errors (--json lists them)[/red]")
        table = _table(f"imported {file}" + (f" from line {start_line + 1}" if start_line else ""))
        for name in ("lines", "accepted", "duplicates", "conflicts", "rejected", "not JSON"):
            table.add_column(name, justify="right")
        table.add_row(
            *(
                str(v)
                for v in (
                    result.lines,
                    result.accepted,
                    result.duplicates,
                    result.conflicts,
                    result.rejected,
                    result.invalid,
                )
            )
        )
        out.print(table)
    if result.failed:
        raise typer.Exit(1)


def reprice(
    *,
    url: UrlOption = DEFAULT_URL,
    since: FromOption = None,
    until: ToOption = None,
    agent: AgentOption = None,
    model: ModelOption = None,
    issue_type: IssueTypeOption = None,
    project: ProjectOption = None,
    dry_run: Annotated[bool, typer.Option(help="Show what would change; store nothing.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Recompute estimated costs with the server's current prices; reported costs are untouched."""
    params = {
        **_filters(
            since=since,
            until=until,
            agent=agent,
            model=model,
            status=None,
            issue_type=issue_type,
            project=project,
        ),
        "dry_run": dry_run,
    }
    body = _request(url, "POST", "/api/v1/reprice", params, timeout=REPRICE_TIMEOUT)
    if as_json:
        _print_json(body)
        return
    verb = "would change" if body["dry_run"] else "changed"
    table = _table(
        f"reprice ({'dry run' if body['dry_run'] else 'stored'}; "
        f"prices: {body['price_file'] or 'genai-prices'})"
    )
    for name in (
        "runs examined",
        f"runs {verb}",
        "became known",
        "became unknown",
        "cost before",
        "cost after",
        "delta",
    ):
        table.add_column(name, justify="right")
    delta = body["delta_usd"]
    table.add_row(
        str(body["runs_examined"]),
        str(body["runs_changed"]),
        str(body["became_known"]),
        str(body["became_unknown"]),
        fmt_usd(body["cost_before_usd"]),
        fmt_usd(body["cost_after_usd"]),
        Text(
            ("+" if delta > 0 else "") + fmt_usd(delta),
            style="red" if delta > 0 else "green" if delta < 0 else "",
        ),
    )
    out.print(table)


def register(app: typer.Typer) -> None:
    """Add the commands to the `agent-exporter` application."""
    for command in (runs, show, summary, report, trends, health, reprice):
        app.command()(command)
    app.command("import")(import_runs)
