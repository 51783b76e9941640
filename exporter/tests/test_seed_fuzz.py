"""Fuzzing the seeds' inputs on a stored run: scores bodies and records with the new fields.
Whatever arrives, no 5xx, and every rejection names a field and a rule the docs list."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from agent_exporter.record import RULES

from .support import make_client, record

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
SCORE = st.fixed_dictionaries(
    {},
    optional={
        "name": st.one_of(st.text(max_size=140), JSON),
        "value": st.one_of(st.floats(-2, 2), st.integers(-2, 2), JSON),
        "source": st.one_of(st.text(max_size=10), JSON),
        "score_id": st.one_of(st.text(max_size=140), JSON),
        "comment": st.one_of(st.text(max_size=30), JSON),
        "author": st.one_of(st.text(max_size=10), JSON),
    },
)
SEEDS_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "session_id": JSON | st.text(max_size=140),
        "parent_run_id": JSON | st.text(max_size=140),
        "counts": st.dictionaries(st.text(max_size=70), st.integers(-5, 10**13) | JSON, max_size=34) | JSON,
        "subagents": st.lists(
            st.fixed_dictionaries(
                {"name": st.text(max_size=10) | JSON},
                optional={
                    k: st.integers(-2, 5) | JSON for k in ("attempts", "successes", "failures", "retries")
                },
            )
            | JSON,
            max_size=3,
        )
        | JSON,
        "pipeline_attempts": st.lists(
            st.fixed_dictionaries(
                {"status": st.sampled_from(["success", "failure", "error", "cancelled", "passed"]) | JSON},
                optional={"id": JSON, "commit": JSON, "duration_seconds": st.floats() | JSON},
            ),
            max_size=3,
        )
        | JSON,
        "debugging_cycles": st.lists(
            st.fixed_dictionaries(
                {}, optional={"resolved": JSON, "attempts": st.integers(-2, 5) | JSON, "agent": JSON}
            ),
            max_size=3,
        )
        | JSON,
    },
)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    path: Path = tmp_path_factory.mktemp("seedfuzz") / "fuzz.db"
    with make_client(f"sqlite:///{path}", CollectorRegistry()) as client:
        assert client.post("/api/v1/runs", json=record("target")).status_code == 201
        yield client


def check_errors(results: list[dict[str, Any]]) -> None:
    for result in results:
        for error in result.get("errors", []):
            assert error["field"]
            assert error["message"].startswith(error["field"])
            assert error["rule"] in RULES | {"conflict"}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(st.fixed_dictionaries({"scores": st.lists(SCORE, max_size=4)}), SCORE, JSON))
def test_any_scores_body_is_answered_without_a_5xx_naming_field_and_rule(api: TestClient, body: Any) -> None:
    response = api.post(
        "/api/v1/runs/target/scores", content=json.dumps(body), headers={"content-type": "application/json"}
    )
    assert response.status_code in {200, 201, 400, 409, 413, 422}, response.text
    answer = response.json()
    if "results" in answer:
        check_errors(answer["results"])
    else:
        assert answer["error"]["message"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fields=SEEDS_FIELDS, n=st.integers(0, 10**9))
def test_any_new_fields_are_judged_without_a_5xx_naming_field_and_rule(
    api: TestClient, fields: dict[str, Any], n: int
) -> None:
    body = json.dumps(record(f"fuzz-{n}", **fields))  # NaN and Infinity as Python writes them
    response = api.post("/api/v1/runs", content=body, headers={"content-type": "application/json"})
    assert response.status_code in {200, 201, 409, 422}, response.text
    check_errors(response.json()["results"])
    if response.status_code == 201:  # what was stored reads back
        assert api.get(f"/api/v1/runs/fuzz-{n}").status_code == 200
