"""`make bench`: measure the exporter on this machine and write docs/BENCHMARKS.md.

    python -m bench                 # everything, medians of 3 repeats (about 40 minutes)
    python -m bench --quick         # short runs, one repeat: checks the suite works
    python -m bench --only ingest,scrape --output /tmp/b.md

Every figure is a median of repeated runs; ratios compare numbers measured in the same run, since
the machine is shared and absolute numbers move with its load.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from . import otlp, suite
from .harness import REPO, machine, median

console = Console(stderr=True)
SECTIONS = ("ingest", "batch", "otlp", "scrape", "reads", "web", "client", "pushgateway", "soak")
PG_ADMIN_URL = os.environ.get(
    "AGENT_EXPORTER_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@dataclass
class Report:
    """What the run measured, as Markdown sections."""

    quick: bool
    sections: list[str] = field(default_factory=list)
    verdicts: list[tuple[str, str, str, bool]] = field(default_factory=list)  # target, measured, bound, met
    steady_rss: float | None = None  # after the single-POST benchmarks

    def table(self, title: str, intro: str, header: list[str], rows: list[list[str]]) -> None:
        """Add a section with a table."""
        lines = [f"## {title}", "", intro, "", "| " + " | ".join(header) + " |"]
        lines.append("|" + "|".join("---" for _ in header) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        self.sections.append("\n".join(lines))

    def verdict(self, target: str, measured: str, bound: str, met: bool) -> None:
        """Record a target and whether this run met it."""
        self.verdicts.append((target, measured, bound, met))

    def markdown(self) -> str:
        """The whole document."""
        facts = machine()
        head = [
            "# Benchmarks",
            "",
            "Written by `make bench` (`exporter/bench/`); every figure is the median of repeated runs "
            "on a real server on loopback. The machine is shared: compare ratios measured in one run.",
            "",
            "| machine | |",
            "|---|---|",
            *[f"| {k} | {v} |" for k, v in facts.items()],
            f"| mode | {'quick (one short repeat: not for comparison)' if self.quick else 'full'} |",
            "",
            "## Targets",
            "",
            "| target | measured | bound by | met |",
            "|---|---|---|---|",
            *[f"| {t} | {m} | {b} | {'yes' if ok else '**no**'} |" for t, m, b, ok in self.verdicts],
        ]
        return "\n".join(head) + "\n\n" + "\n\n".join(self.sections) + "\n"


def _ingest(report: Report, repeats: int, seconds: float) -> None:
    rows = []
    with suite.server() as srv:
        for minimal, connections in ((False, 1), (False, 16), (False, 64), (True, 16)):
            results = [
                suite.single_posts(
                    srv, connections, seconds, f"{connections}-{r}-{time.time_ns()}", minimal=minimal
                )
                for r in range(repeats)
            ]
            rps = median([r.requests_per_second for r in results])
            p50 = median([r.p50_ms for r in results])
            p99 = median([r.p99_ms for r in results])
            cpu = median([r.server_cpu_us or 0.0 for r in results])
            kind = "minimal" if minimal else "realistic"
            rows.append([kind, str(connections), f"{rps:,.0f}", f"{p50:.2f}", f"{p99:.2f}", f"{cpu:.0f}"])
            console.log(
                f"single POSTs, {kind}, {connections} connections: {rps:,.0f}/s, p99 {p99:.2f} ms, "
                f"{cpu:.0f} µs server CPU a request"
            )
            if connections == 16:
                report.verdict(
                    f"single POSTs ({kind} record) at 16 connections: ≥ 2,000 records/s, p99 < 25 ms",
                    f"{rps:,.0f}/s, p99 {p99:.1f} ms",
                    f"one Python process: {cpu:.0f} µs of server CPU a request (HTTP, validation, the "
                    "commit, the metrics), mostly under one interpreter lock, and the commit's fsync",
                    rps >= 2000 and p99 < 25,
                )
        report.steady_rss = srv.rss_mb()
    report.table(
        "Ingest: single-record POSTs",
        f"wrk with {seconds:g} s per run and a new run_id per POST, SQLite store (WAL, synchronous FULL: "
        "every 2xx is on disk). *realistic*: a run of the shared dataset with its 7 tools and 4 phases "
        "(12 rows stored); *minimal*: status, duration, model, tokens and cost (1 row). Server CPU: user "
        "and system time of the server process (all its threads) over the run, per request. Resident memory "
        f"of the server at the end, the steady state under this load: {report.steady_rss:.0f} MB.",
        ["record", "connections", "records/s", "p50 ms", "p99 ms", "server CPU µs/request"],
        rows,
    )


def _batch(report: Report, repeats: int, records: int) -> None:
    rows = []
    rates: dict[int, float] = {}
    cpus: dict[int, float] = {}
    with suite.server() as srv:
        for size in (100, 1000):
            batches = max(1, records // size)
            runs = [suite.batch_posts(srv, size, batches, f"{r}-{time.time_ns()}") for r in range(repeats)]
            rate, cpu = median([r for r, _ in runs]), median([c for _, c in runs])
            rates[size], cpus[size] = rate, cpu
            rows.append([f"POST of {size:,}", f"{rate:,.0f}", f"{cpu:.0f}"])
            console.log(f"batches of {size}: {rate:,.0f} records/s, {cpu:.0f} µs server CPU a record")
    floor_runs = suite.resolved_runs("floor", records)
    floor = median([suite.sqlite_floor(floor_runs) for _ in range(repeats)])
    console.log(f"SQLite floor: {floor:,.0f} runs/s")
    rows.append(["SQLite floor: executemany, 10k-run transactions", f"{floor:,.0f}", f"{1e6 / floor:.0f}"])
    ratio = rates[1000] / floor
    report.table(
        "Ingest: batches and the store's floor",
        f"{records:,} realistic records per run, two senders. The floor inserts the same rows (runs, tools, "
        "phases) into the same schema with the same settings straight through sqlite3, with no HTTP, "
        "validation, metrics or rollups: batch ingest of 1,000 (which keeps the rollups in the same "
        f"transactions) is **{ratio:.2f}×** the floor. CPU: the server process's user and system time per "
        "record (for the floor, the wall time per run of its one thread).",
        ["workload", "records/s", "CPU µs/record"],
        rows,
    )
    report.verdict(
        "batch ingest ≥ 0.5× the raw SQLite floor",
        f"{ratio:.2f}× ({rates[1000]:,.0f} vs {floor:,.0f} runs/s)",
        f"{cpus[1000]:.0f} µs of server CPU a record against {1e6 / floor:.0f} µs a run for SQLite alone: "
        "HTTP, validation, hashing, counting and the rollup cells in Python, mostly under one interpreter "
        "lock",
        ratio >= 0.5,
    )


def _otlp(report: Report, repeats: int, traces: int) -> None:
    config = {"otlp": {"grace_seconds": otlp.GRACE_SECONDS}}
    with suite.server(config=config) as srv:
        results = [otlp.ingest(srv, traces, f"{r}-{time.time_ns()}") for r in range(repeats)]
        batch = [
            suite.batch_posts(srv, 100, max(1, traces // 100), f"otlp-{r}-{time.time_ns()}")
            for r in range(repeats)
        ]
        rss = srv.rss_mb()
    runs = median([r.runs_per_second for r in results])
    spans = median([r.spans_per_second for r in results])
    answered = median([traces / r.answered_seconds for r in results])
    cpu = median([r.cpu_us_per_run for r in results])
    json_rate, json_cpu = median([r for r, _ in batch]), median([c for _, c in batch])
    console.log(
        f"OTLP: {runs:,.0f} runs/s ({spans:,.0f} spans/s) stored and counted; JSON: {json_rate:,.0f}/s"
    )
    report.table(
        "Ingest: OTLP traces beside the JSON API",
        f"{traces:,} traces of one `invoke_agent`, five `chat` and three `execute_tool` spans, as protobuf "
        f"in requests of {otlp.TRACES_PER_REQUEST} traces, two senders, SQLite store; timed until every run "
        f"is stored and counted on `/metrics` (grace period {otlp.GRACE_SECONDS:g} s), not until the "
        "requests are answered. Beside it, the same server takes realistic run records in JSON batches of "
        f"100. Resident memory of the server at the end: {rss:.0f} MB.",
        ["workload", "runs/s", "spans/s", "server CPU µs/run"],
        [
            ["OTLP, stored and counted", f"{runs:,.0f}", f"{spans:,.0f}", f"{cpu:.0f}"],
            [
                "OTLP, requests answered (spans held)",
                f"{answered:,.0f}",
                f"{answered * otlp.SPANS_PER_TRACE:,.0f}",
                "",
            ],
            ["JSON API, batches of 100", f"{json_rate:,.0f}", "", f"{json_cpu:.0f}"],
        ],
    )
    report.verdict(
        "OTLP ingest ≥ 1,000 runs/s (9,000 spans/s), stored and counted",
        f"{runs:,.0f} runs/s, {spans:,.0f} spans/s, {rss:.0f} MB",
        f"{cpu:.0f} µs of server CPU a run: decoding, holding the spans (one write a request), the mapping, "
        "the run's own write and the deletion of its spans",
        runs >= 1000,
    )


def _scrape(report: Report, repeats: int) -> None:
    rows = []
    for target in (1_000, 10_000, 50_000):
        with suite.server(config=suite.SCRAPE_CONFIG) as srv:
            result = suite.scrape_times(srv, target, max(5, 10 * repeats), console.log)
        rows.append(
            [
                f"{result['series']:,.0f}",
                f"{result['openmetrics_cached_ms']:.1f}",
                f"{result['openmetrics_changed_ms']:.1f}",
                f"{result['openmetrics_changed_p95_ms']:.1f}",
                f"{result['text_changed_ms']:.1f}",
            ]
        )
        console.log(f"scrape at {result['series']:,.0f} series: {result['openmetrics_changed_ms']:.1f} ms")
        limit = {1_000: None, 10_000: 100.0, 50_000: 500.0}[target]
        if limit is not None:
            report.verdict(
                f"scrape at {target:,} series < {limit:.0f} ms",
                f"{result['openmetrics_changed_ms']:.1f} ms (OpenMetrics, 100 runs since the last scrape)",
                "bytes on loopback; rendering is cached per series",
                result["openmetrics_changed_ms"] < limit,
            )
    report.table(
        "Scrape",
        "Milliseconds for GET /metrics, client side. *cached*: nothing changed since the previous scrape; "
        "*changed*: 100 runs (new label combinations) stored in between, the steady state under load.",
        ["series", "OpenMetrics cached", "OpenMetrics changed", "changed p95", "text changed"],
        rows,
    )


def _reads(report: Report, runs: int, requests: int, pg_admin_url: str) -> None:
    """Fill a server with runs over 90 days, then time the read API: at a tenth of `runs` and at
    `runs`, on SQLite, then PostgreSQL."""
    now = time.time()
    span = (now - 90 * 86400, now - 60)
    sizes = (runs // 10, runs)
    rows: list[list[str]] = []
    latencies: dict[tuple[str, int], dict[str, tuple[float, float, float]]] = {}
    for backend in ("SQLite", "PostgreSQL"):
        for size in sizes:
            with contextlib.ExitStack() as stack:
                url = (
                    None
                    if backend == "SQLite"
                    else stack.enter_context(suite.postgres_database(pg_admin_url))
                )
                srv = stack.enter_context(suite.server(database_url=url))
                idle = srv.rss_mb()
                rate = suite.fill(srv, size, console.log, span=span)
                after = srv.rss_mb()
                console.log(f"{backend}: {size:,} runs at {rate:,.0f}/s; RSS {idle:.0f} → {after:.0f} MB")
                suite.analyze(url or f"sqlite:///{srv.workdir / 'bench.db'}")
                latencies[(backend, size)] = suite.read_latencies(srv, requests, url)
                rows.append([backend, f"{size:,}", f"{rate:,.0f}", f"{idle:.0f}", f"{after:.0f}"])
                if backend == "SQLite" and size == runs:
                    report.verdict(
                        f"memory < 300 MB after {runs:,} runs",
                        f"{after:.0f} MB",
                        "label caps bound the series; the runs live in the store, not in memory",
                        after < 300,
                    )
    report.table(
        "Memory, and filling the store",
        "Realistic runs (tools and phases) ending across 90 days, POSTed in batches of 1,000 and counted, "
        "the rollups kept in the same transactions; resident set size of the server process before and "
        "after.",
        ["store", "runs", "runs/s", "RSS idle MB", "RSS after MB"],
        rows,
    )
    small, large = sizes
    table = []
    worst: dict[str, tuple[float, str]] = {}
    growth: dict[str, tuple[float, str]] = {}
    for name, _, _ in suite.READS:
        cells = [name]
        for backend in ("SQLite", "PostgreSQL"):
            (_, _, cpu_small), (p50, p95, cpu) = (
                latencies[(backend, small)][name],
                latencies[(backend, large)][name],
            )
            ratio = cpu / cpu_small if cpu_small else 1.0
            cells += [f"{p50:.1f}", f"{p95:.1f}", f"{cpu:.1f}", f"{ratio:.1f}×"]
            if p95 > worst.get(backend, (0.0, ""))[0]:
                worst[backend] = (p95, name)
            if ratio > growth.get(backend, (0.0, ""))[0]:
                growth[backend] = (ratio, name)
        table.append(cells)
    report.table(
        f"Read API with {large:,} runs",
        f"Milliseconds per request, client side, {requests} requests each after one warm-up; ANALYZE run "
        "after the load, as the database's own maintenance would. Figures over time ranges are read from the "
        "rollups (whole weeks and days, the hours at the range's ends, its partial hours from five-minute "
        "edge cells, and under five minutes at each end from the runs); run lists are keyset pages. "
        "*CPU*: the server's CPU milliseconds per request. "
        f"*10×*: the CPU per request at {large:,} runs over that at {small:,} runs (the cost of a read; "
        "unlike the wall-clock time, other load on a shared machine does not inflate it).",
        [
            "request",
            "SQLite p50",
            "SQLite p95",
            "SQLite CPU",
            "SQLite 10×",
            "PostgreSQL p50",
            "PostgreSQL p95",
            "PostgreSQL CPU",
            "PostgreSQL 10×",
        ],
        table,
    )
    for backend in ("SQLite", "PostgreSQL"):
        p95, name = worst[backend]
        report.verdict(
            f"every read of the web pages p95 < 100 ms on {backend} with {large:,} runs",
            f"{p95:.1f} ms (the slowest: {name})",
            "rollup cells per hour and day: a read costs what its cells cost",
            p95 < 100,
        )
        ratio, name = growth[backend]
        report.verdict(
            f"a read's cost at 10× the runs within 2× on {backend}",
            f"{ratio:.1f}× (the most: {name})",
            "the cells of a range grow with the combinations of dimensions, not with the runs",
            ratio <= 2,
        )


def _web(report: Report, runs: int, requests: int) -> None:
    """Fill a SQLite server with `runs` runs over 90 days, then time each web page as a browser asks."""
    now = time.time()
    with suite.server() as srv:
        rate = suite.fill(srv, runs, console.log, span=(now - 90 * 86400, now - 60))
        console.log(f"web: {runs:,} runs at {rate:,.0f}/s")
        suite.analyze(f"sqlite:///{srv.workdir / 'bench.db'}")
        pages = suite.page_latencies(srv, requests)
    rows = [[name, f"{p50:.0f}", f"{p95:.0f}", f"{kb / 1024:.0f}"] for name, (p50, p95, kb) in pages.items()]
    report.table(
        f"Web pages with {runs:,} runs (SQLite)",
        f"Milliseconds per page load, client side, {requests} requests each after one warm-up, of the HTML a "
        "browser gets (every figure, chart and table of the page is in it; the stylesheet and script are "
        "static files of a few kilobytes, cached). A page's time is the sum of the read API queries it makes "
        "(docs/web.md lists them).",
        ["page", "p50 ms", "p95 ms", "HTML KB"],
        rows,
    )
    for name, (_, p95, _) in pages.items():
        report.verdict(
            f"web page {name}: p95 < 300 ms on SQLite with {runs:,} runs",
            f"{p95:.0f} ms",
            "the read API queries the page makes (docs/web.md)",
            p95 < 300,
        )


def _client(report: Report, runs: int) -> None:
    """The agent-thread cost of recording a run (exporter/bench/bench_client.py)."""
    script = Path(__file__).with_name("bench_client.py")
    out = subprocess.run(
        [sys.executable, str(script), "--runs", str(runs), "--flood", str(runs * 6), "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    if not out.stdout.strip():
        raise RuntimeError(f"bench_client.py printed nothing:\n{out.stderr}")
    results = json.loads(out.stdout)["results"]
    rows = []
    for r in results:
        rows.append([r["scenario"], r["server"], f"{r['median_ns'] / 1000:.1f}", f"{r['p99_ns'] / 1000:.1f}"])
    console.log("client: " + ", ".join(f"{r[0]}/{r[1]} {r[2]} µs" for r in rows))
    report.table(
        "Client SDK: cost in the agent's thread",
        "Time in the thread that records a run (the sender thread runs meanwhile), with the exporter up "
        "and with it unreachable (runs go to the spool). *flood* records more runs back to back than the "
        "queue holds, so part of them are written to the spool from the agent's thread.",
        ["scenario", "exporter", "median µs", "p99 µs"],
        rows,
    )
    typical = max(float(r[2]) for r in rows if r[0] != "flood")
    report.verdict(
        "client < 50 µs per recorded run in the agent's thread",
        f"{typical:.1f} µs (worst median of the usual scenarios)",
        "building the record; delivery happens in a background thread",
        typical < 50,
    )


SOAK_INTRO = (
    "`tests/test_soak.py` (marker `soak`, also `make soak`) runs the real server on loopback for the "
    "given duration, once on SQLite and once on PostgreSQL. The load is open-loop, like an agent fleet: "
    "each POST of one record (2 tools, 2 phases, tokens, status mixed 80/10/10 success/failure/error over "
    "4 agents and 3 models) is due at its time whether or not the previous one was answered, from 8 client "
    "threads, while /metrics is scraped every 5 s. The test fails on any non-2xx; on stored or counted "
    "differing from sent; on RSS growing after the first 30 s by more than 10 % (or 10 MiB); or on the "
    "last minute's typical 10-second window being more than twice as slow as the first one's."
)


def _soak(report: Report, seconds: int, rate: int) -> None:
    """The soak test (tests/test_soak.py), with its figures parsed from what it prints."""
    env = {**os.environ, "SOAK_SECONDS": str(seconds), "SOAK_RATE": str(rate)}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-m",
            "soak",
            "-s",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/test_soak.py",
        ],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=Path(__file__).resolve().parents[1],
        timeout=4 * seconds + 600,
    )
    runs = [
        ast.literal_eval(line.removeprefix("soak "))
        for line in out.stdout.splitlines()
        if line.startswith("soak {")
    ]
    if not runs:
        raise RuntimeError(f"the soak test printed no figures:\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
    rows = [
        [
            r["backend"],
            f"{r['seconds']:.0f} s",
            f"{r['rate']:.0f}/s",
            f"{r['requests']:,}",
            str(r["errors"]),
            f"{r['stored']:,} = {r['counted']:,.0f}",
            f"{r['p50_ms']:.1f}",
            f"{r['p99_ms']:.1f}",
            f"{r['first_minute_p95_ms']:.1f} → {r['last_minute_p95_ms']:.1f}",
            f"{r['scrape_p99_ms']:.0f}",
            f"{r['rss_start_mb']:.0f} → {r['rss_warm_mb']:.0f} → {r['rss_end_mb']:.0f}",
        ]
        for r in runs
    ]
    console.log("soak: " + ", ".join(f"{r[0]} p99 {r[7]} ms, RSS {r[10]} MB" for r in rows))
    report.table(
        "Soak",
        SOAK_INTRO,
        [
            "store",
            "duration",
            "rate",
            "requests",
            "errors",
            "stored = counted",
            "p50 ms",
            "p99 ms",
            "p95 first → last minute",
            "/metrics p99 ms",
            "RSS start → 30 s → end MB",
        ],
        rows,
    )
    report.verdict(
        f"soak: {seconds} s at {rate}/s with no error, flat memory, steady latency",
        "passed" if out.returncode == 0 else f"failed (exit {out.returncode})",
        "see the Soak section",
        out.returncode == 0,
    )


def _pushgateway(report: Report, repeats: int, seconds: float) -> None:
    with suite.pushgateway() as url:
        results = [
            suite.pushgateway_pushes(url, 16, seconds, f"{r}-{time.time_ns()}") for r in range(repeats)
        ]
    rps = median([r.requests_per_second for r in results])
    p99 = median([r.p99_ms for r in results])
    console.log(f"pushgateway: {rps:,.0f} pushes/s, p99 {p99:.2f} ms")
    report.table(
        "Peer: Prometheus Pushgateway",
        "Debian's prometheus-pushgateway receiving the same runs as pushes (one group per run: a push "
        "replaces a group, the Pushgateway cannot add to a counter), wrk with 16 connections. It keeps every "
        "group in memory and forever, and it has no store, no validation, no deduplication.",
        ["connections", "pushes/s", "p50 ms", "p99 ms"],
        [["16", f"{rps:,.0f}", f"{median([r.p50_ms for r in results]):.2f}", f"{p99:.2f}"]],
    )


def main(argv: list[str] | None = None) -> int:
    """Run the chosen benchmarks and write the report."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs, one repeat")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated: {','.join(SECTIONS)}")
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "BENCHMARKS.md")
    parser.add_argument("--million", type=int, default=1_000_000, help="runs stored for the read benchmarks")
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(chosen) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    repeats, seconds, records = (1, 3.0, 5_000) if args.quick else (3, 10.0, 50_000)
    report = Report(quick=args.quick)
    stored_runs = 20_000 if args.quick else args.million
    steps: dict[str, Callable[[], None]] = {
        "ingest": lambda: _ingest(report, repeats, seconds),
        "batch": lambda: _batch(report, repeats, records),
        "otlp": lambda: _otlp(report, repeats, 2_000 if args.quick else 20_000),
        "scrape": lambda: _scrape(report, repeats),
        "reads": lambda: _reads(report, stored_runs, 5 if args.quick else 30, PG_ADMIN_URL),
        "web": lambda: _web(report, stored_runs, 5 if args.quick else 30),
        "client": lambda: _client(report, 1_000 if args.quick else 5_000),
        "pushgateway": lambda: _pushgateway(report, repeats, seconds),
        "soak": lambda: _soak(report, 30 if args.quick else 300, 50),
    }
    for name in SECTIONS:
        if name in chosen:
            console.rule(name)
            steps[name]()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report.markdown())
    console.log(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
