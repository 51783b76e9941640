"""The OpenAPI document, the contract for clients and fuzzers.

FastAPI describes the routes it serves through its own machinery (the read API, the operations);
the ingest routes are plain Starlette endpoints for speed, so their operations, the run record's
schema and the Fixer Agent's execution schema are added here by hand.
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from .. import __version__
from ..config import Settings
from ..fields import MAX_SCORES, Score
from ..record import MAX_ID_LENGTH, MAX_NAME_LENGTH, RunRecord
from .executions import STATUSES, post_executions
from .ingest import BACKFILL_DESCRIPTION, post_runs
from .scores import post_scores

_INGEST_RESPONSE_SCHEMA: Final = {
    "type": "object",
    "required": ["accepted", "duplicates", "conflicts", "rejected", "results"],
    "properties": {
        "accepted": {"type": "integer"},
        "duplicates": {"type": "integer"},
        "conflicts": {"type": "integer"},
        "rejected": {"type": "integer"},
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["index", "outcome"],
                "properties": {
                    "index": {"type": "integer"},
                    "outcome": {"enum": ["accepted", "duplicate", "conflict", "rejected"]},
                    "run_id": {"type": "string"},
                    "errors": {"type": "array", "items": {"$ref": "#/components/schemas/FieldError"}},
                    "warnings": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}
_ERROR_SCHEMA: Final = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}


_EXECUTION_SCHEMA: Final = {
    "type": "object",
    "description": (
        "The Fixer Agent's record of one execution (camelCase), as it persists it; see api/executions.py."
    ),
    "required": ["status"],
    "properties": {
        "invocationId": {"type": "string", "description": "becomes run_id"},
        "feedId": {"type": "integer"},
        "runStartId": {
            "type": "integer",
            "description": "with taskIndex, the run_id when invocationId is absent",
        },
        "taskIndex": {"type": "integer"},
        "status": {"type": "string", "enum": sorted(STATUSES)},
        "errorMessage": {"type": "string", "description": "becomes error_summary"},
        "model": {"type": "string"},
        "llmCallCount": {"type": "integer", "minimum": 0},
        "inputTokens": {"type": "integer", "minimum": 0, "description": "excluding prompt-cache tokens"},
        "outputTokens": {"type": "integer", "minimum": 0},
        "totalTokens": {"type": "integer", "minimum": 0},
        "cacheCreationInputTokens": {"type": "integer", "minimum": 0},
        "cacheReadInputTokens": {"type": "integer", "minimum": 0},
        "toolCallsCount": {"type": "integer", "minimum": 0},
        "modifiedFiles": {"type": "array", "items": {"type": "string"}},
        "startTime": {"type": "string", "format": "date-time"},
        "endTime": {"type": "string", "format": "date-time"},
        "temperature": {"type": "number"},
        "maxTokens": {"type": "integer"},
        "errorInfo": {"type": "object", "description": "its type (or code, or name) becomes error_type"},
        "executionMetadata": {"type": "object"},
        "reportedCostUsd": {"type": "number", "minimum": 0},
        "trajectoryGcsPath": {"type": ["string", "null"]},
    },
}


def _ingest_operation(
    operation_id: str,
    summary: str,
    *,
    doc: str | None,
    record: str,
    key: str,
    limit: int,
    parameters: list[dict[str, Any]],
) -> dict[str, Any]:
    """The OpenAPI operation of an ingest endpoint (they are plain routes, documented by hand)."""
    ingest = {"application/json": {"schema": {"$ref": "#/components/schemas/IngestResponse"}}}
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    backfill = {
        "name": "backfill",
        "in": "query",
        "required": False,
        "schema": {"type": "boolean", "default": False},
        "description": BACKFILL_DESCRIPTION,
    }
    ref = {"$ref": f"#/components/schemas/{record}"}
    batch = {
        "type": "object",
        "required": [key],
        "properties": {key: {"type": "array", "maxItems": limit, "items": ref}},
    }
    return {
        "tags": ["ingest"],
        "summary": summary,
        "description": (doc or "").rstrip(),
        "operationId": operation_id,
        "parameters": [*parameters, backfill],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"oneOf": [ref, batch]}}},
        },
        "responses": {
            "200": {
                "description": "a batch was judged, or a single record was a duplicate",
                "content": ingest,
            },
            "201": {"description": "the record was stored", "content": ingest},
            "400": {"description": "the body is not JSON", "content": error},
            "409": {"description": "the run_id is stored with a different body", "content": ingest},
            "413": {"description": "the body or the batch is over the limit", "content": error},
            "415": {"description": "the Content-Type is not JSON", "content": error},
            "422": {
                "description": "the record was rejected (errors name field and rule), or the query "
                "string is invalid (an error naming the parameter)",
                "content": {
                    "application/json": {
                        "schema": {
                            "oneOf": [
                                {"$ref": "#/components/schemas/IngestResponse"},
                                {"$ref": "#/components/schemas/Error"},
                            ]
                        }
                    }
                },
            },
            "503": {"description": "the store is unavailable; nothing was stored", "content": error},
        },
    }


def _scores_operation() -> dict[str, Any]:
    """The OpenAPI operation of `POST /api/v1/runs/{run_id}/scores` (a plain route, like ingest)."""
    answer = {"application/json": {"schema": {"$ref": "#/components/schemas/IngestResponse"}}}
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    either = {
        "application/json": {
            "schema": {
                "oneOf": [
                    {"$ref": "#/components/schemas/IngestResponse"},
                    {"$ref": "#/components/schemas/Error"},
                ]
            }
        }
    }
    ref = {"$ref": "#/components/schemas/Score"}
    batch = {
        "type": "object",
        "required": ["scores"],
        "properties": {"scores": {"type": "array", "minItems": 1, "maxItems": MAX_SCORES, "items": ref}},
    }
    return {
        "tags": ["scores"],
        "summary": "Score a run after it ended",
        "description": (post_scores.__doc__ or "").rstrip(),
        "operationId": "post_scores",
        "parameters": [
            {
                "name": "run_id",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH},
            }
        ],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"oneOf": [ref, batch]}}},
        },
        "responses": {
            "200": {"description": "every score was stored already (duplicates)", "content": answer},
            "201": {"description": "a score was stored", "content": answer},
            "400": {"description": "the body is not JSON", "content": error},
            "404": {"description": "no run with this run_id; nothing stored", "content": error},
            "409": {"description": "a score_id is stored with a different body", "content": answer},
            "413": {"description": "the body is over the limit", "content": error},
            "415": {"description": "the Content-Type is not JSON", "content": error},
            "422": {"description": "a score was rejected (errors name field and rule)", "content": either},
            "503": {"description": "the store is unavailable; nothing was stored", "content": error},
        },
    }


def document(app: FastAPI, settings: Settings) -> dict[str, Any]:
    """The OpenAPI document: FastAPI's for the routes it serves, plus the hand-written ingest routes."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title="agent-exporter",
        version=__version__,
        description=(
            "Prometheus exporter for AI-agent executions. Agents POST one record per completed run; "
            "the service stores it and counts it on /metrics."
        ),
        routes=app.routes,
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    record_schema = RunRecord.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(record_schema.pop("$defs", {}))
    components["RunRecord"] = record_schema
    components["FieldError"] = {
        "type": "object",
        "required": ["field", "rule", "message"],
        "properties": {
            "field": {"type": "string"},
            "rule": {"type": "string"},
            "message": {"type": "string"},
        },
    }
    components["IngestResponse"] = _INGEST_RESPONSE_SCHEMA
    components["Error"] = _ERROR_SCHEMA
    components["AgentExecutionMetrics"] = _EXECUTION_SCHEMA
    limit = settings.limits.max_batch_records
    schema["paths"].setdefault("/api/v1/runs", {})["post"] = _ingest_operation(
        "post_runs",
        "Record completed runs",
        doc=post_runs.__doc__,
        record="RunRecord",
        key="runs",
        limit=limit,
        parameters=[],
    )
    agent = {
        "name": "agent",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "default": "fixer", "minLength": 1, "maxLength": MAX_NAME_LENGTH},
        "description": "the agent the executions are runs of",
    }
    schema["paths"].setdefault("/api/v1/executions", {})["post"] = _ingest_operation(
        "post_executions",
        "Record the Fixer Agent's AgentExecutionMetrics",
        doc=post_executions.__doc__,
        record="AgentExecutionMetrics",
        key="executions",
        limit=limit,
        parameters=[agent],
    )
    components["Score"] = Score.model_json_schema(ref_template="#/components/schemas/{model}")
    schema["paths"].setdefault("/api/v1/runs/{run_id}/scores", {})["post"] = _scores_operation()
    app.openapi_schema = schema
    return schema
