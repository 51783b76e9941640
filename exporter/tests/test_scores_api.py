"""POST and GET /api/v1/runs/{run_id}/scores: scores given after a run ended, idempotent by
score_id, 404 for an unknown run, 422 naming the field and the rule, counted in agent_run_score."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from .readfixtures import at, post
from .support import make_client, record

SCORES = "/api/v1/runs/fix-1/scores"
REVIEW = {"name": "quality", "value": 0.8, "source": "review", "score_id": "pr-17-review", "author": "ana"}


@pytest.fixture
def api(store_url: str, registry: CollectorRegistry) -> Iterator[TestClient]:
    with make_client(store_url, registry) as client:
        post(client, [record("fix-1", agent="fixer", ended_at=at(1)), record("a/b", ended_at=at(1))])
        yield client


def score_count(registry: CollectorRegistry, **labels: str) -> float | None:
    return registry.get_sample_value("agent_run_score_count", labels)


def test_a_score_is_stored_listed_and_counted(api: TestClient, registry: CollectorRegistry) -> None:
    response = api.post(SCORES, json={"scores": [REVIEW]})
    assert response.status_code == 201
    assert response.json()["results"] == [{"index": 0, "outcome": "accepted", "score_id": "pr-17-review"}]
    [score] = api.get(SCORES).json()["scores"]
    assert {k: score[k] for k in ("score_id", "name", "value", "source", "author", "comment")} == {
        **REVIEW,
        "comment": None,
    }
    labels = {"agent": "fixer", "name": "quality", "source": "review"}
    assert score_count(registry, **labels) == 1
    assert registry.get_sample_value("agent_run_score_sum", labels) == 0.8
    assert registry.get_sample_value("agent_run_score_bucket", {**labels, "le": "0.7"}) == 0


def test_a_resent_score_is_one_score_counted_once(api: TestClient, registry: CollectorRegistry) -> None:
    assert api.post(SCORES, json={"scores": [REVIEW]}).status_code == 201
    again = api.post(SCORES, json=REVIEW)  # one score object, as well as a list
    assert again.status_code == 200
    assert again.json()["duplicates"] == 1
    assert len(api.get(SCORES).json()["scores"]) == 1
    assert score_count(registry, agent="fixer", name="quality", source="review") == 1


def test_a_score_without_an_id_sent_twice_is_one_score(api: TestClient) -> None:
    peer = {"name": "collaboration", "value": 0.6, "source": "peer"}
    first = api.post(SCORES, json={"scores": [peer, peer]}).json()
    assert [r["outcome"] for r in first["results"]] == ["accepted", "duplicate"]
    assert api.post(SCORES, json={"scores": [peer]}).json()["results"][0]["outcome"] == "duplicate"
    assert [s["name"] for s in api.get(SCORES).json()["scores"]] == ["collaboration"]


def test_a_changed_score_under_a_stored_id_is_a_conflict_never_overwritten(api: TestClient) -> None:
    api.post(SCORES, json=REVIEW)
    response = api.post(SCORES, json={**REVIEW, "value": 0.2})
    assert response.status_code == 409
    assert response.json()["results"][0]["errors"][0]["rule"] == "conflict"
    assert [s["value"] for s in api.get(SCORES).json()["scores"]] == [0.8]


def test_an_unknown_run_is_404_and_stores_nothing(api: TestClient, registry: CollectorRegistry) -> None:
    response = api.post("/api/v1/runs/nope/scores", json=REVIEW)
    assert response.status_code == 404
    assert "nope" in response.json()["error"]["message"]
    assert api.get("/api/v1/runs/nope/scores").status_code == 404
    assert score_count(registry, agent="fixer", name="quality", source="review") is None


def test_a_run_id_with_a_slash_takes_scores_and_its_run_still_reads(api: TestClient) -> None:
    assert api.post("/api/v1/runs/a/b/scores", json=REVIEW).status_code == 201
    assert len(api.get("/api/v1/runs/a/b/scores").json()["scores"]) == 1
    assert api.get("/api/v1/runs/a/b").json()["run_id"] == "a/b"


@pytest.mark.parametrize(
    ("score", "field", "rule"),
    [
        ({"name": "quality", "value": 1.5}, "scores[1].value", "maximum"),
        ({"name": "quality", "value": -0.1}, "scores[1].value", "minimum"),
        ({"name": "quality", "value": "0.5"}, "scores[1].value", "number"),
        ({"name": "quality"}, "scores[1].value", "required"),
        ({"value": 0.5}, "scores[1].name", "required"),
        ({"name": "", "value": 0.5}, "scores[1].name", "min_length"),
        ({"name": "q", "value": 0.5, "score_id": "x" * 129}, "scores[1].score_id", "max_length"),
        ({"name": "q", "value": 0.5, "comment": "a\x00b"}, "scores[1].comment", "control_characters"),
        ("quality", "scores[1]", "object"),
    ],
)
def test_a_bad_score_is_422_naming_field_and_rule_and_loses_nothing_else(
    api: TestClient, score: Any, field: str, rule: str
) -> None:
    response = api.post(SCORES, json={"scores": [REVIEW, score]})
    assert response.status_code == 422
    first, second = response.json()["results"]
    assert first["outcome"] == "accepted"
    assert (second["outcome"], second["errors"][0]["field"], second["errors"][0]["rule"]) == (
        "rejected",
        field,
        rule,
    )
    assert [s["score_id"] for s in api.get(SCORES).json()["scores"]] == ["pr-17-review"]


@pytest.mark.parametrize(
    ("body", "status"),
    [({"scores": []}, 422), ({"scores": "x"}, 422), ({"scores": [REVIEW] * 257}, 422)],
)
def test_a_bad_batch_is_refused_whole(api: TestClient, body: Any, status: int) -> None:
    assert api.post(SCORES, json=body).status_code == status
    assert api.get(SCORES).json()["scores"] == []


def test_malformed_json_and_a_wrong_content_type_are_4xx(api: TestClient) -> None:
    assert api.post(SCORES, content=b"{", headers={"content-type": "application/json"}).status_code == 400
    assert api.post(SCORES, content=b"{}", headers={"content-type": "text/plain"}).status_code == 415


def test_deleting_a_run_deletes_its_scores(store_url: str, registry: CollectorRegistry) -> None:
    with make_client(store_url, registry) as client:
        post(client, [record("gone", ended_at=at(1))])
        client.post("/api/v1/runs/gone/scores", json=REVIEW)
        client.app.state.service.store.delete_runs(["gone"])  # type: ignore[attr-defined]
        assert client.get("/api/v1/runs/gone/scores").status_code == 404
