"""Bars of whole UTC days and ISO weeks, computed by the store's SQL.

Why SQL and not `increase(...[1d])` with a 1d step: Grafana aligns a PromQL range query's start and
end to its step, so a 1d step puts yesterday's total at today's midnight, never shows today, and a
1w step starts weeks on a Thursday (the Unix epoch's weekday). Grouping the stored runs by UTC day
(and ISO week, from Monday) gives each bar the exact runs of that day, today's so far included, and
the x axis shows the date as text, the same in every browser's time zone.

Each panel covers the whole UTC days (weeks) that the time range touches: over the default last
24 hours that is yesterday's whole day and today's so far.
"""

from __future__ import annotations

from ..panels import STATUS_COLORS, Json, barchart, sql
from .selectors import STATUSES
from .store import DAY, WHOLE_DAYS, WHOLE_WEEKS, match, utc_date, utc_week_start

WHOLE_DAYS_NOTE = (
    " Whole UTC days: the first bar is the whole day the time range starts in, the last one today so far."
)


def _by(key: str, value: str, *, day: str) -> list[Json]:
    """Grafana's transformation from rows (day, key, value) to a column per key, a row per day."""
    return [
        {
            "id": "groupingToMatrix",
            "options": {"columnField": key, "rowField": day, "valueField": value},
        }
    ]


def runs_per_day_by_status(*variables: str) -> Json:
    """One bar a UTC day, stacked by status; every day of the range, those without runs at 0."""
    on = " AND ".join(match(v) for v in variables)  # no column of `days` shares a name with these
    counts = ",\n".join(
        f"       count(runs.run_id) FILTER (WHERE runs.status = '{s}') AS {s}" for s in STATUSES
    )
    query = (
        "WITH days AS (\n"
        f"  SELECT generate_series(floor($__unixEpochFrom() / {DAY}.0)::bigint * {DAY},\n"
        f"                         $__unixEpochTo(), {DAY}) AS start\n"
        ")\n"
        f"SELECT {utc_date('days.start')} AS day,\n{counts}\n"
        "FROM days\n"
        f"LEFT JOIN runs ON runs.ended_at >= days.start AND runs.ended_at < days.start + {DAY}\n"
        f"  AND runs.ended_at <= $__unixEpochTo() AND {on}\n"
        "GROUP BY days.start\nORDER BY days.start"
    )
    overrides = [
        {
            "matcher": {"id": "byName", "options": s},
            "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": c}}],
        }
        for s, c in STATUS_COLORS.items()
        if c != "text"
    ]
    return barchart(
        "Runs per day by status",
        "Runs that ended each UTC day, by status." + WHOLE_DAYS_NOTE,
        [sql(query)],
        "short",
        x_field="day",
        horizontal=False,
        stack=True,
        overrides=overrides,
    )


def success_per_day_by_agent(*variables: str) -> Json:
    """Success over non-cancelled runs, one group of bars a UTC day, a bar per agent."""
    where = " AND ".join([WHOLE_DAYS, *(match(v) for v in variables)])
    query = (
        f"SELECT {utc_date(f'floor(ended_at / {DAY}) * {DAY}')} AS day, agent,\n"
        "       avg((status = 'success')::int) FILTER (WHERE status <> 'cancelled') AS \"success rate\"\n"
        f"FROM runs\nWHERE {where}\nGROUP BY 1, 2\nORDER BY 1, 2"
    )
    return barchart(
        "Success rate per day by agent",
        "Successful over non-cancelled runs each UTC day, per agent; a day without runs has no bar. "
        "The status filter does not apply." + WHOLE_DAYS_NOTE,
        [sql(query)],
        "percentunit",
        horizontal=False,
        max_=1,
        transformations=_by("agent", "success rate", day="day"),
    )


def spend_per_day_by_model(*variables: str, width: int = 12) -> Json:
    """US dollars each UTC day, stacked by model."""
    where = " AND ".join([WHOLE_DAYS, *(match(v) for v in variables)])
    query = (
        f"SELECT {utc_date(f'floor(ended_at / {DAY}) * {DAY}')} AS day,\n"
        "       coalesce(model, 'unknown') AS model,\n"
        "       coalesce(sum(cost_usd), 0) AS spend\n"
        f"FROM runs\nWHERE {where}\nGROUP BY 1, 2\nORDER BY 1, 2"
    )
    return barchart(
        "Spend per day by model",
        "US dollars spent each UTC day by the runs with a known cost, per model; a day without runs has no "
        "bar." + WHOLE_DAYS_NOTE,
        [sql(query)],
        "currencyUSD",
        horizontal=False,
        stack=True,
        transformations=_by("model", "spend", day="day"),
        width=width,
    )


def runs_per_week_by_agent(*variables: str) -> Json:
    """Runs each ISO week (UTC, from Monday), stacked by agent."""
    where = " AND ".join([WHOLE_WEEKS, *(match(v) for v in variables)])
    query = (
        f"SELECT {utc_date(utc_week_start('ended_at'))} AS week, agent, count(*) AS runs\n"
        f"FROM runs\nWHERE {where}\nGROUP BY 1, 2\nORDER BY 1, 2"
    )
    return barchart(
        "Runs per week by agent",
        "Runs that ended each ISO week (UTC, from Monday; the bar is named by its Monday), per agent. Whole "
        "weeks: the first bar is the whole week the time range starts in, the last one this week so far.",
        [sql(query)],
        "short",
        horizontal=False,
        stack=True,
        transformations=_by("agent", "runs", day="week"),
    )
