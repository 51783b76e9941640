"""SQL over the store for the dashboards: variable filters, UTC days and weeks, the links to a run.

A store variable allows several values and All. Its values reach the SQL through Grafana's `:regex`
format (each value regex-escaped, several joined as `(a|b)`) inside a PostgreSQL dollar-quoted
string, where a quote is an ordinary character; All sends the variable's `allValue`, `.*`, as it
is. So neither an empty store (All with no options: Grafana would otherwise send an empty list,
`IN ()`) nor a value with a quote can break a panel's SQL. The same variables filter PromQL
(`agent=~"$agent"`), where Prometheus' datasource does its own escaping and `.*` is All too.

Days and weeks are UTC, whatever the database session's time zone, and shown as dates (text), not
as timestamps a browser would move into its own time zone.
"""

from __future__ import annotations

from typing import Final

from ..panels import POSTGRES, Json, custom_variable, datasource_variable, link_override, query_variable
from .selectors import RUN_LINK, STATUSES

#: the store's columns behind each variable (a run without a model or issue type shows as `unknown`)
COLUMNS: Final = {
    "agent": "agent",
    "model": "coalesce(model, 'unknown')",
    "issue_type": "coalesce(issue_type, 'unknown')",
    "status": "status",
}
DAY: Final = 86400


def match(variable: str) -> str:
    """SQL: the variable's column matches one of its selected values (every row for All)."""
    return f"{COLUMNS[variable]} ~ $$^(${{{variable}:regex}})\\Z$$"


def store_filter(*variables: str, time: bool = True) -> str:
    """The time range on `ended_at` (Unix seconds) and a match for each of `variables`."""
    parts = ["$__unixEpochFilter(ended_at)"] if time else []
    return " AND ".join([*parts, *(match(v) for v in variables)])


def store_variables(*names: str) -> list[Json]:
    """The store datasource and the variables `names`, their values read from the store."""
    variables = [datasource_variable("store", "Store", "grafana-postgresql-datasource")]
    for name in names:
        label = name.replace("_", " ").capitalize()
        if name == "status":
            variables.append(custom_variable("status", "Status", STATUSES))
        else:
            column = COLUMNS[name]
            variables.append(
                query_variable(name, label, f"SELECT DISTINCT {column} FROM runs ORDER BY 1", POSTGRES)
            )
    return variables


def utc_date(epoch_sql: str) -> str:
    """SQL: the UTC date (`2026-12-04`) of Unix seconds, as text."""
    return f"to_char(to_timestamp({epoch_sql}) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"


def utc_week_start(epoch_sql: str) -> str:
    """SQL: the Unix seconds of the Monday 00:00 UTC that starts the ISO week of `epoch_sql`."""
    return f"extract(epoch FROM date_trunc('week', to_timestamp({epoch_sql}) AT TIME ZONE 'UTC'))"


#: SQL: whole UTC days from the one the range starts in, to the range's end
WHOLE_DAYS: Final = (
    f"ended_at >= floor($__unixEpochFrom() / {DAY}.0) * {DAY} AND ended_at <= $__unixEpochTo()"
)
#: SQL: whole ISO weeks (UTC, from Monday) from the one the range starts in, to the range's end
WHOLE_WEEKS: Final = f"ended_at >= {utc_week_start('$__unixEpochFrom()')} AND ended_at <= $__unixEpochTo()"


def run_links(exporter_url: str) -> Json:
    """The data links of a run_id column: the run dashboard, and the exporter's run page if configured."""
    override = link_override("run_id", "Open run", RUN_LINK)
    if exporter_url:
        override["properties"][0]["value"].append(
            {
                "title": "Open in agent-exporter",
                "url": f"{exporter_url.rstrip('/')}/runs/${{__value.raw:percentencode}}",
                "targetBlank": True,
            }
        )
    return override
