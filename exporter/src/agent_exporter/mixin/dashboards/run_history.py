"""The run-history dashboard: SQL over the store's runs (recent runs, failures, daily and weekly)."""

from __future__ import annotations

from typing import Final

from ..config import MixinConfig
from ..panels import (
    Json,
    dashboard,
    row,
    sql,
    stat,
    status_override,
    table,
    timeseries,
    unit_override,
)
from ..rules import (
    RUNS_UID,
)
from .daily import (
    runs_per_day_by_status,
    runs_per_week_by_agent,
    spend_per_day_by_model,
    success_per_day_by_agent,
)
from .selectors import (
    FAILED_SQL,
)
from .store import run_links, store_filter, store_variables, utc_date, utc_week_start

_FILTER_NO_STATUS: Final = store_filter("agent", "model", "issue_type")
_RUN_FILTER: Final = store_filter("agent", "model", "issue_type", "status")
_VARIABLES: Final = ("agent", "model", "issue_type", "status")


def _daily(bucket: str, label: str) -> str:
    return (
        f'SELECT {utc_date(bucket)} AS "{label}",\n'
        "       count(*) AS runs,\n"
        "       avg((status = 'success')::int) FILTER (WHERE status <> 'cancelled') AS \"success rate\",\n"
        f"       count(*) FILTER (WHERE status IN {FAILED_SQL}) AS failed,\n"
        "       count(*) FILTER (WHERE status = 'cancelled') AS cancelled,\n"
        '       percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_seconds) AS "p50 duration",\n'
        '       percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_seconds) AS "p95 duration",\n'
        "       sum(input_tokens + output_tokens) AS tokens,\n"
        "       sum(cost_usd) AS cost\n"
        f"FROM runs\nWHERE {_RUN_FILTER}\nGROUP BY 1\nORDER BY 1 DESC"
    )


_HISTORY_UNITS: Final = (
    unit_override("success rate", "percentunit"),
    unit_override("p50 duration", "s"),
    unit_override("p95 duration", "s"),
    unit_override("tokens", "short"),
    unit_override("cost", "currencyUSD"),
)


def run_history(cfg: MixinConfig) -> Json:
    """SQL over the store: recent runs, failures by error type, daily and weekly history."""
    panels: list[Json] = [
        row("Runs in range (from the store)"),
        stat(
            "Runs",
            "Runs that ended in the time range.",
            [sql(f"SELECT count(*) AS runs FROM runs WHERE {_RUN_FILTER}")],
            "short",
            decimals=0,
        ),
        stat(
            "Success rate",
            "Successful over non-cancelled runs in the time range. The status filter does not apply.",
            [
                sql(
                    "SELECT avg((status = 'success')::int) AS \"success rate\" FROM runs\n"
                    f"WHERE {_FILTER_NO_STATUS} AND status <> 'cancelled'"
                )
            ],
            "percentunit",
            decimals=1,
        ),
        stat(
            "Failed runs",
            "Runs that ended with status failure, error or timeout. The status filter does not apply.",
            [
                sql(
                    f"SELECT count(*) AS failed FROM runs WHERE {_FILTER_NO_STATUS}\n"
                    f"  AND status IN {FAILED_SQL}"
                )
            ],
            "short",
            decimals=0,
        ),
        stat(
            "p95 duration",
            "Exact 95th percentile of run duration in the time range (from the stored runs, not buckets).",
            [
                sql(
                    "SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_seconds) AS p95\n"
                    f"FROM runs WHERE {_RUN_FILTER}"
                )
            ],
            "s",
        ),
        stat(
            "Cost",
            "US dollars spent by the runs in the time range (runs with a known cost).",
            [sql(f"SELECT sum(cost_usd) AS cost FROM runs WHERE {_RUN_FILTER}")],
            "currencyUSD",
            decimals=2,
        ),
        stat(
            "Tokens per run",
            "Mean input plus output tokens per run.",
            [sql(f"SELECT avg(input_tokens + output_tokens) AS tokens FROM runs WHERE {_RUN_FILTER}")],
            "short",
        ),
        timeseries(
            "Runs by status",
            "Runs that ended in each interval, by status.",
            [
                sql(
                    "SELECT $__unixEpochGroupAlias(ended_at, $__interval), status AS metric, count(*) AS "
                    "runs\n"
                    f"FROM runs\nWHERE {_RUN_FILTER}\nGROUP BY 1, 2\nORDER BY 1",
                    time_series=True,
                )
            ],
            "short",
            bars=True,
            stack=True,
            width=24,
        ),
        table(
            "Recent runs",
            "The 500 newest runs in the time range; click a run_id for its phases, per-model usage, tools "
            "and "
            "error.",
            [
                sql(
                    "SELECT to_timestamp(ended_at) AS ended, run_id, agent, model, issue_type, status,\n"
                    "       duration_seconds AS duration, input_tokens + output_tokens AS tokens,\n"
                    "       cost_usd AS cost, llm_calls, tool_calls, error_type, error_summary\n"
                    f"FROM runs\nWHERE {_RUN_FILTER}\nORDER BY ended_at DESC\nLIMIT 500"
                )
            ],
            overrides=[
                run_links(cfg.links.exporter_url),
                unit_override("duration", "s"),
                unit_override("tokens", "short"),
                unit_override("cost", "currencyUSD"),
                status_override(),
            ],
            height=14,
        ),
        table(
            "Failures by error type",
            "Failed runs (failure, error, timeout) in the time range grouped by error_type, with the newest "
            "run and its error summary. The status filter does not apply.",
            [
                sql(
                    "SELECT coalesce(error_type, 'unknown') AS error_type, count(*) AS runs,\n"
                    "       to_timestamp(max(ended_at)) AS last_seen,\n"
                    "       (array_agg(run_id ORDER BY ended_at DESC))[1] AS run_id,\n"
                    "       (array_agg(error_summary ORDER BY ended_at DESC))[1] AS latest_summary\n"
                    f"FROM runs\nWHERE {_FILTER_NO_STATUS} AND status IN {FAILED_SQL}\n"
                    "GROUP BY 1\nORDER BY runs DESC"
                )
            ],
            overrides=[run_links(cfg.links.exporter_url)],
        ),
        row("Daily and weekly (whole UTC days and ISO weeks)"),
        runs_per_day_by_status(*_VARIABLES),
        success_per_day_by_agent("agent", "model", "issue_type"),
        spend_per_day_by_model(*_VARIABLES),
        runs_per_week_by_agent(*_VARIABLES),
        row("History (beyond Prometheus retention)"),
        table(
            "Daily",
            "One row per UTC day (its date): runs, success rate (over the runs not cancelled), failed runs "
            "(failure, error, timeout), cancelled runs, exact duration percentiles, tokens, cost.",
            [sql(_daily("floor(ended_at / 86400) * 86400", "day"))],
            overrides=_HISTORY_UNITS,
            width=12,
        ),
        table(
            "Weekly",
            "One row per ISO week (UTC, from Monday; the row is named by its Monday): the same figures as "
            "the daily table.",
            [sql(_daily(utc_week_start("ended_at"), "week"))],
            overrides=_HISTORY_UNITS,
            width=12,
        ),
    ]
    return dashboard(
        RUNS_UID,
        "Agents: run history",
        "Which runs failed and why: the stored run records (PostgreSQL), with a drill-down to one run.",
        panels,
        store_variables(*_VARIABLES),
        time_from=cfg.dashboards.time_from,
        refresh=cfg.dashboards.refresh,
    )
