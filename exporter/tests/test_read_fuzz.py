"""No query string makes the read API answer 500: bad input is a 422 that names the parameter."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from .readfixtures import post, ten_runs
from .support import make_client

PATHS = [
    "/api/v1/runs",
    "/api/v1/summary",
    "/api/v1/timeseries",
    "/api/v1/report",
    "/api/v1/trends",
    "/api/v1/health",
]
PARAMS = [
    "from",
    "to",
    "agent",
    "status",
    "limit",
    "cursor",
    "group_by",
    "bucket",
    "min_attempts",
    "confidence",
    "window",
    "threshold",
    "baseline",
    "min_runs",
    "ratio",
]
VALUES = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        ["0", "-1", "1e309", "nan", "inf", "7d", "0d", "99999999999w", "2026-02-30", "9999-12-31T23:59:59Z"]
    ),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    path: Path = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    with make_client(f"sqlite:///{path}", CollectorRegistry()) as client:
        post(client, ten_runs())
        yield client


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(PATHS), params=st.dictionaries(st.sampled_from(PARAMS), VALUES, max_size=4))
def test_any_query_string_is_answered_or_refused_by_name(
    api: TestClient, path: str, params: dict[str, str]
) -> None:
    response = api.get(path, params=params)
    assert response.status_code in (200, 422), (path, params, response.text)
    if response.status_code == 422:
        message = response.json()["error"]["message"]
        assert any(message.startswith(f"{name}") for name in PARAMS), message
