"""From a request body to stored and counted runs.

`Ingest.handle` judges each record of a body on its own (one bad record never drops the good ones),
prices the valid ones and hands them to the `Writer`. The writer is one thread that commits whatever
runs arrived together in one transaction (group commit) and only then counts them: a run is stored
and counted once, in that order, and a 2xx means its transaction committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from .metrics import Metrics
from .outcome import Outcome
from .pricing import PriceBook
from .record import FieldError, Run, parse_record, unknown_fields
from .store import Store, StoreError

log = logging.getLogger(__name__)

# runs committed in one transaction at most: a large request has one to itself, so that its SQLite
# work (without the interpreter lock) overlaps the validation of the next one
MAX_GROUP_RUNS: Final = 1000
INLINE_RECORDS: Final = 64  # larger requests are validated in a worker thread
INLINE_COUNT: Final = 64  # larger committed groups are counted by a thread of their own


class _LoopWaiter:
    """A job's outcome for a coroutine waiting on its event loop: settled there, with one
    `call_soon_threadsafe`, without a `concurrent.futures.Future` (and its condition) in between."""

    __slots__ = ("future", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.future: asyncio.Future[list[Outcome]] = loop.create_future()

    def set_result(self, result: list[Outcome]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
            self.loop.call_soon_threadsafe(_settle, self.future, result, None)

    def set_exception(self, exception: BaseException) -> None:
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(_settle, self.future, None, exception)


def _settle(
    future: asyncio.Future[list[Outcome]], result: list[Outcome] | None, exc: BaseException | None
) -> None:
    if future.cancelled():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        assert result is not None
        future.set_result(result)


@dataclass(slots=True)
class _Job:
    runs: Sequence[Run]
    future: _LoopWaiter
    count: bool  # False for backfills: stored, not counted in the agent metrics


_Counted = tuple[list[_Job], list[Outcome]]


class Writer:
    """One thread that stores runs, a transaction per group of requests that arrived together.

    A committed group is counted in the metrics, then its requests are answered. Small groups are
    counted by the writer itself; a large one is handed to a second thread, so that the writer
    starts on the next transaction (whose SQLite work runs without the interpreter lock) while
    the previous one is counted. Either way, a run is counted after its commit and before its
    request is answered, and groups are counted in the order they committed.
    """

    def __init__(self, store: Store, metrics: Metrics) -> None:
        self._store = store
        self._metrics = metrics
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._counting: queue.SimpleQueue[_Counted | None] = queue.SimpleQueue()
        self._handed = 0  # groups handed to the counting thread and not counted yet
        self._handed_lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="agent-exporter-writer", daemon=True)
        self._counter = threading.Thread(target=self._count_loop, name="agent-exporter-counter", daemon=True)
        self._closed = False
        self.last_error: StoreError | None = None  # of the latest commit; /readyz reports it
        self._counter.start()
        self._thread.start()

    @property
    def alive(self) -> bool:
        """Whether the writer thread (and its counting thread) is running."""
        return self._thread.is_alive() and self._counter.is_alive() and not self._closed

    async def store(self, runs: Sequence[Run], *, count: bool = True) -> list[Outcome]:
        """Store runs; the outcome per run, once committed (and counted), or `StoreError` if nothing
        was stored.

        With `count=False` (a backfill of history) the runs are stored but not counted in the agent
        metrics, which would otherwise show old runs as a spike of new ones.
        """
        waiter = _LoopWaiter(asyncio.get_running_loop())
        if self._closed:
            raise StoreError("the exporter is shutting down")
        self._queue.put(_Job(runs, waiter, count))
        return await waiter.future

    def close(self, timeout: float = 30.0) -> None:
        """Store what is queued, then stop the thread."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            started = time.monotonic()
            self._thread.join(timeout)
            self._counter.join(max(0.0, timeout - (time.monotonic() - started)))

    def _loop(self) -> None:
        stopping = False
        while not stopping:
            job = self._queue.get()
            if job is None:
                break
            jobs = [job]
            count = len(job.runs)
            while count < MAX_GROUP_RUNS:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                jobs.append(more)
                count += len(more.runs)
            self._commit(jobs)
        # a request that raced the shutdown is answered (503, retry), never left waiting
        while True:
            try:
                late = self._queue.get_nowait()
            except queue.Empty:
                break
            if late is not None:
                late.future.set_exception(StoreError("the exporter is shutting down"))
        self._counting.put(None)  # the counting thread stops after what it was handed

    def _commit(self, jobs: list[_Job]) -> None:
        runs = [run for job in jobs for run in job.runs]
        started = time.perf_counter()
        try:
            outcomes = self._store.insert_runs(runs)
        except StoreError as exc:
            self.last_error = exc
            self._metrics.store_errors.labels("write").inc()
            if len(jobs) > 1 and not exc.retryable:
                # something in one request may be what the database refuses: do not fail the others
                for job in jobs:
                    self._commit([job])
                return
            log.error("storing %d runs failed: %s", len(runs), exc)
            for job in jobs:
                job.future.set_exception(exc)
            return
        except Exception as exc:  # a bug must fail the requests, not kill the writer thread
            log.exception("storing %d runs failed unexpectedly", len(runs))
            self._metrics.store_errors.labels("write").inc()
            for job in jobs:
                job.future.set_exception(StoreError(f"internal error: {exc!r}", retryable=True))
            return
        self._metrics.write_duration.observe(time.perf_counter() - started)
        self._metrics.write_size.observe(len(runs))
        self.last_error = None
        with self._handed_lock:
            inline = self._handed == 0 and len(runs) <= INLINE_COUNT
            if not inline:
                self._handed += 1
        if inline:
            self._count(jobs, outcomes)
        else:
            self._counting.put((jobs, outcomes))

    def _count_loop(self) -> None:
        while (item := self._counting.get()) is not None:
            try:
                self._count(*item)
            finally:
                with self._handed_lock:
                    self._handed -= 1

    def _count(self, jobs: list[_Job], outcomes: list[Outcome]) -> None:
        """Count the accepted runs of a committed group, then answer its requests."""
        start = 0
        for job in jobs:
            mine = outcomes[start : start + len(job.runs)]
            start += len(job.runs)
            if job.count:
                try:
                    for run, outcome in zip(job.runs, mine, strict=True):
                        if outcome is Outcome.ACCEPTED:
                            self._metrics.observe_run(run)
                except Exception:  # a bug in counting must not leave the request unanswered
                    log.exception("counting %d stored runs failed", len(job.runs))
            job.future.set_result(mine)


@dataclass(slots=True)
class RecordResult:
    """What happened to one record of a request."""

    index: int
    outcome: Outcome
    run_id: str | None = None
    errors: list[FieldError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of the result."""
        out: dict[str, Any] = {"index": self.index, "outcome": self.outcome.value}
        if self.run_id is not None:
            out["run_id"] = self.run_id
        if self.errors:
            out["errors"] = [e.as_dict() for e in self.errors]
        if self.warnings:
            out["warnings"] = self.warnings
        return out


@dataclass(slots=True)
class IngestResult:
    """What happened to every record of a request."""

    results: list[RecordResult]

    def rename_fields(self, rename: Callable[[str], str]) -> None:
        """Name the errors' fields (and the messages that lead with them) in another vocabulary."""
        for result in self.results:
            result.errors = [
                FieldError(
                    rename(e.field),
                    e.rule,
                    rename(e.field) + e.message[len(e.field) :]
                    if e.message.startswith(e.field)
                    else e.message,
                )
                for e in result.errors
            ]

    def count(self, outcome: Outcome) -> int:
        """How many records had `outcome`."""
        return sum(1 for r in self.results if r.outcome is outcome)

    def as_dict(self) -> dict[str, Any]:
        """The JSON response body."""
        return {
            "accepted": self.count(Outcome.ACCEPTED),
            "duplicates": self.count(Outcome.DUPLICATE),
            "conflicts": self.count(Outcome.CONFLICT),
            "rejected": self.count(Outcome.REJECTED),
            "results": [r.as_dict() for r in self.results],
        }


@dataclass(slots=True)
class Prepared:
    """The records of a request once judged: the rejected ones' results, and the valid ones' runs
    (priced) with where they stand in the request and their warnings, waiting for the store."""

    rejected: list[RecordResult] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    indexes: list[int] = field(default_factory=list)
    warnings: list[list[str]] = field(default_factory=list)

    def stored(self, outcomes: Sequence[Outcome]) -> IngestResult:
        """Every record's result, in request order, once the store said what became of the runs."""
        results = list(self.rejected)
        for index, run, warnings, outcome in zip(
            self.indexes, self.runs, self.warnings, outcomes, strict=True
        ):
            result = RecordResult(index, outcome, run.run_id, warnings=warnings)
            if outcome is Outcome.CONFLICT:
                result.errors.append(
                    FieldError(
                        "run_id",
                        "conflict",
                        f"run_id {run.run_id!r} is stored already with a different body; "
                        "it was not overwritten",
                    )
                )
            results.append(result)
        if self.rejected and self.runs:
            results.sort(key=lambda r: r.index)
        return IngestResult(results)


class Ingest:
    """Validates, prices, stores and counts the records of one request body."""

    def __init__(
        self, writer: Writer, metrics: Metrics, prices: PriceBook, *, max_future_skew: float
    ) -> None:
        self.writer = writer
        self.metrics = metrics
        self.prices = prices
        self.max_future_skew = max_future_skew

    def prepare(self, records: Sequence[Any], *, received_at: float, batch: bool) -> Prepared:
        """Validate and price each record: the rejected ones' results and the runs to store."""
        prepared = Prepared()
        for index, obj in enumerate(records):
            prefix = f"runs[{index}]." if batch else ""
            parsed = parse_record(obj, now=received_at, max_future_skew=self.max_future_skew, prefix=prefix)
            if isinstance(parsed, list):
                run_id = obj.get("run_id") if isinstance(obj, dict) else None
                prepared.rejected.append(
                    RecordResult(index, Outcome.REJECTED, run_id if isinstance(run_id, str) else None, parsed)
                )
                continue
            assert isinstance(obj, dict)
            run = parsed.resolve(received_at)
            self.prices.price(run)
            prepared.runs.append(run)
            prepared.indexes.append(index)
            prepared.warnings.append([f"unknown field {name!r} ignored" for name in unknown_fields(obj)])
        return prepared

    async def handle(
        self, records: Sequence[Any], *, received_at: float, batch: bool, backfill: bool = False
    ) -> IngestResult:
        """Judge, store and count the records; raises `StoreError` (nothing counted) if the store fails.

        A backfill stores the runs without counting them in the agent metrics.
        """
        if len(records) > INLINE_RECORDS:
            # a big batch is judged off the event loop, so that small requests keep flowing meanwhile
            prepared = await asyncio.to_thread(self.prepare, records, received_at=received_at, batch=batch)
        else:
            prepared = self.prepare(records, received_at=received_at, batch=batch)
        outcomes: list[Outcome] = []
        if prepared.runs:
            outcomes = await self.writer.store(prepared.runs, count=not backfill)
        result = prepared.stored(outcomes)
        # counted only now: a request the store failed is retried, and must not count twice
        for r in result.results:
            if r.outcome is Outcome.REJECTED:
                self.metrics.observe_rejection(r.errors[0].rule if r.errors else "invalid")
            else:
                self.metrics.observe_outcome(r.outcome)
        return result
