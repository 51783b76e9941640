"""The whole stack, live: the real exporter on PostgreSQL, Prometheus and Alertmanager on loopback.

Prometheus runs the shipped prometheus.yml (rendered with loopback targets and 1 s intervals) and
rules rendered from the shipped alerts/config.yaml with every window 60 times shorter (an hour is a
minute); Alertmanager runs the shipped alertmanager.yml with its webhook URLs pointed at an HTTP
receiver in this test. The test feeds realistic records and checks what SREs rely on: every
dashboard query returns data, exemplars carry run ids, and a failure-rate incident pages.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Connection, create_engine, text

from agent_exporter.demo import supervisor
from agent_exporter.demo.stack import alertmanager_binary
from agent_exporter.demo.supervisor import Supervised
from agent_exporter.mixin.config import load_config
from agent_exporter.mixin.generate import CONFIG_PATH, DASHBOARDS
from agent_exporter.mixin.rules import w

from .grafana_render import Selection, render
from .live_stack import (
    Receiver,
    alertmanager_config,
    start_alertmanager,
    start_prometheus,
    webhook_receiver,
)
from .support import REPO, ExporterProcess, record, start_exporter, unavailable, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.prometheus]

TIME_SCALE = 60  # an hour of the shipped windows is a minute here
INTERVALS = {"$__rate_interval": "10s", "$__interval": "10s", "$__range": "5m"}
# one value of each variable, for which every panel has data (acme: reported costs and unpriced runs)
ONE = {"agent": "fixer", "model": "acme-internal-1", "issue_type": "complexity", "status": "success"}
RICH_RUN = "fix-rich-0001"  # the run the drill-down dashboard is checked with


# -- realistic records ---------------------------------------------------------------------------


def _ago(seconds: float) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)).isoformat()


def baseline_records() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A morning's mix of runs, two waves: two agents, two models, three issue types, every status.

    The first wave creates the series, the second (the same label sets, after a scrape) moves them:
    a counter's first sample is no increase, so only the second wave gives rates and quantiles.
    """
    rng = random.Random(7)
    waves: tuple[list[dict[str, Any]], list[dict[str, Any]]] = ([], [])
    statuses = ["success"] * 8 + ["failure", "error", "timeout", "cancelled"]
    for i in range(48):
        agent = ["fixer", "reviewer"][i % 2]
        model = ["claude-sonnet-4-5", "gpt-5", "acme-internal-1"][(i // 2) % 3]  # acme has no known price
        issue_type = ["complexity", "security", "test_failure"][(i // 6) % 3]
        status = "success" if i < 6 else statuses[i % len(statuses)]
        for n, wave in enumerate(waves):
            input_tokens = rng.randint(20_000, 4_000_000)
            fields: dict[str, Any] = {
                "agent": agent,
                "model": model,
                "provider": {"claude-sonnet-4-5": "anthropic", "gpt-5": "openai"}.get(model, "acme"),
                "issue_type": issue_type,
                "status": status,
                "duration_seconds": round(rng.uniform(5, 1800), 2),
                "ended_at": _ago(rng.uniform(1, 60)),
                "input_tokens": input_tokens,
                "cache_read_tokens": input_tokens // 4,
                "output_tokens": rng.randint(500, 60_000),
                "llm_calls": rng.randint(3, 120),
                "tool_calls": 12,
                "tools": [
                    {"name": "bash", "calls": 8, "errors": 1 + i % 2},
                    {"name": "edit", "calls": 4, "errors": 0},
                ],
                "phases": [
                    {"name": "plan", "duration_seconds": round(rng.uniform(1, 10), 2)},
                    {"name": "edit", "duration_seconds": round(rng.uniform(10, 300), 2)},
                    {"name": "test", "duration_seconds": round(rng.uniform(10, 600), 2), "status": "success"},
                ],
                "labels": {"team": "platform"},
            }
            if agent == "fixer":  # seed 004's workflow: every third fixer run retried its pipeline
                retried = i % 3 == 0
                fields["pipeline_attempts"] = [{"status": "failure"}] * retried + [{"status": "success"}]
                fields["debugging_cycles"] = [{"agent": "testing", "resolved": True}] * retried
                fields["subagents"] = [
                    {"name": "coding", "attempts": 1, "successes": 1, "retries": i % 2},
                    {
                        "name": "testing",
                        "attempts": 1 + retried,
                        "successes": 1,
                        "failures": int(retried),
                        "retries": 1,
                    },
                ]
            if i % 4 == 0:
                fields["cost_usd"] = round(rng.uniform(0.05, 12), 4)  # reported; else estimated or unpriced
            if status in ("failure", "error", "timeout"):
                fields["error_type"] = {
                    "failure": "tests_failed",
                    "error": "tool_crash",
                    "timeout": "deadline",
                }[status]
                fields["error_summary"] = f"run {i}: {status} after {fields['llm_calls']} LLM calls"
            wave.append(record(f"base-{i:03d}-{n}", **fields))
    runs = waves[1]
    # issue types past the test's cap of 4 become "other" (label overflow)
    for j, issue in enumerate(["docs", "deps", "flaky", "perf"]):
        runs.append(record(f"base-overflow-{j}", agent="reviewer", issue_type=issue, cost_usd=0.1))
    runs.append(
        record(
            RICH_RUN,
            agent="fixer",
            model="claude-sonnet-4-5",
            status="error",
            duration_seconds=612.0,
            ended_at=_ago(5),
            usage=[
                {
                    "model": "claude-sonnet-4-5",
                    "provider": "anthropic",
                    "input_tokens": 900_000,
                    "output_tokens": 40_000,
                    "cost_usd": 3.3,
                    "calls": 30,
                },
                {
                    "model": "gpt-5",
                    "provider": "openai",
                    "input_tokens": 100_000,
                    "output_tokens": 5_000,
                    "cost_usd": 0.2,
                    "calls": 4,
                },
            ],
            tools=[
                {"name": "bash", "calls": 20, "errors": 3, "duration_seconds": 41.5},
                {"name": "edit", "calls": 9, "errors": 0},
            ],
            phases=[
                {"name": "plan", "duration_seconds": 12.0, "status": "success"},
                {"name": "edit", "duration_seconds": 300.0, "status": "success"},
                {"name": "test", "duration_seconds": 280.0, "status": "error"},
            ],
            error_type="tool_crash",
            error_summary="pytest crashed with a segmentation fault in the C extension",
            labels={"team": "platform", "ticket": "OPS-1234"},
        )
    )
    return waves


def post(exporter: ExporterProcess, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """POST a batch; the response's counts."""
    response = httpx.post(f"{exporter.url}/api/v1/runs", json={"runs": runs}, timeout=30)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# -- the stack -----------------------------------------------------------------------------------


@dataclass
class Stack:
    """The running stack and what was fed to it."""

    exporter: ExporterProcess
    prometheus: str
    alertmanager: str
    receiver: Receiver
    store_url: str
    started: float
    run_ids: set[str]

    def prom(self, path: str, **params: Any) -> Any:
        """GET a Prometheus API endpoint; its `data`."""
        response = httpx.get(f"{self.prometheus}{path}", params=params, timeout=10)
        body = response.json()
        assert body["status"] == "success", f"{params}: {body}"
        return body["data"]


@pytest.fixture(scope="module")
def stack(pg_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Exporter (on PostgreSQL), Prometheus and Alertmanager fed with the baseline records."""
    if shutil.which("prometheus") is None or alertmanager_binary() is None:
        unavailable("prometheus and prometheus-alertmanager are not installed (apt-get install them)")
    tmp = tmp_path_factory.mktemp("stack")
    engine = create_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()

    processes: list[Supervised] = []
    exporter = start_exporter(
        tmp,
        database_url=pg_server_url,
        config={
            "metrics": {"label_limits": {"agent": 50, "model": 30, "issue_type": 4, "tool": 100, "phase": 30}}
        },
    )
    try:
        with webhook_receiver() as (receiver, webhook):
            am_process, am_url = start_alertmanager(alertmanager_config(webhook, tmp), tmp)
            processes.append(am_process)
            prom_process, prom_url = start_prometheus(
                tmp, exporter_port=exporter.port, alertmanager_url=am_url, scale=TIME_SCALE
            )
            processes.append(prom_process)

            started = time.time()
            first, second = baseline_records()
            invalid = {
                "run_id": "base-invalid",
                "agent": "fixer",
                "status": "exploded",
                "duration_seconds": 1,
            }
            live = Stack(exporter, prom_url, am_url, receiver, pg_server_url, started, set())
            for wave, extra in ((first, []), (second, [invalid])):
                result = post(exporter, [*wave, *extra])
                assert (result["accepted"], result["rejected"]) == (len(wave), len(extra))
                live.run_ids |= {r["run_id"] for r in wave}
                total = len(live.run_ids)

                def scraped(total: int = total) -> bool:
                    data = live.prom("/api/v1/query", query='sum(agent_runs_total{job="agent-exporter"})')
                    return bool(data["result"]) and float(data["result"][0]["value"][1]) == total

                wait_until(scraped, 30, "Prometheus to scrape the runs")
            time.sleep(2)  # two more scrapes and rule evaluations: the second wave is a rate now
            yield live
    finally:
        supervisor.stop_all(processes)
        exporter.stop()


# -- dashboards against the live stack ----------------------------------------------------------


def _dashboards() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((REPO / DASHBOARDS).glob("*.json"))}


def _targets(kind: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(dashboard, panel title, target) of every panel target of one datasource type."""
    found = []
    for name, dashboard in _dashboards().items():
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                if target["datasource"]["type"] == kind:
                    found.append((name, panel["title"], target))
    return found


REGEX_SPECIAL = re.compile(r"([\\^$*+?.()|{}\[\]])")


def substitute_promql(expr: str, values: dict[str, str]) -> str:
    """Grafana's substitution: variables (`.*` for All, a regex-escaped value otherwise) and intervals."""
    for name, value in INTERVALS.items():
        expr = expr.replace(name, value)
    for name in ("agent", "model", "issue_type", "status", "instance"):
        # Grafana escapes regex characters for a PromQL string literal: a doubled backslash
        value = REGEX_SPECIAL.sub(r"\\\\\1", values[name]) if name in values else ".*"
        expr = expr.replace(f"${name}", value)
    assert "$" not in expr, expr
    return expr


def _finite(series: list[dict[str, Any]]) -> bool:
    return any(math.isfinite(float(v)) for s in series for _, v in s.get("values", []))


@pytest.mark.parametrize("values", [{}, ONE], ids=["all", "one-of-each"])
def test_every_prometheus_panel_query_parses_and_returns_data(stack: Stack, values: dict[str, str]) -> None:
    targets = _targets("prometheus")
    assert len(targets) > 60
    empty = []
    for dashboard, title, target in targets:
        query = substitute_promql(target["expr"], values)
        data = stack.prom(
            "/api/v1/query_range", query=query, start=stack.started - 5, end=time.time(), step="1s"
        )
        if not _finite(data["result"]):
            empty.append(f"{dashboard}: {title}: {query}")
    assert empty == [], "\n".join(empty)


def test_every_prometheus_variable_has_values(stack: Stack) -> None:
    for name, dashboard in _dashboards().items():
        for variable in dashboard["templating"]["list"]:
            if variable["type"] != "query" or variable["datasource"]["type"] != "prometheus":
                continue
            match = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"])
            assert match, variable["query"]
            series, label = substitute_promql(match.group(1), {}), match.group(2)
            values = stack.prom(f"/api/v1/label/{label}/values", **{"match[]": series})
            assert values, f"{name}: ${variable['name']}"


def expand_sql(raw: str, variables: dict[str, list[str]], run_id: str, start: float, end: float) -> str:
    """The SQL Grafana sends for `raw` with `variables` selected (tests/grafana_render.py)."""
    definitions = [{"name": n, "type": "query", "multi": True, "includeAll": True} for n in variables]
    definitions.append({"name": "run_id", "type": "textbox"})
    selection = Selection({**variables, "run_id": run_id})
    sql = render(raw, definitions, selection, start=int(start), end=int(end), interval="1m")
    assert not re.search(r"\$(\{|\w)", sql), sql  # every macro and variable expanded
    return sql


def _every_value(conn: Connection) -> dict[str, list[str]]:
    """The store dashboards' variables with every value selected, as Grafana's "All" sends them."""
    return {
        "agent": [r[0] for r in conn.execute(text("SELECT DISTINCT agent FROM runs"))],
        "model": [r[0] for r in conn.execute(text("SELECT DISTINCT coalesce(model, 'unknown') FROM runs"))],
        "issue_type": [
            r[0] for r in conn.execute(text("SELECT DISTINCT coalesce(issue_type, 'unknown') FROM runs"))
        ],
        "status": ["success", "failure", "error", "timeout", "cancelled"],
    }


@pytest.mark.parametrize("selection", ["all", "one-of-each"])
def test_every_sql_panel_query_runs_against_the_store_and_returns_rows(stack: Stack, selection: str) -> None:
    engine = create_engine(stack.store_url)
    try:
        with engine.connect() as conn:
            if selection == "all":
                variables = _every_value(conn)
                assert len(variables["agent"]) == 2
            else:
                variables = {k: [v] for k, v in ONE.items()}
            targets = _targets("grafana-postgresql-datasource")
            assert len(targets) > 15
            empty = []
            for dashboard, title, target in targets:
                sql = expand_sql(
                    target["rawSql"], variables, RICH_RUN, stack.started - 3600, time.time() + 60
                )
                rows = conn.execute(text(sql)).fetchall()
                if not rows or all(v is None for v in rows[0]):
                    empty.append(f"{dashboard}: {title}")
            assert empty == []
    finally:
        engine.dispose()


def test_the_run_history_panels_and_the_read_api_agree_on_success_and_failure(stack: Stack) -> None:
    """One definition: failed is failure, error or timeout; cancelled runs are in neither side of
    the success rate. The Grafana SQL panels and the read API say the same of the same store."""
    start, end = int(stack.started - 3600), int(time.time() + 60)
    panels = {
        title: t["rawSql"]
        for name, title, t in _targets("grafana-postgresql-datasource")
        if name == "run-history"
    }
    engine = create_engine(stack.store_url)
    try:
        with engine.connect() as conn:
            variables = _every_value(conn)

            def query(title: str) -> list[Any]:
                return list(
                    conn.execute(text(expand_sql(panels[title], variables, RICH_RUN, start, end))).mappings()
                )

            [runs], [rate], [failed] = query("Runs"), query("Success rate"), query("Failed runs")
            daily = query("Daily")
            api = httpx.get(
                f"{stack.exporter.url}/api/v1/summary",
                params={
                    "from": dt.datetime.fromtimestamp(start, dt.UTC).isoformat(),
                    "to": dt.datetime.fromtimestamp(end, dt.UTC).isoformat(),
                },
                timeout=10,
            ).json()["summary"]
    finally:
        engine.dispose()
    assert api["cancelled"] == 8  # the baseline's cancelled runs: the comparison means something
    assert (runs["runs"], failed["failed"]) == (api["runs"], api["failures"])
    assert float(rate["success rate"]) == pytest.approx(api["success_rate"])
    assert (sum(d["cancelled"] for d in daily), sum(d["failed"] for d in daily)) == (
        api["cancelled"],
        api["failures"],
    )


def test_the_store_variables_list_every_agent(stack: Stack) -> None:
    history = _dashboards()["run-history"]
    [agent] = [v for v in history["templating"]["list"] if v["name"] == "agent"]
    engine = create_engine(stack.store_url)
    try:
        with engine.connect() as conn:
            assert sorted(r[0] for r in conn.execute(text(agent["query"]))) == ["fixer", "reviewer"]
    finally:
        engine.dispose()


def test_exemplars_link_histogram_samples_to_their_runs(stack: Stack) -> None:
    data = stack.prom(
        "/api/v1/query_exemplars",
        query='agent_run_duration_seconds_bucket{job="agent-exporter"}',
        start=stack.started - 5,
        end=time.time(),
    )
    run_ids = {e["labels"]["run_id"] for series in data for e in series["exemplars"]}
    assert run_ids
    assert {r for r in run_ids if not r.startswith("incident-")} <= stack.run_ids
    assert RICH_RUN in run_ids or len(run_ids) >= 5


# -- alerting ------------------------------------------------------------------------------------


def test_a_failure_rate_incident_pages_through_alertmanager(stack: Stack) -> None:
    """fixer's runs start failing: the 1h/5m pair (a minute and 5 s here) fires and reaches the pager.

    Only that pair's page is awaited: a third of the baseline fixer's decided runs fail, past the
    6h/30m pair's threshold (6 x 5%), which may page for the baseline itself, as the rules say it
    should, depending on how long the tests before this one took."""
    fast = load_config(REPO / CONFIG_PATH).scaled(TIME_SCALE).failure_rate.windows[0]
    deadline = time.monotonic() + 90
    batch = 0

    def paged() -> list[dict[str, Any]]:
        return [
            alert
            for path, payload in stack.receiver.received()
            if path == "/pager"
            for alert in payload["alerts"]
            if alert["labels"]["alertname"] == "AgentFailureBudgetBurn"
            and alert["labels"]["long_window"] == w(fast.long)
            and alert["status"] == "firing"
        ]

    assert paged() == []  # the baseline's failures do not page on the fast pair
    while not paged() and time.monotonic() < deadline:
        failing = [
            record(
                f"incident-{batch:03d}-{k}",
                agent="fixer",
                status=status,
                duration_seconds=30.0,
                error_type="provider_outage",
                error_summary="the model provider answered 503",
            )
            for k, status in enumerate(["error", "error", "timeout", "failure"])
        ]
        post(stack.exporter, failing)
        batch += 1
        time.sleep(0.5)
    alerts = paged()
    assert alerts, f"no page after {batch} batches; received: {stack.receiver.received()}"
    alert = alerts[0]
    assert (alert["labels"]["long_window"], alert["labels"]["short_window"]) == (w(fast.long), w(fast.short))
    assert alert["labels"]["agent"] == "fixer"
    assert alert["labels"]["severity"] == "critical"
    assert alert["labels"]["component"] == "agents"
    assert alert["annotations"]["runbook_url"].endswith("/docs/runbooks.md#agentfailurebudgetburn")
    assert alert["annotations"]["dashboard_url"].endswith("/d/agent-exporter-overview?var-agent=fixer")
    # grouped by agent: the notification is fixer's group, sent to the pager receiver
    [payload, *_] = [
        p
        for path, p in stack.receiver.received()
        if path == "/pager" and any(a["labels"]["alertname"] == "AgentFailureBudgetBurn" for a in p["alerts"])
    ]
    assert payload["groupLabels"] == {"agent": "fixer"}
    assert payload["receiver"] == "pager"
    assert {a["labels"]["agent"] for a in payload["alerts"]} == {"fixer"}


def test_the_exporters_own_alerts_ticket(stack: Stack) -> None:
    """The overflowed issue_type label tickets (warning to the ticket receiver)."""

    def ticketed() -> bool:
        return any(
            path == "/ticket"
            and any(a["labels"]["alertname"] == "AgentExporterLabelOverflow" for a in payload["alerts"])
            for path, payload in stack.receiver.received()
        )

    wait_until(ticketed, 60, "the label-overflow ticket", interval=0.5)


def test_exporter_down_inhibits_the_agent_alerts(tmp_path: Path) -> None:
    if alertmanager_binary() is None:
        unavailable("prometheus-alertmanager is not installed")
    with webhook_receiver() as (receiver, webhook):
        process, url = start_alertmanager(alertmanager_config(webhook, tmp_path), tmp_path)
        try:
            now = dt.datetime.now(dt.UTC).isoformat()
            alerts = [
                {
                    "labels": {
                        "alertname": "AgentExporterDown",
                        "severity": "critical",
                        "component": "exporter",
                        "job": "agent-exporter",
                        "instance": "exporter:9477",
                    },
                    "startsAt": now,
                },
                {
                    "labels": {
                        "alertname": "AgentStoppedReporting",
                        "severity": "warning",
                        "component": "agents",
                        "agent": "fixer",
                    },
                    "startsAt": now,
                },
                {
                    "labels": {
                        "alertname": "AgentExporterLabelOverflow",
                        "severity": "warning",
                        "component": "exporter",
                        "label": "model",
                    },
                    "startsAt": now,
                },
            ]
            assert httpx.post(f"{url}/api/v2/alerts", json=alerts, timeout=5).status_code == 200

            def states() -> dict[str, str]:
                listed = httpx.get(f"{url}/api/v2/alerts", timeout=5).json()
                return {a["labels"]["alertname"]: a["status"]["state"] for a in listed}

            wait_until(lambda: len(states()) == 3, 10, "Alertmanager to list the alerts")
            assert states() == {
                "AgentExporterDown": "active",
                "AgentStoppedReporting": "suppressed",
                "AgentExporterLabelOverflow": "active",
            }
            wait_until(
                lambda: {p for p, _ in receiver.received()} == {"/pager", "/ticket"}, 15, "two notifications"
            )
            notified = {a["labels"]["alertname"] for _, p in receiver.received() for a in p["alerts"]}
            assert "AgentStoppedReporting" not in notified
        finally:
            process.stop()
