"""Bad input through the real server on PostgreSQL: clean refusals, nothing stored or counted.

The rules themselves are specified in test_record.py and test_ingest_api.py; these are the inputs
that only the whole path (socket, JSON parser, validation, store, exposition) can get wrong:
truncated and deeply nested bodies, numbers beyond 64 bits, Unicode and control characters,
clocks far off, unknown fields, and a mixed batch whose good records must be kept.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import create_engine, text

from .pgcluster import fresh_database
from .scrape import Scrape, scrape
from .support import ExporterProcess, exporter, record

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def db_url() -> Iterator[str]:
    with fresh_database() as url:
        yield url


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, db_url: str) -> Iterator[ExporterProcess]:
    with exporter(tmp_path_factory.mktemp("bad-input"), database_url=db_url) as s:
        yield s


def post(server: ExporterProcess, content: bytes) -> httpx.Response:
    return httpx.post(
        f"{server.url}/api/v1/runs", content=content, headers={"content-type": "application/json"}, timeout=30
    )


def stored(db_url: str, prefix: str) -> dict[str, dict[str, Any]]:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT run_id, agent, model, labels FROM runs WHERE run_id LIKE :p"),
                {"p": prefix + "%"},
            )
            return {r.run_id: dict(r._mapping) for r in rows}
    finally:
        engine.dispose()


def changes(before: Scrape, after: Scrape) -> dict[str, float]:
    """What a request changed in the counters that matter here."""
    names: list[tuple[str, dict[str, str]]] = [("agent_runs_total", {})] + [
        ("agent_exporter_records_total", {"outcome": o}) for o in ("accepted", "duplicate", "rejected")
    ]
    out = {
        f"{name}{'/' + next(iter(labels.values())) if labels else ''}": after.total(name, **labels)
        - before.total(name, **labels)
        for name, labels in names
    }
    return {k: v for k, v in out.items() if v}


def rejected_reasons(before: Scrape, after: Scrape) -> dict[str, float]:
    name = "agent_exporter_records_rejected_total"
    reasons = {dict(labels)["reason"] for n, labels in after.samples if n == name}
    out = {r: after.total(name, reason=r) - before.total(name, reason=r) for r in reasons}
    return {k: v for k, v in out.items() if v}


def test_a_truncated_batch_is_refused_whole_with_the_position(server: ExporterProcess, db_url: str) -> None:
    body = orjson.dumps({"runs": [record(f"cut-{i}") for i in range(10)]})
    before = scrape(server.url)
    response = post(server, body[: len(body) * 3 // 5])
    after = scrape(server.url)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "malformed_json"
    assert error["message"].startswith("the body is not valid JSON: ")
    assert f"line 1 column {len(body) * 3 // 5 + 1}" in error["message"]
    assert stored(db_url, "cut-") == {}
    assert changes(before, after) == {"agent_exporter_records_total/rejected": 1}
    assert rejected_reasons(before, after) == {"malformed_json": 1}


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000],
    ids=["arrays", "objects"],
)
def test_json_nested_100k_levels_deep_is_a_clean_400(server: ExporterProcess, body: bytes) -> None:
    response = post(server, body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"
    assert "depth limit exceeded" in response.json()["error"]["message"]
    assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_nesting_the_parser_allows_is_judged_by_the_field(server: ExporterProcess, db_url: str) -> None:
    deep = b"[" * 500 + b'"leaf"' + b"]" * 500  # within the parser's depth limit of 1024
    body = orjson.dumps(record("nest-1", labels={"tier": "X"})).replace(b'"X"', deep)
    response = post(server, body)
    assert response.status_code == 422
    assert [(e["field"], e["rule"]) for e in response.json()["results"][0]["errors"]] == [
        ("labels.tier", "string")
    ]
    assert stored(db_url, "nest-") == {}


@pytest.mark.parametrize(
    ("raw", "status", "field", "rule"),
    [
        # beyond a double: valid JSON grammar, read as an infinity and refused by the field
        (b"1e400", 422, "input_tokens", "integer"),
        (b"-1e400", 422, "input_tokens", "integer"),
        # past 64 bits the parser gives a float, and a count must arrive as a JSON integer
        (str(2**70).encode(), 422, "input_tokens", "integer"),
        (str(2**64).encode(), 422, "input_tokens", "integer"),
        (b"-9223372036854775809", 422, "input_tokens", "integer"),
        (b"1e308", 422, "input_tokens", "integer"),
        (str(2**63 - 1).encode(), 422, "input_tokens", "maximum"),
    ],
)
def test_huge_numbers_are_refused_cleanly(
    server: ExporterProcess, db_url: str, raw: bytes, status: int, field: str, rule: str
) -> None:
    body = orjson.dumps(record("huge-1", input_tokens=0)).replace(
        b'"input_tokens":0', b'"input_tokens":' + raw
    )
    before = scrape(server.url)
    response = post(server, body)
    after = scrape(server.url)
    assert response.status_code == status
    errors = response.json()["results"][0]["errors"]
    assert [(e["field"], e["rule"]) for e in errors] == [(field, rule)]
    assert errors[0]["message"].startswith(f"{field}: ")
    assert stored(db_url, "huge-") == {}
    assert rejected_reasons(before, after) == {rule: 1}
    assert "agent_runs_total" not in changes(before, after)


def test_a_huge_integer_beside_a_nan_is_judged_by_its_field_and_the_batch_kept(
    server: ExporterProcess, db_url: str
) -> None:
    # the NaN sends the body to the second parser, which reads 2**70 as an exact int: it must be
    # judged as the first parser's float would be, not refuse the whole body as malformed
    runs = [record("mixed-nan", input_tokens=0), record("mixed-huge", input_tokens=0), record("mixed-ok")]
    body = (
        orjson.dumps({"runs": runs})
        .replace(b'"input_tokens":0', b'"input_tokens":NaN', 1)
        .replace(b'"input_tokens":0', b'"input_tokens":' + str(2**70).encode(), 1)
    )
    response = post(server, body)
    assert response.status_code == 200  # a batch: each record has its own outcome
    results = response.json()["results"]
    assert [r["outcome"] for r in results] == ["rejected", "rejected", "accepted"]
    assert [[(e["field"], e["rule"]) for e in r.get("errors", [])] for r in results] == [
        [("runs[0].input_tokens", "integer")],
        [("runs[1].input_tokens", "integer")],
        [],
    ]
    assert set(stored(db_url, "mixed-")) == {"mixed-ok"}


def test_unicode_in_names_and_label_values_is_stored_and_exposed_exactly(
    server: ExporterProcess, db_url: str
) -> None:
    agent = "修复者 🚀 fixer"
    model = 'model "quoted" \\ backslash'
    labels = {"team_name": "Ünïcødé ✓ — עברית", "emoji": "👩‍💻🏳️‍🌈", "zw": "a\u200bb"}
    response = httpx.post(
        f"{server.url}/api/v1/runs", json=record("uni-1", agent=agent, model=model, labels=labels)
    )
    assert response.status_code == 201
    row = stored(db_url, "uni-")["uni-1"]
    assert (row["agent"], row["model"], row["labels"]) == (agent, model, labels)
    # the exposition escapes quotes and backslashes; a parser reads the exact values back
    after = scrape(server.url)
    assert after.total("agent_runs_total", agent=agent, model=model) == 1


@pytest.mark.parametrize(
    "value", ["gold\u0000", "\u001b[31mred", "next\u0085line", "two\nlines", "tab\there", "del\u007f"]
)
def test_control_characters_in_label_values_are_refused_naming_the_label(
    server: ExporterProcess, db_url: str, value: str
) -> None:
    before = scrape(server.url)
    response = httpx.post(f"{server.url}/api/v1/runs", json=record("ctl-1", labels={"tier": value}))
    after = scrape(server.url)
    assert response.status_code == 422
    assert response.json()["results"][0]["errors"] == [
        {
            "field": "labels.tier",
            "rule": "control_characters",
            "message": "labels.tier: must not contain control characters",
        }
    ]
    assert stored(db_url, "ctl-") == {}
    assert changes(before, after) == {"agent_exporter_records_total/rejected": 1}


def test_non_finite_numbers_in_one_record_of_a_batch_keep_the_others(
    server: ExporterProcess, db_url: str
) -> None:
    # Python's json.dumps writes NaN and Infinity; 1e400 is JSON beyond a double
    head = b'{"run_id": "nonfinite-bad-%d", "agent": "fixer", "status": "success", '
    body = b"".join(
        [
            b'{"runs": [',
            orjson.dumps(record("nonfinite-good-0")),
            b", " + head % 1 + b'"duration_seconds": NaN}, ',
            orjson.dumps(record("nonfinite-good-2")),
            b", " + head % 3 + b'"duration_seconds": 1, "cost_usd": Infinity}, ',
            head % 4 + b'"duration_seconds": 1e400}',
            b"]}",
        ]
    )
    before = scrape(server.url)
    response = post(server, body)
    after = scrape(server.url)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["outcome"] for r in results] == ["accepted", "rejected", "accepted", "rejected", "rejected"]
    assert [(e["field"], e["rule"]) for r in results if r["outcome"] == "rejected" for e in r["errors"]] == [
        ("runs[1].duration_seconds", "finite"),
        ("runs[3].cost_usd", "finite"),
        ("runs[4].duration_seconds", "finite"),
    ]
    assert set(stored(db_url, "nonfinite-")) == {"nonfinite-good-0", "nonfinite-good-2"}
    assert rejected_reasons(before, after) == {"finite": 3}


def test_a_lone_surrogate_is_refused_as_malformed_json(server: ExporterProcess) -> None:
    response = post(
        server, b'{"run_id": "sur-1", "agent": "\\ud800", "status": "success", "duration_seconds": 1}'
    )
    assert response.status_code == 400
    assert "surrogate" in response.json()["error"]["message"]


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def span(run_id: str, started: datetime, ended: datetime) -> dict[str, Any]:
    return record(run_id, duration_seconds=None, started_at=_iso(started), ended_at=_iso(ended))


def test_timestamps_far_off_the_clock_are_refused_through_the_api(
    server: ExporterProcess, db_url: str
) -> None:
    now = datetime.now(UTC)
    batch = [
        span("clock-future", now, now + timedelta(hours=1)),
        span("clock-ancient", datetime(1999, 12, 31, 23, tzinfo=UTC), now),
        # a clock in milliseconds divided by 10**6 instead of 10**3: 1970
        record("clock-epoch-ms", ended_at=_iso(datetime.fromtimestamp(time.time() / 1000, UTC))),
        span("clock-skewed-ok", now, now + timedelta(seconds=60)),
    ]
    before = scrape(server.url)
    response = httpx.post(f"{server.url}/api/v1/runs", json={"runs": batch})
    after = scrape(server.url)
    results = response.json()["results"]
    assert [(r["outcome"], [(e["field"], e["rule"]) for e in r.get("errors", [])]) for r in results] == [
        ("rejected", [("runs[0].ended_at", "future_timestamp")]),
        ("rejected", [("runs[1].started_at", "ancient_timestamp")]),
        ("rejected", [("runs[2].ended_at", "ancient_timestamp")]),
        ("accepted", []),  # a minute ahead is within the allowed skew of 300 s
    ]
    assert results[0]["errors"][0]["message"].endswith("s in the future; check the agent's clock")
    assert set(stored(db_url, "clock-")) == {"clock-skewed-ok"}
    assert rejected_reasons(before, after) == {"future_timestamp": 1, "ancient_timestamp": 2}
    assert changes(before, after) == {
        "agent_runs_total": 1,
        "agent_exporter_records_total/accepted": 1,
        "agent_exporter_records_total/rejected": 3,
    }


def test_unknown_fields_are_ignored_with_a_warning_and_the_run_is_kept(
    server: ExporterProcess, db_url: str
) -> None:
    batch = [
        record("unk-1", modifiedFiles=["a.py"], prompt="do not store me"),
        record("unk-2", usage=[{"model": "m", "input_tokens": 5, "temperature": 0.2}]),
    ]
    before = scrape(server.url)
    response = httpx.post(f"{server.url}/api/v1/runs", json={"runs": batch})
    after = scrape(server.url)
    assert response.json()["results"] == [
        {
            "index": 0,
            "outcome": "accepted",
            "run_id": "unk-1",
            "warnings": ["unknown field 'modifiedFiles' ignored", "unknown field 'prompt' ignored"],
        },
        {"index": 1, "outcome": "accepted", "run_id": "unk-2"},  # nested unknown keys: ignored quietly
    ]
    assert set(stored(db_url, "unk-")) == {"unk-1", "unk-2"}
    assert changes(before, after) == {"agent_runs_total": 2, "agent_exporter_records_total/accepted": 2}


def test_a_mixed_batch_stores_and_counts_exactly_its_good_records(
    server: ExporterProcess, db_url: str
) -> None:
    good = [record(f"mix-good-{i}", status="failure" if i == 0 else "success") for i in range(6)]
    bad: list[Any] = [
        record("mix-bad-0", labels={"tier": "x\u0000"}),
        record("mix-bad-1", input_tokens=-5),
        record("mix-bad-2", status="exploded"),
        record("mix-bad-3" + "x" * 200),
        record("mix-bad-4", input_tokens="12"),
        "not a record",
        record("mix-bad-6", cache_read_tokens=20, input_tokens=10),
        record("mix-bad-7", ended_at="2099-01-01T00:00:00Z"),
    ]
    batch = [item for pair in zip(good + [None] * 2, bad, strict=True) for item in pair if item is not None]
    before = scrape(server.url)
    response = httpx.post(f"{server.url}/api/v1/runs", json={"runs": batch})
    after = scrape(server.url)
    body = response.json()
    assert response.status_code == 200
    assert (body["accepted"], body["rejected"]) == (6, 8)
    assert set(stored(db_url, "mix-")) == {f"mix-good-{i}" for i in range(6)}
    assert changes(before, after) == {
        "agent_runs_total": 6,
        "agent_exporter_records_total/accepted": 6,
        "agent_exporter_records_total/rejected": 8,
    }
    assert (
        after.total("agent_runs_total", status="failure") - before.total("agent_runs_total", status="failure")
        == 1
    )
    assert rejected_reasons(before, after) == {
        "control_characters": 1,
        "minimum": 1,
        "enum": 1,
        "max_length": 1,
        "number": 1,
        "object": 1,
        "subset_exceeds_total": 1,
        "future_timestamp": 1,
    }


def test_the_server_is_still_healthy_after_all_of_it(server: ExporterProcess, tmp_path: Path) -> None:
    assert httpx.get(f"{server.url}/readyz").json() == {"status": "ready"}
    assert httpx.post(f"{server.url}/api/v1/runs", json=record("after-all")).status_code == 201
    assert "Traceback" not in server.log()
