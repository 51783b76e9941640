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
        assert set(rule["annotations"]) == {"summary", "description", "runbook_url", "dashboard_url"}


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
    [destination] = prometheus["jsonData"]["exemplarTraceIdDestinations"]
    assert destination["name"] == "run_id"
    assert destination["url"] == "/d/agent-exporter-run?var-run_id=$${__value.raw}"


def test_the_run_tables_link_each_run_to_its_page() -> None:
    history = {p["title"]: p for p in _panels(_dashboards()["run-history"])}
    [link_override] = [
        o for o in history["Recent runs"]["fieldConfig"]["overrides"] if o["matcher"]["options"] == "run_id"
    ]
    [link] = link_override["properties"][0]["value"]
    assert link["url"].startswith("/d/agent-exporter-run?var-run_id=${__value.raw}")


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
