"""`make bench`: measure the exporter on this machine and write docs/BENCHMARKS.md.

    python -m bench                 # everything, medians of 3 repeats (about 15 minutes)
    python -m bench --quick         # short runs, one repeat: checks the suite works
    python -m bench --only ingest,scrape --output /tmp/b.md

Every figure is a median of repeated runs; ratios compare numbers measured in the same run, since
the machine is shared and absolute numbers move with its load.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from . import suite
from .harness import REPO, machine, median

console = Console(stderr=True)
SECTIONS = ("ingest", "batch", "scrape", "memory", "pushgateway")


@dataclass
class Report:
    """What the run measured, as Markdown sections."""

    quick: bool
    sections: list[str] = field(default_factory=list)
    verdicts: list[tuple[str, str, str, bool]] = field(default_factory=list)  # target, measured, bound, met

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
        for connections in (1, 16, 64):
            results = [
                suite.single_posts(srv, connections, seconds, f"{connections}-{r}-{time.time_ns()}")
                for r in range(repeats)
            ]
            rps = median([r.requests_per_second for r in results])
            p50 = median([r.p50_ms for r in results])
            p99 = median([r.p99_ms for r in results])
            rows.append([str(connections), f"{rps:,.0f}", f"{p50:.2f}", f"{p99:.2f}"])
            console.log(
                f"single POSTs, {connections} connections: {rps:,.0f}/s, p50 {p50:.2f} ms, p99 {p99:.2f} ms"
            )
            if connections == 16:
                report.verdict(
                    "single POSTs at 16 connections: ≥ 2,000 records/s, p99 < 25 ms",
                    f"{rps:,.0f}/s, p99 {p99:.1f} ms",
                    "one Python process: HTTP parsing, validation and the commit share one core",
                    rps >= 2000 and p99 < 25,
                )
        report.steady_rss = srv.rss_mb()  # type: ignore[attr-defined]
    report.table(
        "Ingest: single-record POSTs",
        f"wrk with {seconds:g} s per run, one realistic record (tools and phases) per POST, SQLite store "
        "(WAL, synchronous FULL: every 2xx is on disk).",
        ["connections", "records/s", "p50 ms", "p99 ms"],
        rows,
    )


def _batch(report: Report, repeats: int, records: int) -> None:
    rows = []
    rates: dict[int, float] = {}
    with suite.server() as srv:
        for size in (100, 1000):
            batches = max(1, records // size)
            rate = median(
                [suite.batch_posts(srv, size, batches, f"{r}-{time.time_ns()}") for r in range(repeats)]
            )
            rates[size] = rate
            rows.append([f"POST of {size:,}", f"{rate:,.0f}"])
            console.log(f"batches of {size}: {rate:,.0f} records/s")
    floor_runs = suite.resolved_runs("floor", records)
    floor = median([suite.sqlite_floor(floor_runs) for _ in range(repeats)])
    console.log(f"SQLite floor: {floor:,.0f} runs/s")
    rows.append(["SQLite floor: executemany, 10k-run transactions", f"{floor:,.0f}"])
    ratio = rates[1000] / floor
    report.table(
        "Ingest: batches and the store's floor",
        f"{records:,} realistic records per run, two senders. The floor inserts the same rows (runs, tools, "
        "phases) into the same schema with the same settings straight through sqlite3, with no HTTP, "
        f"validation or metrics. Batch ingest of 1,000 is **{ratio:.2f}×** the floor.",
        ["workload", "records/s"],
        rows,
    )
    report.verdict(
        "batch ingest ≥ 0.5× the raw SQLite floor",
        f"{ratio:.2f}× ({rates[1000]:,.0f} vs {floor:,.0f} runs/s)",
        "validation and counting in Python, per record",
        ratio >= 0.5,
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


def _memory(report: Report, runs: int) -> None:
    with suite.server() as srv:
        idle = srv.rss_mb()
        rate = suite.fill(srv, runs, console.log)
        after = srv.rss_mb()
    console.log(f"RSS {idle:.0f} MB idle, {after:.0f} MB after {runs:,} runs ({rate:,.0f} runs/s)")
    steady = getattr(report, "steady_rss", None)
    rows = [["idle, after start-up", f"{idle:.0f}"]]
    if steady is not None:
        rows.append(["after the single-POST benchmarks", f"{steady:.0f}"])
    rows.append([f"after {runs:,} runs (batches of 1,000 at {rate:,.0f} runs/s)", f"{after:.0f}"])
    report.table("Memory", "Resident set size of the server process.", ["when", "RSS MB"], rows)
    report.verdict(
        f"memory < 300 MB after {runs:,} runs",
        f"{after:.0f} MB",
        "label caps bound the series; runs live in the store, not in memory",
        after < 300,
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
    parser.add_argument("--million", type=int, default=1_000_000, help="runs for the memory benchmark")
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(chosen) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    repeats, seconds, records = (1, 3.0, 5_000) if args.quick else (3, 10.0, 50_000)
    report = Report(quick=args.quick)
    steps: dict[str, Callable[[], None]] = {
        "ingest": lambda: _ingest(report, repeats, seconds),
        "batch": lambda: _batch(report, repeats, records),
        "scrape": lambda: _scrape(report, repeats),
        "memory": lambda: _memory(report, 20_000 if args.quick else args.million),
        "pushgateway": lambda: _pushgateway(report, repeats, seconds),
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
