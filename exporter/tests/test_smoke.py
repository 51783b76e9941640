"""The service starts, takes a run and counts it."""

from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from .support import record


def test_a_posted_run_is_counted(client: TestClient, registry: CollectorRegistry) -> None:
    response = client.post("/api/v1/runs", json=record("r-1"))
    assert response.status_code == 201
    assert (
        registry.get_sample_value(
            "agent_runs_total",
            {"agent": "fixer", "model": "claude-sonnet-4-5", "issue_type": "complexity", "status": "success"},
        )
        == 1.0
    )
