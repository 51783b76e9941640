"""Reading back what a real exporter (started by `support.exporter`) stored and counted."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from .support import ExporterProcess


def stored_runs(tmp_path: Path) -> list[tuple[str, str, str]]:
    """(run_id, agent, status) of every run in the exporter's SQLite store, sorted by run id."""
    with sqlite3.connect(tmp_path / "exporter.db") as db:
        return sorted(db.execute("SELECT run_id, agent, status FROM runs"))


def stored_run_ids(tmp_path: Path) -> list[str]:
    """Run ids in the exporter's SQLite store, sorted."""
    return [run_id for run_id, _, _ in stored_runs(tmp_path)]


def records_total(server: ExporterProcess) -> dict[str, float]:
    """`agent_exporter_records_total` by outcome, read from the exporter's /metrics."""
    text = httpx.get(f"{server.url}/metrics", timeout=5).text
    return {
        sample.labels["outcome"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "agent_exporter_records"
        for sample in family.samples
        if sample.name == "agent_exporter_records_total"
    }
