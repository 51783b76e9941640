"""The benchmarks. Each returns plain numbers; `__main__` repeats them and writes the report."""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import Table

from agent_exporter import migrations, schema, store
from agent_exporter.pricing import PriceBook
from agent_exporter.record import Run, RunRecord, parse_record

from .harness import (
    Server,
    WrkResult,
    cpu_seconds,
    free_port,
    median,
    percentile,
    post_concurrently,
    server,
    wrk,
)
from .workloads import lua_pushgateway, lua_single_post, realistic

Progress = Callable[[str], None]
JSON = {"content-type": "application/json"}
ACCEPT = (("openmetrics", "application/openmetrics-text; version=1.0.0"), ("text", "text/plain"))


def single_posts(
    srv: Server, connections: int, seconds: float, tag: str, *, minimal: bool = False
) -> WrkResult:
    """One record per POST with `connections` concurrent connections, for `seconds`."""
    with tempfile.TemporaryDirectory() as tmp:
        script = lua_single_post(Path(tmp) / "post.lua", f"single-{tag}-{connections}", minimal=minimal)
        cpu = srv.cpu_seconds()
        result = wrk(srv.url, script, connections=connections, seconds=seconds)
        cpu = srv.cpu_seconds() - cpu
    if result.non_2xx or result.errors:
        raise RuntimeError(f"single POSTs failed: {result}")
    requests = result.requests_per_second * max(1, round(seconds))
    return dataclasses.replace(result, server_cpu_us=1e6 * cpu / requests if requests else None)


def batch_posts(
    srv: Server, batch_size: int, batches: int, tag: str, senders: int = 2
) -> tuple[float, float]:
    """Records per second for `batches` POSTs of `batch_size` records, `senders` at a time, and
    the server's CPU microseconds per record."""
    bodies = []
    records = list(realistic(f"batch-{tag}-{batch_size}", batch_size * batches))
    for start in range(0, len(records), batch_size):
        bodies.append(orjson.dumps({"runs": records[start : start + batch_size]}))
    cpu = srv.cpu_seconds()
    started = time.perf_counter()
    failures = post_concurrently(
        srv,
        "/api/v1/runs",
        bodies,
        "application/json",
        refusal=lambda r: (
            None if r.status_code == 200 and r.json()["accepted"] == batch_size else r.text[:300]
        ),
        senders=senders,
    )
    elapsed = time.perf_counter() - started
    cpu = srv.cpu_seconds() - cpu
    if failures:
        raise RuntimeError(f"batch POSTs failed: {failures[0]}")
    return batch_size * batches / elapsed, 1e6 * cpu / (batch_size * batches)


def resolved_runs(prefix: str, count: int) -> list[Run]:
    """The same records the HTTP benchmarks send, validated, resolved and priced."""
    prices = PriceBook()
    now = time.time()
    runs = []
    for body in realistic(prefix, count):
        parsed = parse_record(body, now=now, max_future_skew=300)
        assert isinstance(parsed, RunRecord)
        run = parsed.resolve(now)
        prices.price(run)
        runs.append(run)
    return runs


def _row(table: Table, item: Any, **given: Any) -> tuple[Any, ...]:
    """`item`'s values for the columns of `table` (its attributes by the columns' names, `given`
    first): enums as their values, dicts as JSON, as the store writes them."""
    values = []
    for column in table.columns:
        value = given[column.name] if column.name in given else getattr(item, column.name)
        if isinstance(value, enum.Enum):
            value = value.value
        elif isinstance(value, dict):
            value = orjson.dumps(value).decode() if value else None
        values.append(value)
    return tuple(values)


def _insert(table: Table) -> str:
    names = [c.name for c in table.columns]
    return f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"  # noqa: S608


def sqlite_floor(runs: list[Run], transaction: int = 10_000) -> float:
    """Runs per second inserted straight into the same SQLite schema with executemany.

    Same file settings as the service (WAL, synchronous FULL), same rows (runs and their
    breakdowns), large transactions, no validation, no HTTP, no rollups: what the disk and SQLite
    allow. The rows come from the schema's columns and the runs' attributes of the same names.
    """
    children = ((schema.run_usage, "usage"), (schema.run_tools, "tools"), (schema.run_phases, "phases"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "floor.db"
        with store.Store(store.StoreSettings(f"sqlite:///{path}")) as migrated:
            migrations.upgrade(migrated)
        con = sqlite3.connect(path, isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=FULL")
        started = time.perf_counter()
        for start in range(0, len(runs), transaction):
            chunk = runs[start : start + transaction]
            con.execute("BEGIN")
            con.executemany(_insert(schema.runs), [_row(schema.runs, r) for r in chunk])
            for table, parts in children:
                rows = [
                    _row(table, part, run_id=r.run_id, position=i)
                    for r in chunk
                    for i, part in enumerate(getattr(r, parts))
                ]
                con.executemany(_insert(table), rows)
            con.execute("COMMIT")
        elapsed = time.perf_counter() - started
        con.close()
    return len(runs) / elapsed


def _series(srv: Server) -> int:
    text = httpx.get(f"{srv.url}/metrics", timeout=60).text
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def _combinations(prefix: str, count: int, offset: int) -> list[dict[str, Any]]:
    # every record a new (agent, model, issue_type) combination: the series grow as fast as they can
    out = []
    for i in range(offset, offset + count):
        out.append(
            {
                "run_id": f"{prefix}-{i}",
                "agent": f"agent-{i % 40}",
                "model": f"model-{(i // 40) % 50}",
                "issue_type": f"type-{i // 2000}",
                "status": ("success", "failure")[i % 2],
                "duration_seconds": 1 + i % 600,
                "input_tokens": 10_000 + i,
                "output_tokens": 100 + i % 1000,
                "cost_usd": 0.01 * (1 + i % 300),
                "llm_calls": 1 + i % 40,
                "tool_calls": i % 90,
            }
        )
    return out


SCRAPE_CONFIG = {"metrics": {"default_label_limit": 100_000, "label_limits": {}}}


def scrape_times(srv: Server, target_series: int, scrapes: int, progress: Progress) -> dict[str, float]:
    """Milliseconds per /metrics scrape once the exposition has about `target_series` series.

    `cached`: nothing changed since the previous scrape; `changed`: 100 new runs in between.
    """
    offset = 0
    with httpx.Client(base_url=srv.url, timeout=120) as client:
        while (series := _series(srv)) < target_series:
            # a new combination adds about a hundred series: approach the target from below
            step = max(2, min(1000, (target_series - series) // 150))
            body = {"runs": _combinations(f"scrape-{target_series}", step, offset)}
            offset += step
            response = client.post("/api/v1/runs", json=body)
            if response.status_code != 200 or response.json()["accepted"] != step:
                raise RuntimeError(f"filling for the scrape benchmark failed: {response.text[:300]}")
        progress(f"scrape: {series} series")
        out: dict[str, float] = {"series": float(series)}
        for name, accept in (
            ("openmetrics", "application/openmetrics-text; version=1.0.0"),
            ("text", "text/plain"),
        ):
            cached, changed = [], []
            for _ in range(scrapes):
                started = time.perf_counter()
                client.get("/metrics", headers={"accept": accept}).raise_for_status()
                cached.append((time.perf_counter() - started) * 1000)
            for round_ in range(scrapes):
                body = {"runs": _combinations(f"dirty-{name}-{round_}", 100, 0)}
                client.post("/api/v1/runs", json=body).raise_for_status()
                started = time.perf_counter()
                client.get("/metrics", headers={"accept": accept}).raise_for_status()
                changed.append((time.perf_counter() - started) * 1000)
            out[f"{name}_cached_ms"] = median(cached)
            out[f"{name}_changed_ms"] = median(changed)
            out[f"{name}_changed_p95_ms"] = percentile(changed, 0.95)
    return out


@contextlib.contextmanager
def pushgateway() -> Iterator[str]:
    """Debian's prometheus-pushgateway on a free loopback port."""
    binary = shutil.which("prometheus-pushgateway")
    if binary is None:
        raise RuntimeError("prometheus-pushgateway is not installed")
    port = free_port()
    process = subprocess.Popen(
        [binary, f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def pushgateway_pushes(url: str, connections: int, seconds: float, tag: str) -> WrkResult:
    """Pushes per second to a Pushgateway, one group per run."""
    with tempfile.TemporaryDirectory() as tmp:
        script = lua_pushgateway(Path(tmp) / "push.lua", f"push-{tag}")
        return wrk(url, script, connections=connections, seconds=seconds)


def fill(
    srv: Server,
    count: int,
    progress: Progress,
    *,
    batch: int = 1000,
    backfill: bool = False,
    span: tuple[float, float] | None = None,
) -> float:
    """POST `count` realistic records in batches (ending across `span`, if given); records per second."""
    started = time.perf_counter()
    sent = 0
    records = realistic("fill", count, span=span)
    with httpx.Client(base_url=srv.url, timeout=300) as client:
        while sent < count:
            chunk = [r for _, r in zip(range(batch), records, strict=False)]
            response = client.post(
                "/api/v1/runs", params={"backfill": str(backfill).lower()}, json={"runs": chunk}
            )
            if response.status_code != 200 or response.json()["accepted"] != len(chunk):
                raise RuntimeError(f"fill failed: {response.text[:300]}")
            sent += len(chunk)
            if sent % 100_000 == 0:
                progress(f"filled {sent:,} runs")
    return count / (time.perf_counter() - started)


__all__ = [
    "analyze",
    "batch_posts",
    "fill",
    "page_latencies",
    "postgres_database",
    "pushgateway",
    "pushgateway_pushes",
    "read_latencies",
    "resolved_runs",
    "scrape_times",
    "server",
    "single_posts",
    "sqlite_floor",
]


#: every read the web pages make, over the ranges they offer
READS: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("/runs page", "/api/v1/runs", {"limit": "50"}),
    ("/runs deep page", "/api/v1/runs", {"limit": "50", "to": "45d"}),
    ("/runs page, one agent", "/api/v1/runs", {"limit": "50", "agent": "agent-1"}),
    ("/runs/{id}", "/api/v1/runs/fill-1000", {}),
    ("/summary, 30 days", "/api/v1/summary", {"from": "30d"}),
    ("/summary, 30 days by model", "/api/v1/summary", {"from": "30d", "group_by": "model"}),
    (
        "/summary, 30 days of one agent by status",
        "/api/v1/summary",
        {"from": "30d", "agent": "agent-1", "group_by": "status"},
    ),
    ("/summary, all runs by issue_type", "/api/v1/summary", {"group_by": "issue_type"}),
    (
        "/timeseries, 24 hours by hour by model",
        "/api/v1/timeseries",
        {"from": "24h", "bucket": "hour", "group_by": "model"},
    ),
    ("/timeseries, 7 days by hour", "/api/v1/timeseries", {"from": "7d", "bucket": "hour"}),
    (
        "/timeseries, 30 days by day by model",
        "/api/v1/timeseries",
        {"from": "30d", "bucket": "day", "group_by": "model"},
    ),
    (
        "/timeseries, 90 days by week by status",
        "/api/v1/timeseries",
        {"from": "90d", "bucket": "week", "group_by": "status"},
    ),
    ("/report, 30 days", "/api/v1/report", {"from": "30d"}),
    ("/report, all runs", "/api/v1/report", {}),
    ("/trends", "/api/v1/trends", {}),
    ("/health", "/api/v1/health", {}),
)


def read_latencies(
    srv: Server, requests: int, database_url: str | None = None
) -> dict[str, tuple[float, float, float]]:
    """(p50, p95, server CPU) milliseconds of each read of READS, `requests` times each, after one
    warm-up; the CPU is per request, of the server process and, with a PostgreSQL `database_url`,
    of the database's backends serving it: other load on the machine does not inflate it as it
    does the wall-clock time."""

    def used() -> dict[int, float]:
        found = {srv.process.pid: srv.cpu_seconds()}
        if database_url is not None:
            found.update({pid: cpu_seconds(pid) for pid in _backends(database_url)})
        return found

    out = {}
    with httpx.Client(base_url=srv.url, timeout=120) as client:
        for name, path, params in READS:
            client.get(path, params=params).raise_for_status()
            times = []
            before = used()
            for _ in range(requests):
                started = time.perf_counter()
                client.get(path, params=params).raise_for_status()
                times.append((time.perf_counter() - started) * 1000)
            cpu_ms = sum(v - before.get(pid, 0.0) for pid, v in used().items()) * 1000 / requests
            out[name] = (median(times), percentile(times, 0.95), cpu_ms)
    return out


def _backends(database_url: str) -> list[int]:
    """The process ids of the PostgreSQL backends connected to `database_url`'s database, but the
    one asking (the server runs on this machine: its backends' CPU is read from /proc)."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    with psycopg.connect(
        host=url.host, port=url.port, user=url.username, dbname=url.database, autocommit=True
    ) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return [int(pid) for (pid,) in rows]


#: the web pages timed, as a browser asks for them (the HTML holds every figure the page shows)
PAGES: tuple[tuple[str, str], ...] = (
    ("/ overview, 7 days (the default)", "/"),
    ("/ overview, 30 days", "/?from=30d"),
    ("/runs", "/runs"),
    ("/runs sorted by cost, 7 days", "/runs?from=7d&sort=-cost_usd"),
    ("/runs/{run_id}", "/runs/fill-1"),
    ("/report (30 days)", "/report"),
    ("/health", "/health"),
)


def page_latencies(srv: Server, requests: int) -> dict[str, tuple[float, float, int]]:
    """(p50, p95 milliseconds, bytes) of each page of PAGES, `requests` times each, after one warm-up."""
    out = {}
    headers = {"accept": "text/html"}
    with httpx.Client(base_url=srv.url, timeout=300, headers=headers) as client:
        for name, path in PAGES:
            size = len(client.get(path).raise_for_status().content)
            times = []
            for _ in range(requests):
                started = time.perf_counter()
                client.get(path).raise_for_status()
                times.append((time.perf_counter() - started) * 1000)
            out[name] = (median(times), percentile(times, 0.95), size)
    return out


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A database of its own on the PostgreSQL server at `admin_url`, dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"agent_exporter_bench_{time.time_ns()}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def analyze(database_url: str) -> None:
    """Refresh the planner's statistics after a bulk load, as autovacuum would after a while."""
    from sqlalchemy import create_engine, text

    engine = create_engine(store.normalize_url(database_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
    engine.dispose()
