"""How the CLI shows what the exporter answered: number formats, and one table renderer a command.

Rich tables on standard output for people (`--json` prints the API's JSON instead). "failed" is
status failure, error or timeout; cancelled runs are shown on their own and left out of success
rates.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

import orjson
from rich import box
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from .. import humanize

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

STATUS_STYLE: Final = {
    "success": "green",
    "failure": "red",
    "error": "bold red",
    "timeout": "yellow",
    "cancelled": "dim",
}
TREND_STYLE: Final = {"improving": "green", "stable": "cyan", "declining": "red", "insufficient data": "dim"}


def fmt_time(value: str | None) -> str:
    """An API timestamp as `YYYY-MM-DD HH:MM` (UTC)."""
    if not value:
        return "-"
    return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M")


#: the number formats the web pages use too (one home: agent_exporter.humanize)
fmt_duration = humanize.duration
fmt_count = humanize.compact
fmt_usd = humanize.usd
fmt_rate = humanize.rate


def plural(count: int, noun: str) -> str:
    """`1 run`, `2 runs`."""
    return f"{count} {noun}" + ("" if count == 1 else "s")


def status_text(value: str) -> Text:
    """A run status in its colour."""
    return Text(value, style=STATUS_STYLE.get(value, ""))


def titled_table(title: str | None = None, **kwargs: Any) -> Table:
    """A table in the CLI's style, its title on the left."""
    return Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", title_style="bold", **kwargs)


def first_line(text: str | None, limit: int = 80) -> str:
    """The first line of `text`, cut at `limit` characters with an ellipsis."""
    if not text:
        return ""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def print_json(body: Any) -> None:
    """The API's JSON, indented, on standard output (`--json`)."""
    sys.stdout.write(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode() + "\n")


# --- one renderer a command ---------------------------------------------------------------------


def runs(body: dict[str, Any]) -> None:
    """The table of `runs`."""
    table = titled_table(f"{plural(len(body['runs']), 'run')}, newest first")
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
        ("counts", "left"),
        ("error", "left"),
    ):
        table.add_column(name, justify=justify, overflow="fold" if name == "run" else "ellipsis")  # type: ignore[arg-type]
    for run in body["runs"]:
        error = run.get("error_type") or ""
        if run.get("error_summary"):
            error = (
                f"{error}: {first_line(run['error_summary'], 60)}"
                if error
                else first_line(run["error_summary"], 60)
            )
        table.add_row(
            fmt_time(run["ended_at"]),
            run["run_id"],
            run["agent"],
            run.get("model") or "-",
            run.get("issue_type") or "-",
            status_text(run["status"]),
            fmt_duration(run["duration_seconds"]),
            fmt_count(run.get("total_tokens")),
            fmt_usd(run.get("cost_usd")),
            _counts(run.get("counts") or {}) or "-",
            error,
        )
    out.print(table)
    if body.get("next_cursor"):
        out.print(f"[dim]more: --cursor {body['next_cursor']}[/dim]")


def show(body: dict[str, Any]) -> None:
    """The table of `show`."""
    d = body["derived"]
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    rows: list[tuple[str, Any]] = [
        ("status", status_text(body["status"])),
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
    if body.get("session_id") or body.get("parent_run_id"):
        rows.append(
            ("session / parent", f"{body.get('session_id') or '-'} / {body.get('parent_run_id') or '-'}")
        )
    if body.get("counts"):
        rows.append(("counts", _counts(body["counts"])))
    for key, value in rows:
        facts.add_row(key, value)
    parts: list[Any] = [facts]
    if body["phases"]:
        phases = titled_table("phases")
        for name in ("phase", "duration", "status"):
            phases.add_column(name, justify="right" if name == "duration" else "left")
        for p in body["phases"]:
            phases.add_row(
                p["name"],
                fmt_duration(p["duration_seconds"]),
                status_text(p["status"]) if p.get("status") else "-",
            )
        parts.append(phases)
    if body["usage"]:
        usage = titled_table("usage by model")
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
        tools = titled_table("tools")
        for name in ("tool", "calls", "errors", "time"):
            tools.add_column(name, justify="left" if name == "tool" else "right")
        for t in body["tools"]:
            tools.add_row(
                t["name"], str(t["calls"]), str(t["errors"]), fmt_duration(t.get("duration_seconds"))
            )
        parts.append(tools)
    parts.extend(_workflow_tables(body))
    out.print(Panel(Group(*parts), title=f"run {body['run_id']}", title_align="left", box=box.ROUNDED))


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {fmt_count(v)}" for k, v in sorted(counts.items()))


def _workflow_tables(body: dict[str, Any]) -> list[Table]:
    """`show`'s tables of the sub-agents, pipeline attempts, debugging cycles and child runs."""
    tables: list[Table] = []
    if body.get("subagents"):
        table = titled_table("sub-agents")
        for name in ("sub-agent", "attempts", "successes", "failures", "retries", "time"):
            table.add_column(name, justify="left" if name == "sub-agent" else "right")
        for s in body["subagents"]:
            table.add_row(
                s["name"],
                *(str(s[k]) for k in ("attempts", "successes", "failures", "retries")),
                fmt_duration(s.get("duration_seconds")),
            )
        tables.append(table)
    if body.get("pipeline_attempts"):
        table = titled_table("pipeline attempts, in order")
        for name in ("#", "pipeline", "status", "commit", "time"):
            table.add_column(name, justify="right" if name in ("#", "time") else "left")
        for i, p in enumerate(body["pipeline_attempts"], 1):
            table.add_row(
                str(i),
                p.get("id") or "-",
                status_text(p["status"]),
                p.get("commit") or "-",
                fmt_duration(p.get("duration_seconds")),
            )
        tables.append(table)
    if body.get("debugging_cycles"):
        table = titled_table("debugging cycles")
        for name in ("agent", "error type", "attempts", "resolved", "time"):
            table.add_column(name, justify="right" if name in ("attempts", "time") else "left")
        for c in body["debugging_cycles"]:
            table.add_row(
                c.get("agent") or "-",
                c.get("error_type") or "-",
                str(c["attempts"]),
                "yes" if c["resolved"] else Text("no", "red"),
                fmt_duration(c.get("duration_seconds")),
            )
        tables.append(table)
    totals = body.get("children_totals")
    if totals:
        title = (
            f"child runs: {plural(totals['runs'], 'run')}, {totals['failures']} failed, "
            f"{fmt_usd(totals.get('cost_usd'))}, {fmt_duration(totals['duration_seconds'])} in all"
        )
        table = titled_table(title)
        for name in ("run", "agent", "status", "duration", "cost"):
            table.add_column(name, justify="right" if name in ("duration", "cost") else "left")
        for c in body.get("children", []):
            table.add_row(
                c["run_id"],
                c["agent"],
                status_text(c["status"]),
                fmt_duration(c["duration_seconds"]),
                fmt_usd(c.get("cost_usd")),
            )
        tables.append(table)
    return tables


def summary(body: dict[str, Any]) -> None:
    """The table of `summary`."""
    group_by = body["group_by"]
    table = titled_table("summary" + (f" by {group_by}" if group_by else ""))
    table.add_column(group_by or "", style="bold")
    for name in _FIGURE_HEADERS:
        table.add_column(name, justify="right")
    for g in body["groups"]:
        table.add_row(g["group"] or "(none)", *_figures_row(g))
    table.add_row("all", *_figures_row(body["summary"]), style="bold" if body["groups"] else None)
    out.print(table)


def report(body: dict[str, Any]) -> None:
    """The table of `report`."""
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
        f" ({fmt_usd(s.get('cost_per_success_usd'))} per success); {plural(s['total_agents'], 'agent')}, "
        f"{plural(s['total_models'], 'model')}, {plural(s['total_issue_types'], 'issue type')}"
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
        table = titled_table(title)
        _rated_columns(table, first.replace("_", " "))
        for row in body[key]:
            table.add_row(*_rated_row(row[first], row))
        out.print(table)
    recs = titled_table(
        "recommendations (ranked by the lower bound of the 95% interval; "
        f"at least {plural(body['min_attempts'], 'attempt')}, cancelled runs aside)"
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
        matrix = titled_table("model comparison: success rate per issue type (attempts)")
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
    _workflow_report(body)


def _workflow_report(body: dict[str, Any]) -> None:
    """`report`'s answers to seed 004 and its scores (when the server has them)."""
    flow = body.get("workflow")
    if flow:
        out.print(f"[bold]{flow['failed_cost_sentence']}[/bold] ({fmt_rate(flow.get('failed_cost_share'))})")
        if flow["pipeline_runs"]:
            out.print(
                f"pipelines passing on the first attempt: {fmt_rate(flow['first_attempt_pass_rate'])} "
                f"({flow['first_attempt_passed']} of {plural(flow['pipeline_runs'], 'issue')}, "
                f"{plural(flow['pipeline_attempts'], 'attempt')})"
            )
        if flow["debugging_runs"]:
            out.print(
                f"debugging cycles per issue: {flow['debugging_cycles_per_issue']:.2f} "
                f"({plural(flow['debugging_cycles'], 'cycle')} "
                f"over {plural(flow['debugging_runs'], 'issue')})"
            )
        if flow["subagents"]:
            table = titled_table(f"retries per sub-agent (most: {flow.get('most_retries') or 'none'})")
            for name in ("sub-agent", "runs", "attempts", "failures", "retries", "retries/run"):
                table.add_column(name, justify="left" if name == "sub-agent" else "right")
            for sub in flow["subagents"]:
                table.add_row(
                    sub["name"],
                    *(str(sub[k]) for k in ("runs", "attempts", "failures", "retries")),
                    f"{sub['retries_per_run']:.2f}",
                )
            out.print(table)
    scores = body.get("scores")
    if scores and (scores["scores"] or scores.get("quality") is not None):
        out.print(
            f"scores: {plural(scores['scores'], 'score')}; quality {_score(scores.get('quality'))}, "
            f"collaboration {_score(scores.get('collaboration'))}"
        )
        table = titled_table("scores by agent")
        for name in ("agent", "scores", "quality", "collaboration"):
            table.add_column(name, justify="left" if name == "agent" else "right")
        for row in body.get("scores_by_agent", []):
            table.add_row(
                row["key"] or "-",
                str(row["scores"]),
                _score(row.get("quality")),
                _score(row.get("collaboration")),
            )
        out.print(table)


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def trends(body: dict[str, Any]) -> None:
    """The table of `trends`."""
    table = titled_table(
        f"trends (Theil-Sen over daily values; a trend needs {body['min_points']} days with runs)"
    )
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
    fmt: dict[str, Callable[[float | None], str]] = {
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


def health(body: dict[str, Any]) -> None:
    """The table of `health`."""
    style = {"ok": "green", "degraded": "red", "no data": "yellow"}[body["status"]]
    out.print(f"[bold {style}]{body['status'].upper()}[/bold {style}]  as of {fmt_time(body['as_of'])} UTC")
    for sentence in body["findings"]:
        out.print(f"  • {sentence}")
    if body["failure_streaks"]:
        table = titled_table("failure streaks")
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
        table = titled_table("anomalies against the baseline")
        for name in ("agent", "metric", "window", "baseline"):
            table.add_column(name)
        for a in body["anomalies"]:
            table.add_row(a["agent"], a["metric"], f"{a['window_value']:.4g}", f"{a['baseline_value']:.4g}")
        out.print(table)
    if body["errors"]:
        table = titled_table("failed runs by error type (window)")
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
                (e["latest_run_id"] or "(deleted by retention)")
                + (f": {first_line(e['latest_summary'], 80)}" if e.get("latest_summary") else ""),
            )
        out.print(table)


def reprice(body: dict[str, Any]) -> None:
    """The table of `reprice`."""
    verb = "would change" if body["dry_run"] else "changed"
    table = titled_table(
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
        f"(≥{fmt_rate(p['success_rate_lower'])}, {plural(p['attempts'], 'attempt')})"
    )


def budget(body: list[dict[str, Any]]) -> None:
    """The table of `budget`."""
    if not body:
        out.print("no budgets: set budgets_file to alerts/config.yaml, whose cost.owner_budgets lists them")
        return
    table = titled_table("budgets per owner, this UTC day or month")
    for name in ("owner", "period", "budget", "spent", "share", "projected", "projected share"):
        table.add_column(name, justify="left" if name in ("owner", "period") else "right")
    for b in body:
        table.add_row(
            f"{b['owner']} {b['name']}",
            b["period"],
            fmt_usd(b["budget_usd"]),
            fmt_usd(b["spent_usd"]),
            fmt_rate(b["spent_share"]),
            fmt_usd(b["projected_usd"]),
            Text(fmt_rate(b["projected_share"]), "red" if b["over_budget"] else ""),
        )
    out.print(table)
