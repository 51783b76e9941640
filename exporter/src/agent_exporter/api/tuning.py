"""The serving process's interpreter settings: the garbage collector and the thread switch interval."""

from __future__ import annotations

import gc
import sys
from typing import Final

GC_THRESHOLD: Final = (50_000, 20, 10)
#: seconds a thread may hold the interpreter lock while another waits (Python's default: 0.005).
#: The writer thread gives the lock up for every SQLite statement and fsync; with the default it
#: then waits up to 5 ms to get it back from a thread validating the next request, several times
#: per transaction. 1 ms made batch ingest about a tenth faster (docs/BENCHMARKS.md).
SWITCH_INTERVAL: Final = 0.001


def settle_garbage_collector() -> None:
    """Keep the cyclic garbage collector's pauses out of the request path.

    A batch allocates thousands of short-lived containers, which with Python's default threshold
    (700) run a collection every few records; and every full collection used to walk the objects
    made at start-up (modules, the price table, SQLAlchemy's caches). Those are frozen out of the
    collector's sight, and young objects are collected seventy times less often. A batch of 1,000
    keeps some 40,000 containers alive until it is answered (its JSON, its validated records, its
    runs): at 10,000 the collector walked each of them several times, a tenth of the CPU of batch
    ingest; the middle generation is collected half as often too. The tail latency of
    single-record POSTs and the rate of batches is what this buys (docs/BENCHMARKS.md). It also
    sets the thread switch interval (`SWITCH_INTERVAL`).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)
    sys.setswitchinterval(SWITCH_INTERVAL)
