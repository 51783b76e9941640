"""What recording a run costs the agent's thread, with the exporter up and with it down.

    python exporter/bench/bench_client.py [--runs 5000] [--flood 30000] [--max-us 50] [--json]

Starts a real exporter (`agent-exporter serve` on a free loopback port, SQLite in a temporary
directory) for the "up" case; the "down" case points the client at a port nothing listens on, so
runs go to a temporary spool. Each scenario records its runs back to back, timing each one in the
thread that records it (the sender thread runs meanwhile, as in an agent), and prints the median and
the 99th percentile in nanoseconds. Scenarios:

- `context`: `with client.run(...)` around 3 LLM calls, 5 tool calls and 2 phases: a typical run
  (`--runs` of them, fewer than the client's queue holds: the usual regime).
- `record_run`: `client.record_run(...)` with a complete record (usage, tools, phases), `--runs` times.
- `flood`: `record_run` `--flood` times back to back: more than the queue holds (10,000) before the
  sender can empty it, so part of the runs are appended to the spool from the agent's thread.

The delivered and spooled columns include 1,000 warm-up runs per scenario.
Exits with status 1 when a median is above `--max-us` microseconds (the budget `make bench` checks).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from agent_exporter.client import Client


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def exporter(directory: Path) -> Iterator[str]:
    """A real exporter on a free port; yields its URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_EXPORTER_")}
    args = [sys.executable, "-m", "agent_exporter", "serve", "--port", str(port)]
    args += ["--database-url", f"sqlite:///{directory / 'bench.db'}", "--log-level", "warning"]
    with (directory / "exporter.log").open("wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise SystemExit(f"the exporter exited: {(directory / 'exporter.log').read_text()}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{url}/readyz", timeout=1) as answer,  # noqa: S310 - loopback
            ):
                if answer.status == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit("the exporter did not become ready within 60 s")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(30)


def context_run(client: Client, i: int) -> None:
    """A typical run recorded with the context manager."""
    with client.run("fixer", model="claude-sonnet-4-5", issue_type="complexity", project="payments") as run:
        for _ in range(3):
            run.llm_call(input_tokens=40_000, output_tokens=900, cache_read_tokens=30_000, cost_usd=0.05)
        for tool in ("bash", "view", "edit", "bash", "view"):
            run.tool_call(tool, duration_seconds=0.4)
        run.add_phase("plan", 12.0, "success")
        run.add_phase("test", 30.0, "success")


def record_run(client: Client, i: int) -> None:
    """A complete record handed over in one call."""
    client.record_run(
        "fixer",
        status="success",
        duration_seconds=245.3,
        model="claude-sonnet-4-5",
        issue_type="complexity",
        project="payments",
        usage=[
            {
                "model": "claude-sonnet-4-5",
                "input_tokens": 120_000,
                "output_tokens": 2_700,
                "cache_read_tokens": 90_000,
                "calls": 3,
                "cost_usd": 0.15,
            }
        ],
        tools=[{"name": "bash", "calls": 2}, {"name": "view", "calls": 2}, {"name": "edit", "calls": 1}],
        phases=[{"name": "plan", "duration_seconds": 12.0}, {"name": "test", "duration_seconds": 30.0}],
    )


#: name -> (what one run does, whether it is the flood)
SCENARIOS: dict[str, tuple[Callable[[Client, int], None], bool]] = {
    "context": (context_run, False),
    "record_run": (record_run, False),
    "flood": (record_run, True),
}


def measure(client: Client, scenario: Callable[[Client, int], None], runs: int) -> list[int]:
    """Nanoseconds each recorded run took in this thread."""
    for i in range(min(1000, runs)):  # warm-up: first imports, first allocations
        scenario(client, i)
    clock = time.perf_counter_ns
    samples = []
    for i in range(runs):
        start = clock()
        scenario(client, i)
        samples.append(clock() - start)
    return samples


def bench(url: str, spool: Path, runs: int, flood: int) -> list[dict[str, Any]]:
    """Every scenario against `url`; the client is flushed and closed after each."""
    rows = []
    for name, (scenario, is_flood) in SCENARIOS.items():
        count = flood if is_flood else runs
        if count <= 0:
            continue
        client = Client(url, spool=spool / name)
        samples = measure(client, scenario, count)
        client.close(timeout=60)
        stats = client.stats()
        samples.sort()
        rows.append(
            {
                "scenario": name,
                "runs": count,
                "median_ns": int(statistics.median(samples)),
                "p99_ns": samples[int(len(samples) * 0.99) - 1],
                "delivered": stats.delivered,
                "spooled": stats.spooled,
                "dropped": stats.dropped,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table (or JSON); 1 if a median is over budget."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5_000, help="runs of the context and record_run cases")
    parser.add_argument("--flood", type=int, default=30_000, help="runs of the flood scenario (0: skip it)")
    parser.add_argument("--max-us", type=float, default=50.0, help="budget for a median, in microseconds")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    logging.getLogger("agent_exporter.client").setLevel(logging.ERROR)  # "unreachable" is the point here
    with tempfile.TemporaryDirectory(prefix="bench-client-") as tmp:
        directory = Path(tmp)
        with exporter(directory) as url:
            up = bench(url, directory / "spool-up", args.runs, args.flood)
        down = bench(f"http://127.0.0.1:{free_port()}", directory / "spool-down", args.runs, args.flood)
        results = [{"server": "up", **row} for row in up] + [{"server": "down", **row} for row in down]
    over = [r for r in results if r["median_ns"] > args.max_us * 1000]
    if args.json:
        print(json.dumps({"budget_us": args.max_us, "results": results}, indent=2))
    else:
        print(
            f"{'server':<7}{'scenario':<12}{'runs':>7}{'median ns':>11}{'p99 ns':>10}"
            f"{'delivered':>11}{'spooled':>9}{'dropped':>9}"
        )
        for r in results:
            print(
                f"{r['server']:<7}{r['scenario']:<12}{r['runs']:>7}{r['median_ns']:>11}{r['p99_ns']:>10}"
                f"{r['delivered']:>11}{r['spooled']:>9}{r['dropped']:>9}"
            )
        verdict = "over" if over else "within"
        print(f"budget: median under {args.max_us:g} µs per recorded run: {verdict} budget")
    return 1 if over else 0


if __name__ == "__main__":
    raise SystemExit(main())
