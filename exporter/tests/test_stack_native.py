"""`make stack`: the exporter, Prometheus and Alertmanager as local processes, and the generator's CLI."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from agent_exporter.demo.stack import PROMETHEUS_CONFIG, alertmanager_binary, render_prometheus_config
from agent_exporter.mixin.__main__ import main
from agent_exporter.mixin.generate import CONFIG_PATH

from .support import REPO, START_TIMEOUT, free_port, unavailable, wait_until


def test_the_rendered_prometheus_config_scrapes_loopback_and_loads_the_rules_by_absolute_path() -> None:
    text = render_prometheus_config(
        REPO / PROMETHEUS_CONFIG,
        targets={"agent-exporter": ["127.0.0.1:19477"], "prometheus": ["127.0.0.1:19090"]},
        alertmanagers=["127.0.0.1:19093"],
    )
    config = yaml.safe_load(text)
    assert config["rule_files"] == [
        str((REPO / "prometheus/recording_rules.yml").resolve()),
        str((REPO / "alerts/alert_rules.yml").resolve()),
    ]
    assert {j["job_name"]: j["static_configs"] for j in config["scrape_configs"]} == {
        "agent-exporter": [{"targets": ["127.0.0.1:19477"]}],
        "prometheus": [{"targets": ["127.0.0.1:19090"]}],
    }
    assert config["alerting"] == {"alertmanagers": [{"static_configs": [{"targets": ["127.0.0.1:19093"]}]}]}


def test_rendering_for_a_job_the_config_lacks_is_refused() -> None:
    with pytest.raises(ValueError, match="has no scrape job pushgateway"):
        render_prometheus_config(REPO / PROMETHEUS_CONFIG, targets={"pushgateway": ["x:1"]}, alertmanagers=[])


def test_check_passes_on_the_repository(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--root", str(REPO), "check"]) == 0


def test_check_names_the_stale_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / CONFIG_PATH).parent.mkdir(parents=True)
    shutil.copy(REPO / CONFIG_PATH, tmp_path / CONFIG_PATH)
    assert main(["--root", str(tmp_path), "check"]) == 1
    assert "stale: prometheus/recording_rules.yml (run `make generate`)" in capsys.readouterr().err


def test_generate_writes_every_file_then_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / CONFIG_PATH).parent.mkdir(parents=True)
    shutil.copy(REPO / CONFIG_PATH, tmp_path / CONFIG_PATH)
    assert main(["--root", str(tmp_path), "generate"]) == 0
    assert capsys.readouterr().out.endswith("7 files, 7 changed\n")
    assert main(["--root", str(tmp_path), "generate"]) == 0
    assert capsys.readouterr().out == "7 files, 0 changed\n"


def test_a_broken_configuration_is_reported_with_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / CONFIG_PATH).parent.mkdir(parents=True)
    config = yaml.safe_load((REPO / CONFIG_PATH).read_text())
    config["cost"]["daily_budget_usd"] = -5
    (tmp_path / CONFIG_PATH).write_text(yaml.safe_dump(config))
    assert main(["--root", str(tmp_path), "generate"]) == 2
    assert "cost.daily_budget_usd: Input should be greater than 0" in capsys.readouterr().err


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.prometheus
def test_the_native_stack_runs_and_stops_with_its_children(tmp_path: Path) -> None:
    if shutil.which("prometheus") is None or alertmanager_binary() is None:
        unavailable("prometheus and prometheus-alertmanager are not installed (apt-get install them)")
    ports = [free_port(), free_port(), free_port()]
    args = [
        sys.executable,
        "-m",
        "agent_exporter.demo.stack",
        "--root",
        str(REPO),
        "--state-dir",
        str(tmp_path),
    ]
    args += [
        "--exporter-port",
        str(ports[0]),
        "--prometheus-port",
        str(ports[1]),
        "--alertmanager-port",
        str(ports[2]),
    ]
    stack = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        prometheus = f"http://127.0.0.1:{ports[1]}"

        def targets() -> dict[str, str]:
            active = httpx.get(f"{prometheus}/api/v1/targets", timeout=2).json()["data"]["activeTargets"]
            return {t["labels"]["job"]: t["scrapeUrl"] for t in active}

        # the first scrape may be 15 s away (the shipped interval): the targets are what matters here
        wait_until(lambda: len(targets()) == 3, 60, "Prometheus to load the stack's targets")
        assert targets() == {
            "agent-exporter": f"http://127.0.0.1:{ports[0]}/metrics",
            "prometheus": f"http://127.0.0.1:{ports[1]}/metrics",
            "alertmanager": f"http://127.0.0.1:{ports[2]}/metrics",
        }
        # Prometheus may be up before the exporter, which starts slower on a busy machine
        readyz = f"http://127.0.0.1:{ports[0]}/readyz"
        wait_until(lambda: httpx.get(readyz, timeout=2).status_code == 200, START_TIMEOUT, "the exporter")
        groups = httpx.get(f"{prometheus}/api/v1/rules", timeout=2).json()["data"]["groups"]
        assert len(groups) == 10
        alertmanagers = httpx.get(f"{prometheus}/api/v1/alertmanagers", timeout=2).json()["data"]
        assert alertmanagers["activeAlertmanagers"] == [{"url": f"http://127.0.0.1:{ports[2]}/api/v2/alerts"}]
        assert httpx.get(f"http://127.0.0.1:{ports[2]}/-/ready", timeout=2).status_code == 200
    finally:
        stack.send_signal(signal.SIGTERM)
        output, _ = stack.communicate(timeout=60)
    assert stack.returncode == 0, output
    assert [p for p in ports if _listening(p)] == []
    assert (tmp_path / "exporter.log").is_file()


@pytest.mark.prometheus
def test_the_native_stack_refuses_a_port_in_use(tmp_path: Path) -> None:
    if shutil.which("prometheus") is None or alertmanager_binary() is None:
        unavailable("prometheus and prometheus-alertmanager are not installed (apt-get install them)")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        args = [sys.executable, "-m", "agent_exporter.demo.stack", "--root", str(REPO)]
        args += ["--state-dir", str(tmp_path), "--prometheus-port", str(port)]
        result = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert f"in use on 127.0.0.1: prometheus port {port}" in result.stdout
