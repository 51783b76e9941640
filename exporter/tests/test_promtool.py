"""The shipped rules and Alertmanager config, checked and unit-tested by promtool and amtool."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from .support import REPO, unavailable

pytestmark = pytest.mark.prometheus

RULE_TESTS = sorted([*(REPO / "alerts/tests").glob("*.yml"), *(REPO / "prometheus/tests").glob("*.yml")])
ALERTMANAGER = REPO / "alerts/alertmanager.yml"


def _run(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which(tool) is None:
        unavailable(f"{tool} is not installed (Debian: apt-get install prometheus prometheus-alertmanager)")
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=120, check=False)


def test_promtool_accepts_the_prometheus_config_and_its_rule_files() -> None:
    result = _run("promtool", "check", "config", str(REPO / "prometheus/prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    for rules in ("prometheus/recording_rules.yml", "alerts/alert_rules.yml"):
        count = sum(len(g["rules"]) for g in yaml.safe_load((REPO / rules).read_text())["groups"])
        assert f"Checking {REPO / rules}\n  SUCCESS: {count} rules found" in result.stdout


@pytest.fixture(scope="module")
def rule_test_runs() -> Iterator[dict[Path, subprocess.Popen[str]]]:
    """Every promtool rule test started at once (they take seconds each; the machine has cores)."""
    if shutil.which("promtool") is None:
        unavailable("promtool is not installed (Debian: apt-get install prometheus)")
    runs = {
        f: subprocess.Popen(
            ["promtool", "test", "rules", str(f)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for f in RULE_TESTS
    }
    try:
        yield runs
    finally:
        for run in runs.values():
            if run.poll() is None:
                run.kill()
            run.communicate()


@pytest.mark.parametrize("test_file", RULE_TESTS, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_promtool_rule_tests_pass(test_file: Path, rule_test_runs: dict[Path, subprocess.Popen[str]]) -> None:
    output, _ = rule_test_runs[test_file].communicate(timeout=180)
    assert rule_test_runs[test_file].returncode == 0, output


def test_every_alert_has_a_promtool_case_that_fires_and_one_that_stays_silent() -> None:
    alerts = {
        rule["alert"]
        for group in yaml.safe_load((REPO / "alerts/alert_rules.yml").read_text())["groups"]
        for rule in group["rules"]
    }
    fires: set[str] = set()
    silent: set[str] = set()
    for test_file in RULE_TESTS:
        for case in yaml.safe_load(test_file.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check["exp_alerts"] else silent).add(check["alertname"])
    assert fires == alerts
    assert silent == alerts


def test_amtool_accepts_the_alertmanager_config() -> None:
    result = _run("amtool", "check-config", str(ALERTMANAGER))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 inhibit rules" in result.stdout


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["severity=critical", "agent=fixer", "alertname=AgentFailureBudgetBurn"], "pager"),
        (["severity=critical", "alertname=AgentExporterDown"], "pager"),
        (["severity=warning", "agent=fixer", "alertname=AgentCostSpike"], "ticket"),
        (["severity=info", "alertname=Other"], "ticket"),
    ],
    ids=["critical-agent", "critical-exporter", "warning", "no-known-severity"],
)
def test_each_severity_reaches_its_receiver(labels: list[str], receiver: str) -> None:
    result = _run(
        "amtool",
        "config",
        "routes",
        "test",
        f"--config.file={ALERTMANAGER}",
        f"--verify.receivers={receiver}",
        *labels,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receiver
