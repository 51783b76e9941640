"""The read benchmarks on stores filled beforehand, at sizes `make bench` does not fill in its run
(ten million runs take about 40 minutes to POST on 2 cores).

    python -m bench.stored fill sqlite:////data/10m.db 10000000
    python -m bench.stored reads sqlite:////data/1m.db sqlite:////data/10m.db

`fill` POSTs realistic runs ending across the last 90 days, as `make bench` does, then runs
ANALYZE. `reads` serves each store in turn with the exporter and times every read of
`suite.READS` against it (p50 and p95 wall-clock, and the CPU per request of the server and of a
PostgreSQL store's backends), one store after the other in one run, so that their figures compare;
the last column is the CPU per request on the last store over that on the first.
"""

from __future__ import annotations

import argparse
import time

from rich.console import Console
from rich.table import Table

from . import suite
from .harness import server

console = Console(stderr=True)


def fill(url: str, count: int) -> None:
    """POST `count` realistic runs ending across the last 90 days to a new store at `url`."""
    now = time.time()
    with server(database_url=url) as srv:
        rate = suite.fill(srv, count, console.log, span=(now - 90 * 86400, now - 60))
    console.log(f"{count:,} runs at {rate:,.0f}/s")
    suite.analyze(url)


def reads(urls: list[str], requests: int) -> None:
    """Time every read of `suite.READS` on each store of `urls`, one after the other."""
    found = []
    for url in urls:
        with server(database_url=url) as srv:
            found.append(suite.read_latencies(srv, requests, url if url.startswith("postgresql") else None))
        console.log(f"read {url}")
    table = Table("request", *(f"{i + 1}: p50 / p95 / CPU ms" for i in range(len(urls))), "CPU last / first")
    for name, _, _ in suite.READS:
        cells = [" / ".join(f"{v:.1f}" for v in f[name]) for f in found]
        first, last = found[0][name][2], found[-1][name][2]
        table.add_row(name, *cells, f"{last / first:.1f}×" if first else "-")
    Console(width=200).print(table)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.stored", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    filling = commands.add_parser("fill", help="POST realistic runs to a new store")
    filling.add_argument("url")
    filling.add_argument("count", type=int)
    reading = commands.add_parser("reads", help="time the read API on filled stores")
    reading.add_argument("urls", nargs="+")
    reading.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    if args.command == "fill":
        fill(args.url, args.count)
    else:
        reads(args.urls, args.requests)


if __name__ == "__main__":
    main()
