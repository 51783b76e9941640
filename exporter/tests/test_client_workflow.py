"""The SDK's seeds methods: sub-agents, pipeline attempts, debugging cycles, counts and child runs
become the record fields the server validates."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from agent_exporter.client import Client
from agent_exporter.record import RunRecord, parse_record

from .stub_server import StubServer
from .support import FAST, exporter


def test_a_run_sends_subagents_pipelines_cycles_and_counts_that_validate(
    agent_client: Client, stub: StubServer
) -> None:
    with agent_client.run("supervisor", session_id="conv-1", project="web") as run:
        run.subagent("coding", successes=1)
        run.subagent("testing", failures=1, retries=2, duration_seconds=10.0)
        run.subagent("testing", successes=1, duration_seconds=5.0)
        run.pipeline_attempt("failure", id="4258", commit="abc123")
        run.pipeline_attempt("success", id="4260", duration_seconds=300.0)
        run.debugging_cycle(agent="testing", error_type="test_failure", attempts=2, resolved=True)
        run.count("candidates", 12)
        run.count("candidates")
        with run.child("coding") as child:
            pass
    assert child.run_id != run.run_id
    assert agent_client.flush(5)
    records = {r["agent"]: r for r in stub.records()}
    parent, sub = records["supervisor"], records["coding"]
    assert parent["subagents"] == [
        {"name": "coding", "attempts": 1, "successes": 1, "failures": 0, "retries": 0},
        {
            "name": "testing",
            "attempts": 2,
            "successes": 1,
            "failures": 1,
            "retries": 2,
            "duration_seconds": 15.0,
        },
    ]
    assert parent["pipeline_attempts"] == [
        {"status": "failure", "id": "4258", "commit": "abc123"},
        {"status": "success", "id": "4260", "duration_seconds": 300.0},
    ]
    assert parent["debugging_cycles"] == [
        {"attempts": 2, "resolved": True, "agent": "testing", "error_type": "test_failure"}
    ]
    assert parent["counts"] == {"candidates": 13}
    # the child inherits the session and the ownership, and names its parent
    assert (sub["parent_run_id"], sub["session_id"], sub["project"]) == (run.run_id, "conv-1", "web")
    for record in (parent, sub):
        assert isinstance(parse_record(record, now=time.time(), max_future_skew=300), RunRecord)


def test_a_bad_argument_to_a_workflow_method_never_raises(agent_client: Client, stub: StubServer) -> None:
    with agent_client.run("fixer") as run:
        run.subagent("coding", attempts="x")  # type: ignore[arg-type]
        run.count("candidates", None)  # type: ignore[arg-type]
    assert agent_client.flush(5)
    [record] = stub.records()
    assert "subagents" not in record
    assert "counts" not in record
    assert agent_client.stats().errors == 2


def test_the_sdk_scores_a_run_it_just_recorded_on_a_real_exporter(tmp_path: Path) -> None:
    with exporter(tmp_path) as server, Client(server.url, spool=False, **FAST) as c:
        with c.run("reviewer", run_id="team/fix-1") as run:
            run.pipeline_attempt("success")
        assert c.score(run.run_id, "quality", 0.75, source="review", score_id="r-1") is True
        assert c.score(run.run_id, "quality", 0.75, source="review", score_id="r-1") is True  # a duplicate
        assert c.score("no-such-run", "quality", 0.5) is False
        assert c.score(run.run_id, "quality", 7.0) is False  # outside 0..1: refused, never raised
        body = httpx.get(f"{server.url}/api/v1/runs/team/fix-1/scores").json()
        assert [(s["score_id"], s["value"]) for s in body["scores"]] == [("r-1", 0.75)]
        assert c.stats().errors == 0
