"""The seeds' record fields: sessions and sub-runs, counts, sub-agents, pipeline attempts and
debugging cycles: validated with named rules, stored on both backends, read back in full."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from agent_exporter.record import RunRecord, parse_record

from .readfixtures import at, post
from .support import NOW, make_client, record

RUNS = "/api/v1/runs"

PARENT = record(
    "parent",
    agent="supervisor",
    session_id="conversation-7",
    ended_at=at(1),
    duration_seconds=600.0,
    cost_usd=2.0,
    counts={"candidates": 12, "scenarios": 30, "evaluations": 0},
    subagents=[
        {
            "name": "coding",
            "attempts": 2,
            "successes": 1,
            "failures": 1,
            "retries": 1,
            "duration_seconds": 45.5,
        },
        {"name": "testing", "attempts": 3, "successes": 1, "failures": 2, "retries": 2},
    ],
    pipeline_attempts=[
        {"id": "4258", "status": "failure", "commit": "abc123", "duration_seconds": 300.0},
        {"id": "4260", "status": "success", "commit": "def456"},
    ],
    debugging_cycles=[
        {
            "agent": "testing",
            "error_type": "test_failure",
            "attempts": 2,
            "resolved": True,
            "duration_seconds": 178.2,
        }
    ],
)
CHILDREN = [
    record(
        "child-coding",
        agent="coding",
        parent_run_id="parent",
        session_id="conversation-7",
        ended_at=at(0.9),
        duration_seconds=100.0,
        cost_usd=0.25,
        input_tokens=1000,
        output_tokens=100,
    ),
    record(
        "child-testing",
        agent="testing",
        status="failure",
        parent_run_id="parent",
        session_id="conversation-7",
        ended_at=at(0.95),
        duration_seconds=50.0,
        cost_usd=0.5,
        input_tokens=3000,
        output_tokens=300,
    ),
]


@pytest.fixture
def api(store_url: str, registry: CollectorRegistry) -> Iterator[TestClient]:
    """The app on each backend with a parent run and its two children stored."""
    with make_client(store_url, registry) as client:
        post(client, [PARENT, *CHILDREN])
        yield client


def test_a_run_reads_back_its_session_counts_subagents_pipelines_and_cycles(api: TestClient) -> None:
    run = api.get(f"{RUNS}/parent").json()
    assert run["session_id"] == "conversation-7"
    assert run["parent_run_id"] is None
    assert run["counts"] == {"candidates": 12, "scenarios": 30, "evaluations": 0}
    assert run["subagents"] == [
        {
            "name": "coding",
            "attempts": 2,
            "successes": 1,
            "failures": 1,
            "retries": 1,
            "duration_seconds": 45.5,
        },
        {
            "name": "testing",
            "attempts": 3,
            "successes": 1,
            "failures": 2,
            "retries": 2,
            "duration_seconds": None,
        },
    ]
    assert run["pipeline_attempts"] == [
        {"id": "4258", "status": "failure", "commit": "abc123", "duration_seconds": 300.0},
        {"id": "4260", "status": "success", "commit": "def456", "duration_seconds": None},
    ]
    assert run["debugging_cycles"] == [
        {
            "agent": "testing",
            "error_type": "test_failure",
            "attempts": 2,
            "resolved": True,
            "duration_seconds": 178.2,
        }
    ]


def test_a_child_run_appears_under_its_parent_with_totals(api: TestClient) -> None:
    run = api.get(f"{RUNS}/parent").json()
    assert [c["run_id"] for c in run["children"]] == ["child-coding", "child-testing"]
    assert [c["parent_run_id"] for c in run["children"]] == ["parent", "parent"]
    assert run["children_totals"] == {
        "runs": 2,
        "failures": 1,
        "duration_seconds": 150.0,
        "cost_usd": 0.75,
        "input_tokens": 4000,
        "output_tokens": 400,
    }
    child = api.get(f"{RUNS}/child-testing").json()
    assert child["parent_run_id"] == "parent"
    assert child["children"] == []
    assert child["children_totals"] is None


def test_the_run_history_carries_counts_session_and_parent(api: TestClient) -> None:
    runs = {r["run_id"]: r for r in api.get(RUNS).json()["runs"]}
    assert runs["parent"]["counts"] == {"candidates": 12, "scenarios": 30, "evaluations": 0}
    assert runs["child-coding"]["counts"] == {}
    assert runs["child-coding"]["parent_run_id"] == "parent"
    assert runs["child-coding"]["session_id"] == "conversation-7"


def test_a_run_resent_with_the_new_fields_is_a_duplicate_and_a_changed_cycle_a_conflict(
    api: TestClient,
) -> None:
    again = api.post(RUNS, json=PARENT).json()
    assert again["results"][0]["outcome"] == "duplicate"
    changed = {**PARENT, "debugging_cycles": [{**PARENT["debugging_cycles"][0], "resolved": False}]}
    assert api.post(RUNS, json=changed).json()["results"][0]["outcome"] == "conflict"


def test_a_record_without_the_new_fields_hashes_as_before() -> None:
    # the digest clients' stored runs were deduplicated by must not change with the new fields
    plain = record("r-1", cost_usd=1.0)
    explicit = {**plain, "counts": {}, "subagents": [], "session_id": None, "pipeline_attempts": []}
    hashes = set()
    for body in (plain, explicit):
        parsed = parse_record(body, now=NOW, max_future_skew=300)
        assert isinstance(parsed, RunRecord)
        hashes.add(parsed.body_hash())
    assert len(hashes) == 1


@pytest.mark.parametrize(
    ("fields", "field", "rule"),
    [
        ({"parent_run_id": "r-1"}, "parent_run_id", "parent_is_self"),
        ({"session_id": ""}, "session_id", "min_length"),
        ({"session_id": "s" * 129}, "session_id", "max_length"),
        ({"parent_run_id": "p\x00"}, "parent_run_id", "control_characters"),
        ({"counts": {"candidates": -1}}, "counts.candidates", "minimum"),
        ({"counts": {"candidates": 1.5}}, "counts.candidates", "integer"),
        ({"counts": {"candidates": "12"}}, "counts.candidates", "number"),
        ({"counts": {"two words": 1}}, "counts.two words", "count_key"),
        ({"counts": {f"k{i}": i for i in range(33)}}, "counts", "max_keys"),
        ({"counts": [1, 2]}, "counts", "object"),
        (
            {"subagents": [{"name": "coding", "attempts": 1, "successes": 1, "failures": 1}]},
            "subagents[0].attempts",
            "subset_exceeds_total",
        ),
        ({"subagents": [{"attempts": 1}]}, "subagents[0].name", "required"),
        ({"subagents": [{"name": "coding", "retries": -2}]}, "subagents[0].retries", "minimum"),
        ({"pipeline_attempts": [{"status": "passed"}]}, "pipeline_attempts[0].status", "enum"),
        ({"pipeline_attempts": [{"id": "1"}]}, "pipeline_attempts[0].status", "required"),
        (
            {"pipeline_attempts": [{"status": "success", "duration_seconds": float("nan")}]},
            "pipeline_attempts[0].duration_seconds",
            "finite",
        ),
        ({"debugging_cycles": [{"resolved": "yes"}]}, "debugging_cycles[0].resolved", "boolean"),
        ({"debugging_cycles": [{"attempts": -1}]}, "debugging_cycles[0].attempts", "minimum"),
        ({"debugging_cycles": [{}] * 257}, "debugging_cycles", "max_items"),
    ],
)
def test_bad_new_fields_are_rejected_naming_field_and_rule(
    fields: dict[str, Any], field: str, rule: str
) -> None:
    errors = parse_record(record("r-1", **fields), now=NOW, max_future_skew=300)
    assert isinstance(errors, list)
    assert (errors[0].field, errors[0].rule) == (field, rule)
    assert errors[0].message.startswith(f"{field}: ")


def test_one_bad_child_field_loses_nothing_else_in_the_batch(
    store_url: str, registry: CollectorRegistry
) -> None:
    with make_client(store_url, registry) as client:
        bad = record("bad", subagents=[{"name": "x", "attempts": 0, "successes": 1}])
        body = client.post(RUNS, json={"runs": [record("good", counts={"candidates": 3}), bad]}).json()
        assert [r["outcome"] for r in body["results"]] == ["accepted", "rejected"]
        assert body["results"][1]["errors"][0]["rule"] == "subset_exceeds_total"
        assert client.get(f"{RUNS}/good").json()["counts"] == {"candidates": 3}
        assert client.get(f"{RUNS}/bad").status_code == 404


HTML = {"accept": "text/html"}


def test_the_web_run_page_lists_the_children_under_their_parent_and_the_workflow(api: TestClient) -> None:
    html = api.get("/runs/parent?range=all", headers=HTML).text
    children = html[html.index('id="children-h"') :]
    assert children.index("child-coding") < children.index("child-testing")
    assert "2 child runs, 1 failed, $0.75" in children
    assert (
        html.count('<tr class="failed"><td class="num">1</td><td>4258</td>') == 1
    )  # the failed first attempt
    assert "the first did not pass" in html
    assert "<dt>candidates</dt><dd>12</dd>" in html
    child = api.get("/runs/child-testing?range=all", headers=HTML).text
    assert '<a class="mono" href="/runs/parent">parent</a>' in child


def test_the_web_run_history_shows_counts(api: TestClient) -> None:
    html = api.get("/runs?range=all", headers=HTML).text
    assert "candidates 12, evaluations 0, scenarios 30" in html


def test_the_web_run_page_lists_the_scores_as_text(api: TestClient) -> None:
    markup = '<img src=x onerror="alert(1)">'
    score = {"name": "quality", "value": 0.75, "source": "review", "author": "ana", "comment": markup}
    assert api.post(f"{RUNS}/parent/scores", json=score).status_code == 201
    html = api.get("/runs/parent?range=all", headers=HTML).text
    section = html[html.index('id="scores-h"') :]
    assert '<td>quality</td><td class="num">0.75</td><td>review</td><td>ana</td>' in section
    assert markup not in html  # record text is shown as text, never markup
    assert "&lt;img src=x" in section
