"""Soak: a steady rate of runs for minutes against the real server: no error, flat memory, steady latency.

Not part of `make test` (the `soak` marker is deselected by default): `make soak` runs it, for
`SOAK_SECONDS` (default 300) at `SOAK_RATE` records a second (default 50), on SQLite and on the
real PostgreSQL. Like an agent fleet, the load is open-loop (a request is due at its time whether
or not the previous one has been answered) and Prometheus scrapes /metrics every 5 s meanwhile.
The figures go to docs/BENCHMARKS.md.
"""

from __future__ import annotations

import os
import queue
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from .pgcluster import fresh_database
from .scrape import scrape
from .support import ExporterProcess, exporter, record

pytestmark = pytest.mark.soak

SECONDS = float(os.environ.get("SOAK_SECONDS", "300"))
RATE = float(os.environ.get("SOAK_RATE", "50"))
WORKERS = 8
SAMPLE_EVERY = 5.0
AGENTS = ("fixer", "reviewer", "planner", "tester")
MODELS = ("claude-sonnet-4-5", "gpt-4o", "claude-haiku-4-5")
STATUSES = ("success",) * 8 + ("failure", "error")


def soak_record(i: int) -> dict[str, Any]:
    return record(
        f"soak-{i}",
        agent=AGENTS[i % len(AGENTS)],
        model=MODELS[i % len(MODELS)],
        status=STATUSES[i % len(STATUSES)],
        duration_seconds=5 + i % 600,
        input_tokens=20_000 + i % 5000,
        cache_read_tokens=10_000,
        output_tokens=2_000 + i % 700,
        llm_calls=3 + i % 20,
        tools=[{"name": "bash", "calls": 4, "errors": i % 2}, {"name": "edit", "calls": 2}],
        phases=[{"name": "plan", "duration_seconds": 2}, {"name": "edit", "duration_seconds": 3}],
    )


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def typical(results: list[tuple[float, float, int]], start: float, q: int, minute: float = 60.0) -> float:
    """The median over the 10-second windows of [start, start + minute) of each window's q-th percentile."""
    windows = []
    for begin in range(int(start), int(start + minute), 10):
        latencies = [r[1] for r in results if begin <= r[0] < begin + 10]
        if latencies:
            windows.append(percentile(latencies, q))
    return statistics.median(windows)


@pytest.fixture(params=["sqlite", "postgresql"])
def soaked(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str, ExporterProcess]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'soak.db'}"
        with exporter(tmp_path, database_url=url) as server:
            yield request.param, url, server
    else:
        with fresh_database() as url, exporter(tmp_path, database_url=url) as server:
            yield request.param, url, server


def test_a_steady_rate_for_minutes_keeps_memory_flat_and_latency_steady(
    soaked: tuple[str, str, ExporterProcess],
) -> None:
    backend, url, server = soaked
    due: queue.SimpleQueue[tuple[int, float] | None] = queue.SimpleQueue()
    results: list[tuple[float, float, int]] = []  # (sent at, seconds, status)
    lock = threading.Lock()

    def worker() -> None:
        with httpx.Client(timeout=30) as http:
            while (item := due.get()) is not None:
                i, at = item
                start = time.monotonic()
                try:
                    status = http.post(f"{server.url}/api/v1/runs", json=soak_record(i)).status_code
                except httpx.HTTPError:
                    status = 0
                with lock:
                    results.append((at, time.monotonic() - start, status))

    workers = [threading.Thread(target=worker, daemon=True) for _ in range(WORKERS)]
    for w in workers:
        w.start()
    t0 = time.monotonic()
    total = int(SECONDS * RATE)
    samples: list[tuple[float, int]] = [(0.0, rss_bytes(server.process.pid))]
    scrape_seconds: list[float] = []
    next_sample = SAMPLE_EVERY
    for i in range(total):
        at = i / RATE
        while (now := time.monotonic() - t0) < at:
            if now >= next_sample:
                samples.append((now, rss_bytes(server.process.pid)))
                start = time.monotonic()  # the request only: parsing the text is the client's cost
                assert httpx.get(f"{server.url}/metrics", timeout=30).status_code == 200
                scrape_seconds.append(time.monotonic() - start)
                next_sample += SAMPLE_EVERY
            time.sleep(min(at - now, 0.01))
        due.put((i, at))
    for _ in workers:
        due.put(None)
    for w in workers:
        w.join(60)
    elapsed = time.monotonic() - t0
    samples.append((elapsed, rss_bytes(server.process.pid)))
    counted = scrape(server.url)
    engine = create_engine(url)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM runs")).scalar_one()
    engine.dispose()

    errors = [r for r in results if r[2] != 201]
    latencies = [r[1] for r in results]
    window = 60.0 if SECONDS >= 180 else SECONDS / 3
    warm_rss = next(rss for t, rss in samples if t >= min(30.0, SECONDS / 5))
    end_rss = samples[-1][1]
    summary = {
        "backend": backend,
        "seconds": round(elapsed, 1),
        "rate": RATE,
        "requests": len(results),
        "errors": len(errors),
        "stored": stored,
        "counted": counted.total("agent_runs_total"),
        "p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "p99_ms": round(percentile(latencies, 99) * 1000, 1),
        "first_minute_p95_ms": round(typical(results, window / 2, 95, window) * 1000, 1),
        "last_minute_p95_ms": round(typical(results, SECONDS - window, 95, window) * 1000, 1),
        "first_minute_p50_ms": round(typical(results, window / 2, 50, window) * 1000, 1),
        "last_minute_p50_ms": round(typical(results, SECONDS - window, 50, window) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1),
        "scrape_p99_ms": round(percentile(scrape_seconds, 99) * 1000, 1),
        "rss_start_mb": round(samples[0][1] / 2**20, 1),
        "rss_warm_mb": round(warm_rss / 2**20, 1),
        "rss_end_mb": round(end_rss / 2**20, 1),
        "rss_max_mb": round(max(r for _, r in samples) / 2**20, 1),
    }
    print(f"\nsoak {summary}")

    assert errors == []
    assert len(results) == total == stored == counted.total("agent_runs_total")
    # memory flat: after warm-up, growth stays under 10% (or 10 MiB, whichever is more)
    assert end_rss - warm_rss <= max(10 * 2**20, warm_rss // 10), summary
    # latency steady: the last minute is not slower than the first one after warm-up. Judged on
    # the typical 10-second window, because on a shared 2-core machine a neighbour's burst owns
    # the tail of whichever minute it falls in; a slowdown that grows with the data shows in all.
    early, late = window / 2, SECONDS - window
    first_p95, last_p95 = typical(results, early, 95, window), typical(results, late, 95, window)
    first_p50, last_p50 = typical(results, early, 50, window), typical(results, late, 50, window)
    assert last_p95 <= max(2 * first_p95, 0.025), summary
    assert last_p50 <= max(2 * first_p50, 0.01), summary
