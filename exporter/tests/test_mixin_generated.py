"""The generated rules and dashboards: committed output matches the generator, and holds its promises."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from agent_exporter.mixin.config import load_config
from agent_exporter.mixin.generate import ALERT_RULES, CONFIG_PATH, DASHBOARDS, render
from agent_exporter.mixin.panels import POSTGRES, PROMETHEUS

from .support import REPO

CFG = load_config(REPO / CONFIG_PATH)
RUNBOOKS = REPO / "docs" / "runbooks.md"


def _dashboards() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((REPO / DASHBOARDS).glob("*.json"))}


def _alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load((REPO / ALERT_RULES).read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            yield panel


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_the_committed_files_are_what_the_configuration_renders() -> None:
    stale = [str(rel) for rel, text in render(CFG).items() if (REPO / rel).read_text() != text]
    assert stale == [], "run `make generate` and commit the result"


def test_no_dashboard_file_is_left_over_from_an_older_generator() -> None:
    generated = {rel.name for rel in render(CFG) if rel.parent == DASHBOARDS}
    assert {p.name for p in (REPO / DASHBOARDS).glob("*.json")} == generated


def test_every_alert_has_severity_component_and_the_four_annotations() -> None:
    for rule in _alerts():
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert rule["labels"]["component"] in {"agents", "exporter"}, rule["alert"]
        assert set(rule["annotations"]) - {"runs_url"} == {
            "summary",
            "description",
            "runbook_url",
            "dashboard_url",
        }


def test_every_runbook_url_points_at_a_section_of_the_runbooks() -> None:
    anchors = {_slug(line[3:]) for line in RUNBOOKS.read_text().splitlines() if line.startswith("## ")}
    for rule in _alerts():
        url = rule["annotations"]["runbook_url"]
        assert url.startswith(CFG.links.runbook_url + "#")
        assert urlparse(url).fragment in anchors, rule["alert"]


def test_every_alert_has_a_runbook_section_and_every_section_an_alert() -> None:
    sections = [line[3:].strip() for line in RUNBOOKS.read_text().splitlines() if line.startswith("## ")]
    assert sorted(sections) == sorted({rule["alert"] for rule in _alerts()})


def test_every_dashboard_url_opens_a_generated_dashboard() -> None:
    uids = {d["uid"] for d in _dashboards().values()}
    for rule in _alerts():
        path = urlparse(rule["annotations"]["dashboard_url"]).path
        assert path.removeprefix("/d/") in uids, rule["alert"]


def test_dashboard_uids_are_fixed_unique_and_short() -> None:
    uids = [d["uid"] for d in _dashboards().values()]
    assert sorted(uids) == [
        "agent-exporter-cost",
        "agent-exporter-health",
        "agent-exporter-overview",
        "agent-exporter-run",
        "agent-exporter-runs",
    ]
    assert all(len(uid) <= 40 for uid in uids)


@pytest.mark.parametrize("name", ["overview", "run-history"])
def test_the_run_dashboards_filter_by_agent_model_status_and_issue_type(name: str) -> None:
    names = {v["name"] for v in _dashboards()[name]["templating"]["list"]}
    assert {"agent", "model", "status", "issue_type"} <= names


def test_every_panel_has_a_description_a_unit_and_a_datasource_variable() -> None:
    for name, dashboard in _dashboards().items():
        variables = {v["name"]: v for v in dashboard["templating"]["list"] if v["type"] == "datasource"}
        for panel in _panels(dashboard):
            where = f"{name}: {panel['title']}"
            assert panel["description"], where
            assert panel["fieldConfig"]["defaults"]["unit"], where
            for target in panel["targets"]:
                uid = target["datasource"]["uid"]
                assert uid in ("${datasource}", "${store}"), where
                variable = variables[uid[2:-1]]
                assert variable["query"] == target["datasource"]["type"], where


def test_time_series_rates_use_the_rate_interval() -> None:
    for name, dashboard in _dashboards().items():
        for panel in _panels(dashboard):
            if panel["type"] != "timeseries":
                continue
            for target in panel["targets"]:
                for window in re.findall(r"\brate\([^\[]*\[([^\]]+)\]", target.get("expr", "")):
                    assert window == "$__rate_interval", f"{name}: {panel['title']}"


def test_latency_and_cost_outliers_link_to_their_run_through_exemplars() -> None:
    overview = {p["title"]: p for p in _panels(_dashboards()["overview"])}
    for title in ("Run duration p50 / p95 / p99", "Cost per run p50 / p95", "Tokens per run p50 / p95"):
        assert any(t["exemplar"] for t in overview[title]["targets"]), title
    provisioning = yaml.safe_load((REPO / "grafana/provisioning/datasources/datasources.yml").read_text())
    prometheus = next(d for d in provisioning["datasources"] if d["type"] == PROMETHEUS["type"])
    destinations = prometheus["jsonData"]["exemplarTraceIdDestinations"]
    assert [d["name"] for d in destinations] == ["run_id", "run_id"]
    assert [d["url"] for d in destinations] == [
        "/d/agent-exporter-run?var-run_id=$${__value.raw}",
        CFG.links.exporter_url + "/runs/$${__value.raw:percentencode}",
    ]


RUN_TABLES = [
    ("run-history", "Recent runs"),
    ("run-history", "Failures by error type"),
    ("cost", "Most expensive runs"),
]


@pytest.mark.parametrize(("dashboard", "title"), RUN_TABLES)
def test_the_run_tables_link_each_run_to_its_dashboard_and_its_exporter_page(
    dashboard: str, title: str
) -> None:
    panels = {p["title"]: p for p in _panels(_dashboards()[dashboard])}
    [link_override] = [
        o for o in panels[title]["fieldConfig"]["overrides"] if o["matcher"]["options"] == "run_id"
    ]
    links = link_override["properties"][0]["value"]
    assert [link["url"] for link in links] == [
        "/d/agent-exporter-run?var-run_id=${__value.raw}&${__url_time_range}",
        "http://localhost:9477/runs/${__value.raw:percentencode}",
    ]
    assert CFG.links.exporter_url == "http://localhost:9477"


def test_without_an_exporter_url_the_run_tables_link_only_the_run_dashboard() -> None:
    cfg = CFG.model_copy(update={"links": CFG.links.model_copy(update={"exporter_url": ""})})
    rendered = {rel.stem: json.loads(text) for rel, text in render(cfg).items() if rel.parent == DASHBOARDS}
    for dashboard, title in RUN_TABLES:
        [panel] = [p for p in rendered[dashboard]["panels"] if p["title"] == title]
        [override] = [o for o in panel["fieldConfig"]["overrides"] if o["matcher"]["options"] == "run_id"]
        assert [link["title"] for link in override["properties"][0]["value"]] == ["Open run"]
    rules = yaml.safe_load(render(cfg)[ALERT_RULES])["groups"]
    assert all("runs_url" not in r["annotations"] for g in rules for r in g["rules"])


def test_the_agent_alerts_link_the_agents_runs_on_the_exporter() -> None:
    urls = {r["alert"]: r["annotations"].get("runs_url") for r in _alerts()}
    agent = "http://localhost:9477/runs?agent={{ $labels.agent | urlquery }}"
    assert urls == {
        "AgentFailureBudgetBurn": agent + "&status=failure&status=error&status=timeout",
        "AgentCostSpike": agent,
        "AgentCostBudgetBurn": None,  # per job, not per agent
        "AgentOwnerBudgetBurn": "http://localhost:9477/runs?team=platform",  # the owner's (the last budget's)
        "AgentRunDurationRegression": agent,
        "AgentTokensPerRunSpike": agent,
        "AgentStoppedReporting": agent,
        "AgentExporterDown": None,
        "AgentExporterRecordsRejected": None,
        "AgentExporterLabelOverflow": None,
    }


def _numbers(value: Any) -> Iterator[float]:
    if isinstance(value, float):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _numbers(v)
    elif isinstance(value, list):
        for v in value:
            yield from _numbers(v)


def test_every_number_in_the_dashboards_is_written_as_a_reader_would() -> None:
    """No 0.8999999999999999 for 0.9 (a threshold computed as objective - 0.05)."""
    odd = [(name, v) for name, d in _dashboards().items() for v in _numbers(d) if len(repr(v)) > 12]
    assert odd == []
    overview = {p["title"]: p for p in _panels(_dashboards()["overview"])}
    steps = overview["Success rate"]["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["value"] for s in steps] == [None, 0.9, 0.95]


def test_no_promql_panel_sums_over_its_own_step_or_the_zoom() -> None:
    """increase() over $__interval with a 1d/1w step is Grafana-aligned, not a UTC day; over
    $__rate_interval its window, and so its meaning, changes with the zoom."""
    for name, dashboard in _dashboards().items():
        for panel in _panels(dashboard):
            assert panel.get("interval") is None, f"{name}: {panel['title']}"
            for target in panel["targets"]:
                expr = target.get("expr", "")
                where = f"{name}: {panel['title']}"
                assert "$__interval" not in expr, where
                assert not re.search(r"increase\([^\[]*\[\$__rate_interval\]", expr), where
                assert "interval" not in target, where


def test_label_overflow_counts_over_the_alerts_window() -> None:
    health = {p["title"]: p for p in _panels(_dashboards()["exporter-health"])}
    [target] = health["Label overflow"]["targets"]
    assert target["expr"] == (
        'sum by (label) (increase(agent_exporter_label_overflow_total{job="agent-exporter", '
        'instance=~"$instance"}[1h]))'
    )
    [target] = health["Store errors"]["targets"]
    assert "rate(agent_exporter_store_errors_total" in target["expr"]


def test_provisioned_datasources_match_the_dashboards_plugin_types() -> None:
    provisioning = yaml.safe_load((REPO / "grafana/provisioning/datasources/datasources.yml").read_text())
    types = {d["type"] for d in provisioning["datasources"]}
    assert {PROMETHEUS["type"], POSTGRES["type"]} <= types


def test_the_shipped_prometheus_config_loads_the_generated_rule_files() -> None:
    config = yaml.safe_load((REPO / "prometheus/prometheus.yml").read_text())
    files = {(REPO / "prometheus" / f).resolve() for f in config["rule_files"]}
    assert files == {(REPO / "prometheus/recording_rules.yml").resolve(), (REPO / ALERT_RULES).resolve()}
    [job] = [j for j in config["scrape_configs"] if j["job_name"] == CFG.exporter_job]
    assert job["static_configs"] == [{"targets": ["exporter:9477"]}]
