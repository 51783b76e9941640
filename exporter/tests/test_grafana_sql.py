"""Every SQL panel, rendered the way Grafana renders it, run as the read-only role on PostgreSQL.

Each panel's SQL goes through Grafana's variable interpolation and macros (tests/grafana_render.py)
in each state of the dashboard's variables: an empty store (All, no options), All, one value of
each, and a value with a quote; it runs as the role grafana/store-reader.sql creates, on tables made
by the migrations and runs written by the store (tests/grafana_store.py). The daily, weekly and
hourly panels' rows are checked against the seeded runs over the last 24 hours, 7 and 30 days.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any, Final

import pytest
from sqlalchemy import Connection, Engine, create_engine, text

from agent_exporter.mixin.generate import DASHBOARDS

from .grafana_render import ALL, Selection, render
from .grafana_store import AGENTS, DAY, END, QUOTED_RUN, SeedRun, options, reader_store, seed_runs
from .support import REPO

pytestmark = [pytest.mark.postgres]

STORE_TYPE: Final = "grafana-postgresql-datasource"
MONTH: Final = 30 * DAY
RANGES: Final = {"24h": DAY, "7d": 7 * DAY, "30d": MONTH}
STORE_VARIABLES: Final = ("agent", "model", "issue_type")
STATUSES: Final = ("success", "failure", "error", "timeout", "cancelled")


def _dashboards() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((REPO / DASHBOARDS).glob("*.json"))}


def _sql_targets() -> list[tuple[str, str, str]]:
    """(dashboard, panel title, rawSql) of every SQL target."""
    return [
        (name, panel["title"], target["rawSql"])
        for name, dashboard in _dashboards().items()
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if target["datasource"]["type"] == STORE_TYPE
    ]


def _panel_sql(dashboard: str, title: str) -> str:
    [raw] = [sql for name, t, sql in _sql_targets() if (name, t) == (dashboard, title)]
    return raw


def _variables(dashboard: str) -> list[dict[str, Any]]:
    variables: list[dict[str, Any]] = _dashboards()[dashboard]["templating"]["list"]
    return variables


@pytest.fixture(scope="module")
def seeded() -> Iterator[Engine]:
    with reader_store(seeded=True) as url:
        engine = create_engine(url)
        yield engine
        engine.dispose()


@pytest.fixture(scope="module")
def empty() -> Iterator[Engine]:
    with reader_store(seeded=False) as url:
        engine = create_engine(url)
        yield engine
        engine.dispose()


def _options(conn: Connection, dashboard: str) -> dict[str, list[str]]:
    """Each query variable's options, from its own query run as the reader; a custom one's own."""
    found = {
        v["name"]: options(conn, v["query"])
        for v in _variables(dashboard)
        if v["type"] == "query" and v["datasource"]["type"] == STORE_TYPE
    }
    found.update(
        {
            v["name"]: [o["value"] for o in v["options"]]
            for v in _variables(dashboard)
            if v["type"] == "custom"
        }
    )
    return found


def _selection(conn: Connection, dashboard: str, state: str) -> Selection:
    found = _options(conn, dashboard)
    values: dict[str, list[str] | str] = {name: [ALL] for name in found}
    if state == "one":
        values.update({name: [opts[0]] for name, opts in found.items()})
        values.update({name: ["success"] for name in found if name == "status"})
    elif state == "quote":
        values.update(
            {
                name: [next(o for o in opts if "'" in o)]
                for name in STORE_VARIABLES
                if (opts := found.get(name))
            }
        )
    values["run_id"] = QUOTED_RUN if state != "empty" else ""
    return Selection(values, found)


def _query(
    conn: Connection, dashboard: str, title: str, selection: Selection, **kw: Any
) -> list[dict[str, Any]]:
    sql = render(_panel_sql(dashboard, title), _variables(dashboard), selection, **kw)
    return [dict(row) for row in conn.execute(text(sql)).mappings()]


def _expected_runs(state: str, selection: Selection) -> list[SeedRun]:
    """The seeded runs of the last 30 days that the selection keeps."""
    if state == "empty":
        return []
    kept = []
    for run in seed_runs():
        if not END - MONTH <= run.ended_at <= END:
            continue
        wanted = {n: selection.values[n] for n in (*STORE_VARIABLES, "status")}
        if all(list(v) == [ALL] or getattr(run, n) in v for n, v in wanted.items()):
            kept.append(run)
    return kept


@pytest.mark.parametrize("state", ["empty", "all", "one", "quote"])
def test_every_sql_panel_runs_as_the_reader_in_each_variable_state(
    state: str, seeded: Engine, empty: Engine
) -> None:
    engine = empty if state == "empty" else seeded
    failures = []
    with engine.connect() as conn:
        targets = _sql_targets()
        assert len(targets) > 20
        for dashboard, title, raw in targets:
            selection = _selection(conn, dashboard, state)
            sql = render(raw, _variables(dashboard), selection, start=END - MONTH, end=END, interval="1h")
            try:
                with conn.begin_nested():
                    conn.execute(text(sql)).fetchall()
            except Exception as exc:  # noqa: BLE001 - every failing panel is reported, not the first
                failures.append(f"{dashboard}: {title}: {str(exc).splitlines()[0]}")
        assert failures == []
        selection = _selection(conn, "run-history", state)
        [runs] = _query(conn, "run-history", "Runs", selection, start=END - MONTH, end=END)
        recent = _query(conn, "run-history", "Recent runs", selection, start=END - MONTH, end=END)
    expected = _expected_runs(state, selection)
    assert runs["runs"] == len(expected)
    assert sorted(r["run_id"] for r in recent) == sorted(r.run_id for r in expected)
    if state in ("one", "quote"):
        assert 0 < len(expected) < len(_expected_runs("all", _selection_all()))


def _selection_all() -> Selection:
    return Selection({n: [ALL] for n in (*STORE_VARIABLES, "status")})


def test_the_renderer_reproduces_grafanas_empty_list_without_an_all_value(empty: Engine) -> None:
    """The defect the store variables' allValue fixes: All over no options renders `IN ()`."""
    variable = {"name": "agent", "type": "query", "multi": True, "includeAll": True}
    sql = render(
        "SELECT count(*) FROM runs WHERE agent IN ($agent)",
        [variable],
        Selection({"agent": [ALL]}, {"agent": []}),
        start=END - DAY,
        end=END,
    )
    assert sql == "SELECT count(*) FROM runs WHERE agent IN ()"
    with empty.connect() as conn, pytest.raises(Exception, match="syntax error"):
        conn.execute(text(sql))


def test_a_value_with_a_quote_selects_exactly_its_runs_on_the_cost_dashboard(seeded: Engine) -> None:
    agent = "o'brien's agent"
    with seeded.connect() as conn:
        found = _options(conn, "cost")
        assert agent in found["agent"]  # the cost dashboard's variables list the store's agents
        selection = Selection({"agent": [agent], "model": [ALL]}, found)
        rows = _query(conn, "cost", "Most expensive runs", selection, start=END - MONTH, end=END)
    expected = sorted(
        (r for r in _expected_runs("all", _selection_all()) if r.agent == agent), key=lambda r: -r.cost
    )
    assert rows, "the agent has runs in the range"
    assert {r["agent"] for r in rows} == {agent}
    assert [float(r["cost"]) for r in rows] == [r.cost for r in expected][: len(rows)]


def test_the_run_dashboard_numbers_phases_from_one_and_takes_a_run_id_with_a_quote(seeded: Engine) -> None:
    selection = Selection({"run_id": QUOTED_RUN})
    with seeded.connect() as conn:
        phases = _query(conn, "run", "Phases", selection, start=END - DAY, end=END)
        labels = _query(conn, "run", "Labels", selection, start=END - DAY, end=END)
        nothing = _query(conn, "run", "Run", Selection({"run_id": ""}), start=END - DAY, end=END)
    assert [p["phase"] for p in phases] == ["1. plan", "2. edit", "3. test"]
    assert labels == [{"key": "team", "value": "o'hara"}]
    assert nothing == []


def test_sqlstring_would_lose_a_run_id_with_a_double_quote(seeded: Engine) -> None:
    """Why the run dashboard takes `'${run_id}'` (quotes doubled) and not `${run_id:sqlstring}`."""
    variables = [{"name": "run_id", "type": "textbox"}]
    selection = Selection({"run_id": QUOTED_RUN})
    with seeded.connect() as conn:
        for raw, found in (("'${run_id}'", 1), ("${run_id:sqlstring}", 0)):
            sql = render(
                f"SELECT count(*) FROM runs WHERE run_id = {raw}", variables, selection, start=0, end=END
            )
            assert conn.execute(text(sql)).scalar() == found, sql


# -- the daily, weekly and hourly panels over 24h, 7d, 30d ----------------------------------------


def _date(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d")


def _monday(epoch: float) -> str:
    day = dt.datetime.fromtimestamp(epoch, dt.UTC).date()
    return (day - dt.timedelta(days=day.weekday())).isoformat()


def _in_whole_days(run: SeedRun, start: int) -> bool:
    return start // DAY * DAY <= run.ended_at <= END


def _all_selection(conn: Connection, dashboard: str) -> Selection:
    return _selection(conn, dashboard, "all")


@pytest.fixture(scope="module")
def in_sao_paulo(seeded: Engine) -> Iterator[Connection]:
    """A reader session in a time zone far from UTC: days and weeks must not follow it."""
    with seeded.connect() as conn:
        conn.execute(text("SET TIME ZONE 'America/Sao_Paulo'"))
        yield conn


@pytest.mark.parametrize("span", list(RANGES))
def test_runs_per_day_by_status_are_whole_utc_days_every_day_of_the_range(
    span: str, in_sao_paulo: Connection
) -> None:
    start = END - RANGES[span]
    selection = _all_selection(in_sao_paulo, "run-history")
    rows = _query(in_sao_paulo, "run-history", "Runs per day by status", selection, start=start, end=END)
    expected: dict[str, Counter[str]] = {}
    for day in range(start // DAY * DAY, END + 1, DAY):
        expected[_date(day)] = Counter()
    for run in seed_runs():
        if _in_whole_days(run, start):
            expected[_date(run.ended_at)][run.status] += 1
    assert [r["day"] for r in rows] == list(expected)
    assert rows[-1]["day"] == "2026-11-18"  # today so far is a bar
    assert len(rows) == {"24h": 2, "7d": 8, "30d": 31}[span]
    assert [{s: r[s] for s in STATUSES} for r in rows] == [
        {s: c[s] for s in STATUSES} for c in expected.values()
    ]


@pytest.mark.parametrize("dashboard", ["run-history", "cost"])
@pytest.mark.parametrize("span", list(RANGES))
def test_spend_per_day_by_model_matches_the_store(
    span: str, dashboard: str, in_sao_paulo: Connection
) -> None:
    start = END - RANGES[span]
    selection = _all_selection(in_sao_paulo, dashboard)
    rows = _query(in_sao_paulo, dashboard, "Spend per day by model", selection, start=start, end=END)
    expected: dict[tuple[str, str], float] = defaultdict(float)
    for run in seed_runs():
        if _in_whole_days(run, start):
            expected[(_date(run.ended_at), run.model)] += run.cost
    assert {(r["day"], r["model"]): pytest.approx(float(r["spend"])) for r in rows} == {
        k: pytest.approx(round(v, 2)) for k, v in expected.items()
    }


@pytest.mark.parametrize("span", list(RANGES))
def test_success_rate_per_day_by_agent_leaves_cancelled_runs_out(span: str, in_sao_paulo: Connection) -> None:
    start = END - RANGES[span]
    selection = _all_selection(in_sao_paulo, "run-history")
    rows = _query(
        in_sao_paulo, "run-history", "Success rate per day by agent", selection, start=start, end=END
    )
    decided: dict[tuple[str, str], list[bool]] = defaultdict(list)
    for run in seed_runs():
        if _in_whole_days(run, start):
            key = (_date(run.ended_at), run.agent)
            if run.status != "cancelled":
                decided[key].append(run.status == "success")
            else:
                decided.setdefault(key, [])
    got = {(r["day"], r["agent"]): r["success rate"] for r in rows}
    assert got.keys() == decided.keys()
    for key, outcomes in decided.items():
        want = sum(outcomes) / len(outcomes) if outcomes else None
        assert (None if got[key] is None else float(got[key])) == (
            None if want is None else pytest.approx(want)
        )


@pytest.mark.parametrize("span", list(RANGES))
def test_runs_per_week_by_agent_are_iso_weeks_from_monday_utc(span: str, in_sao_paulo: Connection) -> None:
    start = END - RANGES[span]
    selection = _all_selection(in_sao_paulo, "run-history")
    rows = _query(in_sao_paulo, "run-history", "Runs per week by agent", selection, start=start, end=END)
    first_monday = dt.date.fromisoformat(_monday(start))
    first = dt.datetime.combine(first_monday, dt.time(), dt.UTC).timestamp()
    expected: Counter[tuple[str, str]] = Counter(
        (_monday(r.ended_at), r.agent) for r in seed_runs() if first <= r.ended_at <= END
    )
    assert {(r["week"], r["agent"]): r["runs"] for r in rows} == dict(expected)
    assert all(dt.date.fromisoformat(r["week"]).weekday() == 0 for r in rows)
    assert rows[-1]["week"] == "2026-11-16"  # this week (Monday 16 November) so far


@pytest.mark.parametrize("span", list(RANGES))
def test_runs_by_status_per_hour(span: str, in_sao_paulo: Connection) -> None:
    """The run-history time series grouped by `$__interval`, here an hour: a point per hour with runs."""
    start = END - RANGES[span]
    selection = _all_selection(in_sao_paulo, "run-history")
    rows = _query(
        in_sao_paulo, "run-history", "Runs by status", selection, start=start, end=END, interval="1h"
    )
    expected = Counter(
        (r.ended_at // 3600 * 3600, r.status) for r in seed_runs() if start <= r.ended_at <= END
    )
    assert {(int(r["time"]), r["metric"]): r["runs"] for r in rows} == dict(expected)
    assert (
        sum(expected.values()) == {"24h": 3, "7d": 21, "30d": 90}[span]
    )  # 3 a day (and 17:00 the day before)


@pytest.mark.parametrize("table", ["Daily", "Weekly"])
def test_the_history_tables_name_utc_days_and_weeks_as_dates(table: str, in_sao_paulo: Connection) -> None:
    selection = _all_selection(in_sao_paulo, "run-history")
    rows = _query(in_sao_paulo, "run-history", table, selection, start=END - 7 * DAY, end=END)
    key = {"Daily": "day", "Weekly": "week"}[table]
    runs = [r for r in seed_runs() if END - 7 * DAY <= r.ended_at <= END]
    group = _date if table == "Daily" else _monday
    expected = Counter(group(r.ended_at) for r in runs)
    assert [(r[key], r["runs"]) for r in rows] == sorted(expected.items(), reverse=True)
    assert all(isinstance(r[key], str) for r in rows)


def test_every_agent_is_an_option_of_the_store_dashboards(seeded: Engine) -> None:
    with seeded.connect() as conn:
        for dashboard in ("run-history", "cost"):
            assert _options(conn, dashboard)["agent"] == sorted(AGENTS), dashboard
