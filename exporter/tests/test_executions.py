"""POST /api/v1/executions: the Fixer Agent's AgentExecutionMetrics, taken as they are."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from agent_exporter.api.executions import execution_field, to_run_record

EXECUTIONS = "/api/v1/executions"
RECEIVED = "2026-11-22T12:00:00+00:00"


def execution(invocation_id: str = "inv-1", **fields: Any) -> dict[str, Any]:
    """An execution as the Fixer Agent persists it (the seed's AgentExecutionMetrics)."""
    body: dict[str, Any] = {
        "feedId": 17,
        "runStartId": 4711,
        "invocationId": invocation_id,
        "status": "completed",
        "model": "claude-sonnet-4-5",
        "llmCallCount": 12,
        "inputTokens": 800_000,
        "outputTokens": 100_000,
        "totalTokens": 900_000,
        "cacheCreationInputTokens": 0,
        "cacheReadInputTokens": 200_000,
        "toolCallsCount": 30,
        "modifiedFiles": ["src/a.py", "tests/test_a.py"],
        "startTime": "2026-11-22T10:00:00.000Z",
        "endTime": "2026-11-22T10:07:30.000Z",
        "taskIndex": 3,
        "temperature": 0.2,
        "maxTokens": 8192,
        "executionMetadata": {"branch": "fix/4711"},
        "trajectoryGcsPath": None,
    }
    body.update(fields)
    return body


def test_an_execution_becomes_a_run_record() -> None:
    assert to_run_record(execution(), agent="fixer", received_at=RECEIVED) == {
        "agent": "fixer",
        "run_id": "inv-1",
        "status": "success",
        "model": "claude-sonnet-4-5",
        "started_at": "2026-11-22T10:00:00.000Z",
        "ended_at": "2026-11-22T10:07:30.000Z",
        "llm_calls": 12,
        "output_tokens": 100_000,
        "cache_read_tokens": 200_000,
        "cache_write_tokens": 0,
        "tool_calls": 30,
        # inputTokens excludes the cache (Anthropic's usage); run records count input inclusively
        "input_tokens": 1_000_000,
        "labels": {
            "feed_id": "17",
            "run_start_id": "4711",
            "task_index": "3",
            "temperature": "0.2",
            "max_tokens": "8192",
            "modified_files": "2",
        },
        # the run start groups an agent run's tasks: their session; the files are counted
        "counts": {"modified_files": 2},
        "session_id": "4711",
    }


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("completed", "success"),
        ("FAILED", "failure"),
        ("errored", "error"),
        ("timed_out", "timeout"),
        ("aborted", "cancelled"),
    ],
)
def test_the_agents_status_words_map_to_run_statuses(status: str, expected: str) -> None:
    assert to_run_record(execution(status=status), agent="fixer", received_at=RECEIVED)["status"] == expected


def test_without_an_invocation_id_the_run_start_and_task_index_name_the_run() -> None:
    record = to_run_record(execution(invocationId=None), agent="fixer", received_at=RECEIVED)
    assert record["run_id"] == "4711-3"


def test_an_execution_without_an_end_ended_when_it_was_received() -> None:
    record = to_run_record(execution(endTime=None), agent="fixer", received_at=RECEIVED)
    assert (record["started_at"], record["ended_at"]) == ("2026-11-22T10:00:00.000Z", RECEIVED)


def test_the_error_message_and_type_are_kept() -> None:
    record = to_run_record(
        execution(status="failed", errorMessage="3 tests still fail", errorInfo={"type": "tests_failed"}),
        agent="fixer",
        received_at=RECEIVED,
    )
    assert (record["error_summary"], record["error_type"]) == ("3 tests still fail", "tests_failed")


def test_error_fields_are_named_as_the_execution_names_them() -> None:
    assert execution_field("input_tokens") == "inputTokens"
    assert execution_field("runs[2].cache_read_tokens") == "executions[2].cacheReadInputTokens"
    assert execution_field("runs[4]") == "executions[4]"
    assert execution_field("labels.task_index") == "taskIndex"


def test_an_execution_is_stored_and_counted_with_its_cost_estimated(
    client: TestClient, registry: CollectorRegistry
) -> None:
    response = client.post(EXECUTIONS, json=execution())
    assert response.status_code == 201
    run = client.get("/api/v1/runs/inv-1").json()
    assert (run["agent"], run["status"], run["duration_seconds"], run["input_tokens"]) == (
        "fixer",
        "success",
        450.0,
        1_000_000,
    )
    # 800k x $3 + 200k cache reads x $0.30 + 100k x $15 per million
    assert run["cost_usd"] == pytest.approx(3.96)
    labels = {"agent": "fixer", "model": "claude-sonnet-4-5", "cost_source": "estimated", "status": "success"}
    assert registry.get_sample_value("agent_cost_usd_total", labels) == pytest.approx(3.96)


def test_a_batch_names_bad_executions_in_their_own_fields(client: TestClient) -> None:
    body = {
        "executions": [
            execution("a", agent_ignored=True),
            execution("b", inputTokens=-5),
            execution("c", status="pending"),
        ]
    }
    response = client.post(EXECUTIONS, params={"agent": "fixer-staging"}, json=body)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["outcome"] for r in results] == ["accepted", "rejected", "rejected"]
    assert [(e["field"], e["rule"]) for e in results[1]["errors"]] == [
        ("executions[1].inputTokens", "minimum")
    ]
    assert results[1]["errors"][0]["message"].startswith("executions[1].inputTokens: ")
    assert [(e["field"], e["rule"]) for e in results[2]["errors"]] == [("executions[2].status", "enum")]
    assert client.get("/api/v1/runs/a").json()["agent"] == "fixer-staging"


def test_the_same_execution_twice_is_a_duplicate(client: TestClient) -> None:
    assert client.post(EXECUTIONS, json=execution()).status_code == 201
    assert client.post(EXECUTIONS, json=execution()).status_code == 200


def test_a_bad_agent_parameter_is_422(client: TestClient) -> None:
    response = client.post(EXECUTIONS, params={"agent": " "}, json=execution())
    assert response.status_code == 422
    assert response.json()["error"]["message"] == "agent: must not be empty or blank"


def test_the_openapi_document_describes_executions(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    post = doc["paths"]["/api/v1/executions"]["post"]
    assert [p["name"] for p in post["parameters"]] == ["agent", "backfill"]
    properties = doc["components"]["schemas"]["AgentExecutionMetrics"]["properties"]
    assert properties["inputTokens"]["description"] == "excluding prompt-cache tokens"
