"""The Fixer Agent's own record, `AgentExecutionMetrics`, as run records.

The Fixer Agent already persists one `AgentExecutionMetrics` object per execution (camelCase, see
the seed assignment); `POST /api/v1/executions` takes those as they are, so the agent can send what
it has without a translation layer of its own. Each object becomes a run record, which is then
validated, stored and counted like any other; a field that does not translate is named in the error.

Token semantics: the Fixer Agent reports Anthropic-style usage, where `inputTokens` excludes the
prompt-cache tokens (`cacheReadInputTokens`, `cacheCreationInputTokens`). Run records count input
inclusively (OpenTelemetry GenAI), so input = inputTokens + cache reads + cache writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from fastapi import Request
from fastapi.responses import Response

from ..record import MAX_ERROR_SUMMARY_LENGTH, MAX_LABEL_VALUE_LENGTH, name_problem
from .http import error_response
from .ingest import ingest_request

#: the Fixer Agent's status words, as run statuses
STATUSES: Final[Mapping[str, str]] = {
    "success": "success",
    "succeeded": "success",
    "completed": "success",
    "complete": "success",
    "fixed": "success",
    "ok": "success",
    "failure": "failure",
    "failed": "failure",
    "unresolved": "failure",
    "error": "error",
    "errored": "error",
    "crashed": "error",
    "timeout": "timeout",
    "timed_out": "timeout",
    "cancelled": "cancelled",
    "canceled": "cancelled",
    "aborted": "cancelled",
}

#: scalar fields kept as labels (stored with the run; metric labels only when configured)
_LABELS: Final = (
    ("feedId", "feed_id"),
    ("runStartId", "run_start_id"),
    ("taskIndex", "task_index"),
    ("temperature", "temperature"),
    ("maxTokens", "max_tokens"),
    ("trajectoryGcsPath", "trajectory"),
)


#: run record fields -> the execution fields they come from, to name them in errors
_SOURCES: Final[Mapping[str, str]] = {
    "run_id": "invocationId",
    "status": "status",
    "model": "model",
    "started_at": "startTime",
    "ended_at": "endTime",
    "duration_seconds": "endTime",
    "llm_calls": "llmCallCount",
    "input_tokens": "inputTokens",
    "output_tokens": "outputTokens",
    "cache_read_tokens": "cacheReadInputTokens",
    "cache_write_tokens": "cacheCreationInputTokens",
    "tool_calls": "toolCallsCount",
    "cost_usd": "reportedCostUsd",
    "error_summary": "errorMessage",
    "error_type": "errorInfo.type",
    **{f"labels.{key}": source for source, key in _LABELS},
    "labels.modified_files": "modifiedFiles",
    "session_id": "runStartId",
    "parent_run_id": "parentInvocationId",
    "counts.modified_files": "modifiedFiles",
}


def _count(value: Any) -> bool:
    """Whether `value` is a token count that validation will accept (an integer ≥ 0, not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def execution_field(field: str) -> str:
    """An error's field in the execution's own names: `runs[3].input_tokens` is
    `executions[3].inputTokens`."""
    prefix, dot, name = field.partition("].")
    if dot:
        return f"executions{prefix.removeprefix('runs')}].{_SOURCES.get(name, name)}"
    if field.startswith("runs["):
        return "executions" + field.removeprefix("runs")
    return _SOURCES.get(field, field)


def to_run_record(execution: Any, *, agent: str, received_at: str) -> Any:
    """The run record of one `AgentExecutionMetrics` object (anything else is passed through, so
    that validation names what is wrong with it). `received_at` (RFC 3339) ends a run without
    `endTime`."""
    if not isinstance(execution, dict):
        return execution
    e = execution
    record: dict[str, Any] = {"agent": agent}
    run_id = e.get("invocationId")
    if run_id is None and e.get("runStartId") is not None:
        # no invocation id: the run start and the task index identify the execution
        run_id = f"{e['runStartId']}-{e.get('taskIndex', 0)}"
    if run_id is not None:
        record["run_id"] = str(run_id) if isinstance(run_id, int) else run_id
    status = e.get("status")
    record["status"] = STATUSES.get(status.strip().lower(), status) if isinstance(status, str) else status
    for source, target in (
        ("model", "model"),
        ("startTime", "started_at"),
        ("endTime", "ended_at"),
        ("llmCallCount", "llm_calls"),
        ("outputTokens", "output_tokens"),
        ("cacheReadInputTokens", "cache_read_tokens"),
        ("cacheCreationInputTokens", "cache_write_tokens"),
        ("toolCallsCount", "tool_calls"),
        ("reportedCostUsd", "cost_usd"),
    ):
        if e.get(source) is not None:
            record[target] = e[source]
    if e.get("endTime") is None and e.get("startTime") is not None:
        record["ended_at"] = received_at  # the run ended when it reported, as for run records
    input_tokens = e.get("inputTokens")
    if input_tokens is not None:
        cache = (e.get("cacheReadInputTokens"), e.get("cacheCreationInputTokens"))
        cached = [c for c in cache if c is not None]
        # only sums of valid counts: a bad one is passed on as it is, for validation to name it
        if all(_count(c) for c in [input_tokens, *cached]):
            input_tokens += sum(cached)
        record["input_tokens"] = input_tokens
    message = e.get("errorMessage")
    if isinstance(message, str) and message:
        record["error_summary"] = message[:MAX_ERROR_SUMMARY_LENGTH]
    info = e.get("errorInfo")
    if isinstance(info, dict):
        kind = info.get("type") or info.get("code") or info.get("name")
        if isinstance(kind, str) and kind:
            record["error_type"] = kind[:64]
    labels: dict[str, str] = {}
    for source, key in _LABELS:
        value = e.get(source)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            text = str(value)
            if len(text) <= MAX_LABEL_VALUE_LENGTH:
                labels[key] = text
    files = e.get("modifiedFiles")
    if isinstance(files, list):
        labels["modified_files"] = str(len(files))
        record["counts"] = {"modified_files": len(files)}
    # the run start groups the tasks of one run of the agent: the session of its executions
    for source, target in (("runStartId", "session_id"), ("parentInvocationId", "parent_run_id")):
        value = e.get(source)
        if value is not None:
            record[target] = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if labels:
        record["labels"] = labels
    return record


async def post_executions(request: Request) -> Response:
    """Store the Fixer Agent's own `AgentExecutionMetrics` objects (one, or `{"executions": [...]}`),
    as run records of the agent named by `?agent=` (default `fixer`); answers as `POST /api/v1/runs`,
    with errors named by the execution's own fields."""
    agent = request.query_params.get("agent", "fixer")
    problem = name_problem(agent)
    if problem is not None:
        return error_response(422, "invalid_request", f"agent: {problem}")

    def convert(records: list[Any], received_at: float) -> list[Any]:
        # the receipt time the runs are resolved with ends the executions that have no endTime
        received = datetime.fromtimestamp(received_at, UTC).isoformat()
        return [to_run_record(r, agent=agent, received_at=received) for r in records]

    return await ingest_request(request, "executions", convert, execution_field)
