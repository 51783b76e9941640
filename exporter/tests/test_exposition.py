"""/metrics after a realistic mix of records: promtool finds nothing to complain about."""

from __future__ import annotations

import shutil
import subprocess
from itertools import islice

from fastapi.testclient import TestClient
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from agent_exporter.demo import swebench

from .support import SHARED_DATA, record, unavailable

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def feed_realistic_mix(client: TestClient) -> None:
    runs = list(islice(swebench.records(SHARED_DATA), 200))
    runs += [
        record("err-1", status="error", error_type="crash", error_summary="Traceback: KeyError"),
        record("to-1", status="timeout", duration_seconds=3600, model="o3", provider="openai"),
        record("can-1", status="cancelled", model=None, issue_type=None),
        record("unpriced-1", model="internal-coder", input_tokens=1000, output_tokens=10),
        record(
            "multi-1",
            model=None,
            usage=[
                {
                    "model": "gpt-5",
                    "input_tokens": 900_000,
                    "cache_read_tokens": 500_000,
                    "output_tokens": 9000,
                },
                {
                    "model": "claude-haiku-4-5",
                    "input_tokens": 100_000,
                    "output_tokens": 2000,
                    "reasoning_tokens": 500,
                },
            ],
            phases=[{"name": n, "duration_seconds": d} for n, d in (("plan", 3), ("edit", 40), ("test", 95))],
            tools=[{"name": "bash", "calls": 12, "errors": 2}, {"name": "edit", "calls": 5}],
            ended_at="2026-01-01T00:00:00Z",
        ),
    ]
    for start in range(0, len(runs), 100):
        assert client.post("/api/v1/runs", json={"runs": runs[start : start + 100]}).json()["rejected"] == 0
    client.post("/api/v1/runs", json=record("bad", input_tokens=-1))


def test_promtool_finds_no_problem_in_the_exposition(client: TestClient) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        unavailable("promtool is not installed (Debian package prometheus)")
    feed_realistic_mix(client)
    scrape = client.get("/metrics")
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=scrape.content, capture_output=True, timeout=60
    )
    assert (checked.returncode, checked.stdout.decode() + checked.stderr.decode()) == (0, "")


def test_the_openmetrics_exposition_parses(client: TestClient) -> None:
    # promtool check metrics reads only the text format; the OpenMetrics parser checks the other
    feed_realistic_mix(client)
    scrape = client.get("/metrics", headers={"accept": OPENMETRICS}).text
    families = {f.name: f for f in text_string_to_metric_families(scrape)}
    assert families["agent_runs"].type == "counter"
    assert families["agent_run_duration_seconds"].type == "histogram"
    exemplars = [s.exemplar for s in families["agent_run_cost_usd"].samples if s.exemplar is not None]
    assert len(exemplars) > 0
    assert all(set(e.labels) == {"run_id"} for e in exemplars)


def test_openmetrics_is_served_when_asked_with_exemplars(client: TestClient) -> None:
    client.post("/api/v1/runs", json=record("run-42", duration_seconds=42.5))
    scrape = client.get("/metrics", headers={"accept": OPENMETRICS})
    assert scrape.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
    assert scrape.text.endswith("# EOF\n")
    assert '# {run_id="run-42"} 42.5' in scrape.text
    plain = client.get("/metrics")
    assert plain.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "run_id" not in plain.text


def test_the_exposition_has_no_created_series(client: TestClient) -> None:
    client.post("/api/v1/runs", json=record("r"))
    assert "_created" not in client.get("/metrics").text
