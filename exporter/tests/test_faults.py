"""Faults: the store goes away, the process is killed, the disk fills up, the file is read-only.

Each test injects the fault into the real thing (a PostgreSQL cluster of its own, the exporter
process, a tiny filesystem, a read-only open) and checks the three promises: the client is told
to retry (503 with Retry-After, naming the cause) and /readyz says so; nothing is counted that was
not stored; and once the fault is gone, retries land exactly once, without restarting anything.
"""

from __future__ import annotations

import contextlib
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import create_engine, event, text

from .pgcluster import fresh_database, private_cluster
from .scrape import scrape
from .support import exporter, make_client, record, start_exporter, unavailable, wait_until

RUNS = "/api/v1/runs"


def rich_record(run_id: str) -> dict[str, Any]:
    """A record with rows in every child table, so that a half-stored run would show."""
    return record(
        run_id,
        input_tokens=3000,
        output_tokens=300,
        usage=[
            {"model": "claude-sonnet-4-5", "input_tokens": 2000, "output_tokens": 200, "calls": 3},
            {"model": "claude-haiku-4-5", "input_tokens": 1000, "output_tokens": 100, "calls": 2},
        ],
        tools=[{"name": "bash", "calls": 4, "errors": 1}],
        phases=[{"name": "plan", "duration_seconds": 5}, {"name": "edit", "duration_seconds": 20}],
    )


def table_counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                for t in ("runs", "run_usage", "run_tools", "run_phases")
            }
    finally:
        engine.dispose()


def half_stored_runs(url: str) -> int:
    """Runs whose child rows are not all there (each rich record has 2 usage, 1 tool, 2 phases)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            count: int = conn.execute(
                text(
                    "SELECT count(*) FROM runs r WHERE"
                    " (SELECT count(*) FROM run_usage u WHERE u.run_id = r.run_id) <> 2"
                    " OR (SELECT count(*) FROM run_tools t WHERE t.run_id = r.run_id) <> 1"
                    " OR (SELECT count(*) FROM run_phases p WHERE p.run_id = r.run_id) <> 2"
                )
            ).scalar_one()
            return count
    finally:
        engine.dispose()


def post_until_stored(url: str, body: Any, timeout: float = 60) -> httpx.Response:
    """What an agent's client does: retry on 503 and on connection errors until a 2xx."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.TransportError):
            response = httpx.post(f"{url}{RUNS}", json=body, timeout=10)
            if response.status_code < 500:
                assert response.status_code < 300, response.text
                return response
        if time.monotonic() > deadline:
            pytest.fail(f"no 2xx within {timeout} s")
        time.sleep(0.1)


class SteadyLoad:
    """A client thread posting one new record after another, remembering every answer."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url = url
        self.prefix = prefix
        self.answers: list[tuple[str, int, httpx.Response | None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> SteadyLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            i = 0
            while not self._stop.is_set():
                run_id = f"{self.prefix}-{i}"
                try:
                    response: httpx.Response | None = client.post(
                        f"{self.url}{RUNS}", json=rich_record(run_id)
                    )
                    status = response.status_code if response is not None else 0
                except httpx.TransportError:
                    response, status = None, 0
                self.answers.append((run_id, status, response))
                i += 1
                time.sleep(0.005)

    def count(self, status: int) -> int:
        return sum(1 for _, s, _ in list(self.answers) if s == status)


@pytest.mark.postgres
def test_postgres_stopped_mid_load_answers_503_counts_nothing_and_recovers_by_itself(
    tmp_path: Path,
) -> None:
    with private_cluster() as cluster, exporter(tmp_path, database_url=cluster.url) as server:
        with SteadyLoad(server.url, "pg") as load:
            wait_until(lambda: load.count(201) >= 30, 30, "30 runs stored before the fault")
            cluster.stop("fast")  # the fault: every session ends, new connections are refused
            wait_until(lambda: load.count(503) >= 10, 30, "the exporter to answer 503")
            ready = httpx.get(f"{server.url}/readyz", timeout=10)
            during = scrape(server.url)
            accepted_before = load.count(201)
            cluster.start()
            wait_until(
                lambda: httpx.get(f"{server.url}/readyz", timeout=10).status_code == 200, 30, "readiness"
            )
            wait_until(lambda: load.count(201) >= accepted_before + 30, 30, "runs stored after the fault")
        # the client retries what it was told to retry
        for run_id, status, _ in load.answers:
            if status != 201:
                assert post_until_stored(server.url, rich_record(run_id)).status_code == 201
        after = scrape(server.url)
        stored = table_counts(cluster.url)
        half_stored = half_stored_runs(cluster.url)

    refusals = [r for _, s, r in load.answers if s == 503 and r is not None]
    for response in refusals:
        assert response.headers["retry-after"] == "5"
        error = response.json()["error"]
        assert error["code"] == "store_unavailable"
        assert error["message"].startswith("nothing was stored: database error: ")
        assert error["message"].endswith("; retry later")
    assert {s for _, s, _ in load.answers} <= {201, 503}
    assert ready.status_code == 503
    assert ready.headers["retry-after"] == "5"
    assert ready.json()["status"] == "unavailable"
    # while the store was away, nothing was counted beyond what had been stored
    assert during.total("agent_runs_total") == during.value(
        "agent_exporter_records_total", outcome="accepted"
    )
    assert during.total("agent_runs_total") <= accepted_before
    assert (during.value("agent_exporter_store_errors_total", operation="write") or 0) >= 1
    # sent = stored = counted, each run once
    distinct = {run_id for run_id, _, _ in load.answers}
    assert stored == {
        "runs": len(distinct),
        "run_usage": 2 * len(distinct),
        "run_tools": len(distinct),
        "run_phases": 2 * len(distinct),
    }
    assert half_stored == 0
    assert after.total("agent_runs_total") == len(distinct)
    assert after.value("agent_exporter_records_total", outcome="accepted") == len(distinct)
    assert after.value("agent_exporter_records_total", outcome="duplicate") == 0
    print(
        f"\npostgres outage: {len(load.answers)} posts, {len(refusals)} answered 503, "
        f"{len(distinct)} distinct runs stored and counted"
    )


BATCHES = 40
BATCH_SIZE = 50


def batch(n: int) -> dict[str, Any]:
    return {"runs": [rich_record(f"kill-{n}-{i}") for i in range(BATCH_SIZE)]}


def post_batches(url: str, numbers: list[int], threads: int = 2) -> dict[int, httpx.Response | None]:
    """Post the batches from `threads` clients at once; None where the connection failed."""
    todo: queue.SimpleQueue[int] = queue.SimpleQueue()
    for n in numbers:
        todo.put(n)
    answers: dict[int, httpx.Response | None] = {}

    def client() -> None:
        with httpx.Client(timeout=30) as http:
            while True:
                try:
                    n = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    answers[n] = http.post(f"{url}{RUNS}", json=batch(n))
                except httpx.TransportError:
                    answers[n] = None

    workers = [threading.Thread(target=client) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    return answers


@pytest.mark.postgres
def test_sigkill_mid_batches_leaves_no_half_stored_run_and_retries_land_exactly_once(
    tmp_path: Path,
) -> None:
    with fresh_database() as url:
        first = start_exporter(tmp_path, database_url=url)
        try:

            def kill_once_some_batches_are_stored() -> None:
                wait_until(lambda: table_counts(url)["runs"] >= 8 * BATCH_SIZE, 60, "some batches stored")
                first.process.send_signal(signal.SIGKILL)

            killer = threading.Thread(target=kill_once_some_batches_are_stored)
            killer.start()
            answers = post_batches(first.url, list(range(BATCHES)))
            killer.join(60)
        finally:
            first.stop()
        assert first.process.returncode == -signal.SIGKILL
        after_kill = table_counts(url)
        half_stored_after_kill = half_stored_runs(url)

        # the client retries every batch it got no 200 for, and (a retry storm) the others too
        with exporter(tmp_path, database_url=url) as second:
            retries = post_batches(second.url, list(range(BATCHES)))
            counted = scrape(second.url)
        final = table_counts(url)
        half_stored_final = half_stored_runs(url)

    answered = [n for n, r in answers.items() if r is not None and r.status_code == 200]
    lost = BATCHES - len(answered)
    assert 0 < lost < BATCHES  # the kill did land in the middle of the batches
    assert half_stored_after_kill == 0
    assert after_kill["run_usage"] == 2 * after_kill["runs"]
    assert after_kill["run_phases"] == 2 * after_kill["runs"]
    assert after_kill["run_tools"] == after_kill["runs"]
    # whole batches or nothing: each batch is one transaction
    assert after_kill["runs"] % BATCH_SIZE == 0
    assert all(r is not None and r.status_code == 200 for r in retries.values())
    accepted_first = sum(answers[n].json()["accepted"] for n in answered)  # type: ignore[union-attr]
    accepted_second = sum(r.json()["accepted"] for r in retries.values() if r is not None)
    duplicates_second = sum(r.json()["duplicates"] for r in retries.values() if r is not None)
    assert final == {
        "runs": BATCHES * BATCH_SIZE,
        "run_usage": 2 * BATCHES * BATCH_SIZE,
        "run_tools": BATCHES * BATCH_SIZE,
        "run_phases": 2 * BATCHES * BATCH_SIZE,
    }
    assert half_stored_final == 0
    assert accepted_second == BATCHES * BATCH_SIZE - after_kill["runs"]
    assert duplicates_second == after_kill["runs"]
    assert counted.total("agent_runs_total") == accepted_second
    # a batch may have committed as the process died, before its answer left: stored, never answered
    assert accepted_first <= after_kill["runs"] <= accepted_first + 2 * BATCH_SIZE
    print(
        f"\nSIGKILL: {len(answered)}/{BATCHES} batches answered before the kill, {after_kill['runs']} runs "
        f"stored then; after the retries {final['runs']} stored, {accepted_second} counted by the new process"
    )


@pytest.fixture
def tiny_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs: a real ENOSPC, not a simulated one."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if result.returncode != 0:
        unavailable(f"cannot mount a tmpfs to fill up (needs root): {result.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(directory: Path) -> Path:
    """Fill the filesystem of `directory` to the last byte; the returned file frees it again."""
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * 4096)
    return filler


def test_a_full_disk_answers_503_naming_it_and_recovers_when_space_is_freed(
    tmp_path: Path, tiny_filesystem: Path
) -> None:
    big = [record(f"big-{i}", error_summary="x" * 4000) for i in range(100)]  # ~400 KB of pages
    with exporter(tmp_path, database_url=f"sqlite:///{tiny_filesystem / 'runs.db'}") as server:
        filler = fill(tiny_filesystem)
        refused = httpx.post(f"{server.url}{RUNS}", json={"runs": big}, timeout=30)
        ready = httpx.get(f"{server.url}/readyz", timeout=10)
        during = scrape(server.url)
        filler.unlink()
        wait_until(lambda: httpx.get(f"{server.url}/readyz").status_code == 200, 10, "readiness")
        stored = httpx.post(f"{server.url}{RUNS}", json={"runs": big}, timeout=30)
        after = scrape(server.url)

    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "5"
    assert refused.json()["error"] == {
        "code": "store_full",
        "message": "nothing was stored: the disk is full (database or disk is full); "
        "free space or move the database; retry later",
    }
    assert (ready.status_code, ready.json()["code"]) == (503, "store_full")
    assert during.total("agent_runs_total") == 0
    assert during.value("agent_exporter_records_total", outcome="accepted") == 0
    assert during.value("agent_exporter_records_total", outcome="rejected") == 0
    assert stored.json()["accepted"] == 100
    assert after.total("agent_runs_total") == 100


def test_a_read_only_database_answers_503_naming_it_and_readyz_says_so(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with exporter(tmp_path, database_url=f"sqlite:///{path}") as server:  # creates the schema
        assert httpx.post(f"{server.url}{RUNS}", json=record("kept")).status_code == 201
    read_only = start_exporter(tmp_path, database_url=f"sqlite:///file:{path}?mode=ro&uri=true", wait=False)
    try:
        wait_until(lambda: httpx.get(f"{read_only.url}/healthz").status_code == 200, 30, "the server")
        ready = httpx.get(f"{read_only.url}/readyz")
        refused = httpx.post(f"{read_only.url}{RUNS}", json={"runs": [record("a"), record("b")]})
        counted = scrape(read_only.url)
    finally:
        read_only.stop()
    message = (
        "the database is read-only (attempt to write a readonly database); "
        "check the file's permissions and the mount"
    )
    assert ready.status_code == 503
    assert ready.json() == {"status": "unavailable", "code": "store_read_only", "reason": message}
    assert refused.status_code == 503
    assert refused.json()["error"] == {
        "code": "store_read_only",
        "message": f"nothing was stored: {message}; retry later",
    }
    assert counted.total("agent_runs_total") == 0
    assert counted.value("agent_exporter_records_total", outcome="accepted") == 0
    assert "the store does not take writes: the database is read-only" in read_only.log()


def test_a_batch_over_sqlites_page_cap_answers_503_store_full_and_stores_nothing(
    tmp_path: Path, registry: CollectorRegistry
) -> None:
    """The same promise without root: SQLite's max_page_count caps the file at its current size."""
    with make_client(f"sqlite:///{tmp_path / 'capped.db'}", registry) as client:
        engine = client.app.state.service.store.engine  # type: ignore[attr-defined]

        @event.listens_for(engine, "connect")
        def _cap(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            pages = cursor.execute("PRAGMA page_count").fetchone()[0]
            cursor.execute(f"PRAGMA max_page_count={pages}")
            cursor.close()

        engine.dispose()  # new connections get the cap
        response = client.post(
            RUNS, json={"runs": [record(f"r{i}", error_summary="x" * 4000) for i in range(50)]}
        )
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "store_full"
        assert registry.get_sample_value("agent_exporter_records_total", {"outcome": "accepted"}) == 0
        assert registry.get_sample_value("agent_exporter_store_errors_total", {"operation": "write"}) == 1
        # what still fits is still taken: a small run rewrites free space in existing pages, and the
        # readiness probe (a write) passes for the same reason
        assert client.get("/readyz").json() == {"status": "ready"}
        assert client.post(RUNS, json=record("small")).status_code == 201
        assert registry.get_sample_value("agent_exporter_records_total", {"outcome": "accepted"}) == 1


@pytest.mark.postgres
def test_a_read_only_postgres_answers_503_naming_it_and_readyz_says_so(tmp_path: Path) -> None:
    with fresh_database() as url:
        with exporter(tmp_path, database_url=url):
            pass  # creates the schema
        name = url.rsplit("/", 1)[1]
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'))
        admin.dispose()
        server = start_exporter(tmp_path, database_url=url, wait=False)
        try:
            wait_until(lambda: httpx.get(f"{server.url}/healthz").status_code == 200, 30, "the server")
            ready = httpx.get(f"{server.url}/readyz")
            refused = httpx.post(f"{server.url}{RUNS}", json=record("a"))
            counted = scrape(server.url)
        finally:
            server.stop()
    assert ready.status_code == 503
    assert ready.json()["code"] == "store_read_only"
    assert ready.json()["reason"].startswith("the database is read-only (transaction_read_only is on")
    assert refused.status_code == 503
    assert refused.json()["error"] == {
        "code": "store_read_only",
        "message": "nothing was stored: the database is read-only (cannot execute CREATE TABLE in a "
        "read-only transaction); point database_url at a writable primary; retry later",
    }
    assert counted.total("agent_runs_total") == 0
