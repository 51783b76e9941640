"""The read API is documented in the OpenAPI document: parameters, response models, errors."""

from __future__ import annotations

from typing import Any

import pytest

from agent_exporter.api.app import create_app
from agent_exporter.config import load_settings

READ_PATHS = {
    ("/api/v1/runs", "get"): "RunPage",
    ("/api/v1/runs/{run_id}", "get"): "RunDetailOut",
    ("/api/v1/summary", "get"): "SummaryOut",
    ("/api/v1/timeseries", "get"): "TimeseriesOut",
    ("/api/v1/report", "get"): "ReportOut",
    ("/api/v1/trends", "get"): "TrendsOut",
    ("/api/v1/health", "get"): "HealthOut",
    ("/api/v1/reprice", "post"): "RepriceOut",
}
FILTERS = {
    "from",
    "to",
    "agent",
    "model",
    "provider",
    "issue_type",
    "status",
    "project",
    "team",
    "environment",
}


@pytest.fixture(scope="module")
def openapi(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The document as served (built without starting the service)."""
    app = create_app(load_settings(database_url=f"sqlite:///{tmp_path_factory.mktemp('openapi')}/x.db"))
    return app.openapi()


@pytest.mark.parametrize(("path", "method"), list(READ_PATHS))
def test_read_endpoints_document_their_response_and_errors(
    openapi: dict[str, Any], path: str, method: str
) -> None:
    operation = openapi["paths"][path][method]
    ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": f"#/components/schemas/{READ_PATHS[(path, method)]}"}
    assert operation["responses"]["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
    assert operation["summary"]


@pytest.mark.parametrize(("path", "method"), [k for k in READ_PATHS if "{" not in k[0]])
def test_every_list_endpoint_takes_the_filters(openapi: dict[str, Any], path: str, method: str) -> None:
    names = {p["name"] for p in openapi["paths"][path][method]["parameters"]}
    assert names >= FILTERS


def test_response_fields_are_described(openapi: dict[str, Any]) -> None:
    figures = openapi["components"]["schemas"]["Figures"]["properties"]
    assert "failed attempts and cancelled runs included" in figures["cost_per_success_usd"]["description"]
    assert openapi["components"]["schemas"]["Filters"]["properties"]["from"]


@pytest.mark.parametrize("schema", ["Figures", "AgentRow", "Pick", "Totals"])
def test_cancelled_and_attempts_are_documented_where_success_is_counted(
    openapi: dict[str, Any], schema: str
) -> None:
    fields = openapi["components"]["schemas"][schema]["properties"]
    assert "runs - cancelled" in fields["attempts"]["description"]
    assert "neither successes nor failures" in fields["cancelled"]["description"]
    assert fields["failures"]["description"].startswith("failed runs (status failure, error or timeout)")
    assert fields["success_rate"]["description"].startswith("successes / attempts")
