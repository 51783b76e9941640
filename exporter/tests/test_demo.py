"""`agent-exporter demo` against the real exporter: what it sends is what gets stored."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent_exporter.cli import app
from agent_exporter.demo.command import Window

from .exporter_reads import records_total, stored_runs
from .support import exporter, free_port, wait_until


def test_a_short_demo_stores_exactly_the_runs_it_sent(tmp_path: Path) -> None:
    with exporter(tmp_path) as server:
        args = ["demo", "--url", server.url, "--rate", "100", "--duration", "0.5", "--seed", "11"]
        result = CliRunner().invoke(app, [*args, "--spool", str(tmp_path / "spool"), "--json"])
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout)
        assert (summary["sent"], summary["by_agent"]) == (44, {"fixer": 22, "reviewer": 11, "triager": 11})
        assert summary["client"]["delivered"] == 44
        assert records_total(server) == {"accepted": 44, "duplicate": 0, "conflict": 0, "rejected": 0}
        assert len(stored_runs(tmp_path)) == 44


def test_the_demos_incidents_reach_the_store(tmp_path: Path) -> None:
    with exporter(tmp_path) as server:
        args = ["demo", "--url", server.url, "--rate", "100", "--duration", "0.5", "--seed", "12", "--json"]
        args += ["--incident", "failure-spike:magnitude=1", "--incident", "agent-silent:agent=triager"]
        result = CliRunner().invoke(app, [*args, "--spool", str(tmp_path / "spool")])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["incidents"] == [
            "failure-spike on fixer 100% of runs fail, from 0 s to the end",
            "agent-silent on triager, from 0 s to the end",
        ]
        stored = Counter((agent, status == "success") for _, agent, status in stored_runs(tmp_path))
    assert stored == {("fixer", False): 23, ("reviewer", True): 16, ("reviewer", False): 1}


def test_the_live_view_counts_failed_runs_as_the_alerts_do() -> None:
    window = Window(seconds=60)
    statuses = ["success"] * 6 + ["failure", "error", "timeout"] + ["cancelled"] * 3
    for i, status in enumerate(statuses):
        window.add(float(i), {"agent": "fixer", "status": status, "duration_seconds": 10.0, "cost_usd": 1.0})
    window.add(12.0, {"agent": "reviewer", "status": "cancelled", "duration_seconds": 5.0, "cost_usd": 0.5})
    rows = {row[0]: row for row in window.rows(30.0)}
    # 3 failed of the 9 runs not cancelled; the 3 cancelled runs are shown apart
    agent, runs, failed, cancelled, _, _ = rows["fixer"]
    assert (agent, runs, cancelled) == ("fixer", 12, 3)
    assert failed == pytest.approx(3 / 9)
    assert rows["reviewer"][:4] == ("reviewer", 1, 0.0, 1)  # only cancelled: nothing failed
    assert rows["triager"][:4] == ("triager", 0, 0.0, 0)


def test_a_bad_incident_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["demo", "--incident", "outage", "--count", "1"])
    assert result.exit_code == 2
    assert "unknown incident 'outage'" in result.output


def test_demo_serve_starts_an_exporter_and_ctrl_c_flushes_and_stops_it(tmp_path: Path) -> None:
    port = free_port()
    database = tmp_path / "demo.db"
    args = [sys.executable, "-m", "agent_exporter", "demo", "--serve", "--url", f"http://127.0.0.1:{port}"]
    args += ["--database-url", f"sqlite:///{database}", "--server-log", str(tmp_path / "server.log")]
    args += ["--rate", "50", "--seed", "3", "--spool", str(tmp_path / "spool"), "--json"]
    demo = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: len(stored_runs_in(database)) >= 20, 60, "the demo's runs to be stored")
        demo.send_signal(signal.SIGINT)  # what Ctrl-C does
        stdout, stderr = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(10)
    assert demo.returncode == 0, stderr
    summary = json.loads(stdout)
    assert summary["interrupted"]
    assert summary["client"]["delivered"] == summary["sent"]
    assert len(stored_runs_in(database)) == summary["sent"]
    # the exporter was stopped: its port is free again
    import socket

    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def stored_runs_in(database: Path) -> list[str]:
    """Run ids stored in a SQLite database file (none while it does not exist yet)."""
    import sqlite3

    if not database.exists():
        return []
    with sqlite3.connect(database) as db:
        return [row[0] for row in db.execute("SELECT run_id FROM runs")]
