"""Two replicas on one PostgreSQL: retries that land on different replicas store and count once."""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from .pgcluster import fresh_database
from .scrape import scrape
from .support import exporter, record

RUNS = 600
BATCH = 20


def _batches() -> list[list[dict[str, Any]]]:
    records = [
        record(f"rep-{i}", status="failure" if i % 7 == 0 else "success", input_tokens=100 + i)
        for i in range(RUNS)
    ]
    return [records[i : i + BATCH] for i in range(0, RUNS, BATCH)]


@pytest.mark.postgres
def test_the_same_records_on_two_replicas_are_stored_once_and_counted_once_in_sum(tmp_path: Path) -> None:
    batches = _batches()
    outcomes: list[dict[str, Any]] = []
    lock = threading.Lock()

    def client(url: str, order: list[int]) -> None:
        with httpx.Client(timeout=30) as http:
            for n in order:
                body = http.post(f"{url}/api/v1/runs", json={"runs": batches[n]}).json()
                with lock:
                    outcomes.append(body)

    with fresh_database() as url, exporter(tmp_path, database_url=url) as one:
        with exporter(tmp_path, database_url=url) as two:
            shuffled = list(range(len(batches)))
            random.Random(7).shuffle(shuffled)
            # every batch goes to both replicas, from two clients each, in different orders
            clients = [
                threading.Thread(target=client, args=(one.url, list(range(len(batches))))),
                threading.Thread(target=client, args=(two.url, list(reversed(range(len(batches)))))),
                threading.Thread(target=client, args=(one.url, shuffled)),
                threading.Thread(target=client, args=(two.url, shuffled[::-1])),
            ]
            for c in clients:
                c.start()
            for c in clients:
                c.join(120)
            first, second = scrape(one.url), scrape(two.url)
            ready = (httpx.get(f"{one.url}/readyz").status_code, httpx.get(f"{two.url}/readyz").status_code)
        engine = create_engine(url)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT count(*), count(DISTINCT run_id) FROM runs")).one()
            failures = conn.execute(text("SELECT count(*) FROM runs WHERE status = 'failure'")).scalar_one()
        engine.dispose()

    sent = 4 * RUNS
    accepted = sum(o["accepted"] for o in outcomes)
    duplicates = sum(o["duplicates"] for o in outcomes)
    assert ready == (200, 200)
    assert tuple(rows) == (RUNS, RUNS)
    assert failures == len(range(0, RUNS, 7))
    assert (accepted, duplicates, sum(o["conflicts"] for o in outcomes)) == (RUNS, sent - RUNS, 0)
    counted = first.total("agent_runs_total") + second.total("agent_runs_total")
    assert counted == RUNS
    assert first.total("agent_runs_total", status="failure") + second.total(
        "agent_runs_total", status="failure"
    ) == len(range(0, RUNS, 7))
    assert (
        first.total("agent_exporter_records_total", outcome="accepted")
        + second.total("agent_exporter_records_total", outcome="accepted")
        == RUNS
    )
    # both replicas took a share: the race was real
    assert first.total("agent_runs_total") > 0
    assert second.total("agent_runs_total") > 0
    print(
        f"\nreplicas: {sent} records sent ({RUNS} distinct) to 2 replicas; stored {rows[0]}, counted "
        f"{first.total('agent_runs_total'):g} + {second.total('agent_runs_total'):g} = {counted:g}"
    )
