"""From spans arriving in several requests, in any order, to runs written once.

`Assembler.accept` holds a request's spans in the store (one transaction, one row per trace) before
the request is answered, and in memory. A trace is due `grace_seconds` after its root span arrived
(for a GenAI trace, normally the `invoke_agent` span, which ends after its children), or
`pending_timeout_seconds` after its first span if its root never comes. A loop assembles the due
traces from the spans in memory (reading the store only for traces it holds more chunks of than
this process saw: another replica's, or a restart's), writes their runs through the ingest path
(`Ingest.handle`: validated, priced, one group commit, counted), and then deletes their spans
and marks the traces written. A span that arrives for a written trace is late: counted, the runs
unchanged. A restart loads the held spans and carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import orjson

from ..config import OtlpSettings
from ..ingest import Ingest
from ..metrics import Metrics
from ..store import Store, StoreError
from ..store.pending import Chunk
from .codec import Span
from .mapping import map_trace

log = logging.getLogger(__name__)

TICK_SECONDS: Final = 0.2
MAX_TRACES_PER_ROUND: Final = 5000
REMEMBERED_TRACES: Final = 50_000  # written traces remembered in memory (the store remembers all)
FORGET_EVERY_SECONDS: Final = 300.0
MAX_TRACE_SPANS: Final = 10_000  # spans of one trace held at most: a run of more is a runaway loop
LATE_WINDOW_SECONDS: Final = 86_400.0  # how long the store remembers a written trace (late spans)


@dataclass(slots=True)
class _Trace:
    spans: dict[str, Span] = field(default_factory=dict)
    chunks: set[str] = field(default_factory=set)
    held: int = 0  # spans in the held chunks, duplicates included
    first_at: float = 0.0
    closed_at: float | None = None


@dataclass(slots=True)
class Accepted:
    """What became of a request's spans."""

    accepted: int = 0
    late: int = 0
    dropped: int = 0
    reasons: list[str] = field(default_factory=list)


def _chunk_key(spans: Sequence[Span]) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for span_id in sorted(s.span_id for s in spans):
        digest.update(span_id.encode())
    return digest.hexdigest()


class Assembler:
    """Pending spans, their assembly into runs, and the loop that does it."""

    def __init__(self, store: Store, ingest: Ingest, metrics: Metrics, settings: OtlpSettings) -> None:
        self._store = store
        self._ingest = ingest
        self._metrics = metrics
        self.settings = settings
        self._traces: dict[str, _Trace] = {}
        self._written: OrderedDict[str, None] = OrderedDict()
        self._pending = 0
        # traces in the order their roots (closing) and their first spans (arrivals) came
        self._closing: deque[tuple[float, str]] = deque()
        self._arrivals: deque[tuple[float, str]] = deque()
        self._retry: list[str] = []  # due traces whose runs could not be written yet
        self._task: asyncio.Task[None] | None = None
        self._last_forget = 0.0

    @property
    def pending_spans(self) -> int:
        """Spans held (in the store, and in memory) until their trace is written."""
        return self._pending

    def load(self) -> None:
        """Take up the spans the store holds (from before a restart)."""
        for chunk in self._store.pending.load():
            self._add(chunk, [Span.from_wire(chunk.trace_id, item) for item in orjson.loads(chunk.body)])
        self._metrics.otlp_pending.set(self._pending)
        if self._traces:
            log.info("OTLP: %d spans of %d traces were pending; taken up", self._pending, len(self._traces))

    def _add(self, chunk: Chunk, spans: Sequence[Span]) -> None:
        trace = self._traces.get(chunk.trace_id)
        if trace is None:
            trace = self._traces[chunk.trace_id] = _Trace(first_at=chunk.received_at)
            if chunk.closed_at is None:  # a trace whose root came first is due by its grace period
                self._arrivals.append((chunk.received_at, chunk.trace_id))
        if chunk.chunk in trace.chunks:
            return
        trace.chunks.add(chunk.chunk)
        trace.held += chunk.spans
        self._pending += chunk.spans
        for span in spans:
            trace.spans.setdefault(span.span_id, span)
        if chunk.closed_at is not None and trace.closed_at is None:
            trace.closed_at = chunk.closed_at
            self._closing.append((chunk.closed_at, chunk.trace_id))

    async def accept(self, spans: Sequence[Span], received_at: float) -> Accepted:
        """Hold `spans` (one request's) until their traces are due; raises `StoreError` if they
        could not be held (nothing was)."""
        result = Accepted()
        by_trace: dict[str, list[Span]] = {}
        for span in spans:
            if span.trace_id in self._written:
                result.late += 1
            else:
                by_trace.setdefault(span.trace_id, []).append(span)
        room = self.settings.max_pending_spans - self._pending
        chunks: list[tuple[Chunk, list[Span]]] = []
        for trace_id, mine in by_trace.items():
            known = self._traces.get(trace_id)
            trace_room = MAX_TRACE_SPANS - (len(known.spans) if known else 0)
            keep = mine[: max(0, min(room, trace_room))]
            if len(keep) < len(mine):
                result.dropped += len(mine) - len(keep)
                bound = "pending spans" if room < trace_room else f"spans of trace {trace_id}"
                limit = self.settings.max_pending_spans if room < trace_room else MAX_TRACE_SPANS
                if len(result.reasons) < 3:
                    result.reasons.append(
                        f"{len(mine) - len(keep)} span(s) dropped: {bound} over the limit of {limit}"
                    )
            if not keep:
                continue
            room -= len(keep)
            closed = received_at if any(s.is_local_root for s in keep) else None
            body = orjson.dumps([s.wire() for s in keep])
            chunks.append((Chunk(trace_id, _chunk_key(keep), received_at, closed, len(keep), body), keep))
        if chunks:
            late_traces = await asyncio.to_thread(self._store.pending.hold, [c for c, _ in chunks])
            for chunk, keep in chunks:
                if chunk.trace_id in late_traces:
                    result.late += len(keep)
                elif chunk.trace_id in self._written:
                    pass  # written while this request was held: counted late by that write
                else:
                    self._add(chunk, keep)
                    result.accepted += len(keep)
        metrics = self._metrics
        for outcome, count in (
            ("accepted", result.accepted),
            ("late", result.late),
            ("dropped", result.dropped),
        ):
            if count:
                metrics.otlp_spans.labels(outcome).inc(count)
        metrics.otlp_pending.set(self._pending)
        return result

    def due(self, now: float) -> list[str]:
        """Take the traces due at `now`: root arrived a grace period ago, or waited past the timeout."""
        grace, timeout = self.settings.grace_seconds, self.settings.pending_timeout_seconds
        found = [t for t in self._retry if t in self._traces][:MAX_TRACES_PER_ROUND]
        del self._retry[: len(found)]
        chosen = set(found)
        for queue, wait in ((self._closing, grace), (self._arrivals, timeout)):
            while queue and queue[0][0] + wait <= now and len(found) < MAX_TRACES_PER_ROUND:
                _, trace_id = queue.popleft()
                if trace_id in self._traces and trace_id not in chosen:
                    found.append(trace_id)
                    chosen.add(trace_id)
        return found

    async def assemble(self, now: float | None = None) -> int:
        """Write the runs of the traces due (all held traces: `now=inf`); how many traces were written."""
        now = time.time() if now is None else now
        trace_ids = self.due(now)
        if not trace_ids:
            return 0
        try:
            return await self._assemble(trace_ids)
        except BaseException:
            self._retry[:0] = [t for t in trace_ids if t in self._traces]
            raise

    async def _assemble(self, trace_ids: list[str]) -> int:
        stored = await asyncio.to_thread(self._store.pending.chunk_counts, trace_ids)
        # fewer chunks in the store than this process held: another replica wrote the trace's runs
        # (with these spans, which it read from the store) and deleted them
        elsewhere = {t for t in trace_ids if stored.get(t, 0) < len(self._traces[t].chunks)}
        for trace_id in elsewhere:
            self._forget(self._traces.pop(trace_id), trace_id)
        trace_ids = [t for t in trace_ids if t not in elsewhere]
        if not trace_ids:
            self._metrics.otlp_pending.set(self._pending)
            return 0
        missing = [t for t in trace_ids if stored.get(t, 0) > len(self._traces[t].chunks)]
        if missing:  # spans this process did not receive: another replica's
            for chunk in await asyncio.to_thread(self._store.pending.load, missing):
                self._add(chunk, [Span.from_wire(chunk.trace_id, item) for item in orjson.loads(chunk.body)])
        records = []
        ignored = 0
        held = {t: self._traces[t].held for t in trace_ids}  # what the runs are made of
        for trace_id in trace_ids:
            spans = list(self._traces[trace_id].spans.values())
            try:
                mapped = map_trace(spans)
            except Exception:  # a bug must not stall every other trace behind this one
                log.exception("OTLP: mapping trace %s failed; its %d spans are ignored", trace_id, len(spans))
                ignored += len(spans)
                continue
            records.extend(mapped.records)
            ignored += mapped.ignored
        wall = time.time()
        if records:
            result = await self._ingest.handle(records, received_at=wall, batch=True)
            for r in result.results:
                if r.outcome == "rejected":
                    log.warning(
                        "OTLP: run %s not stored: %s", r.run_id, "; ".join(e.message for e in r.errors)
                    )
        deleted = await asyncio.to_thread(self._store.pending.settle, trace_ids, wall)
        late = 0
        for trace_id in trace_ids:
            self._forget(self._traces.pop(trace_id), trace_id)
            late += max(0, deleted.get(trace_id, 0) - held[trace_id])
        if ignored:
            self._metrics.otlp_spans.labels("ignored").inc(ignored)
        if late:
            self._metrics.otlp_spans.labels("late").inc(late)
        self._metrics.otlp_pending.set(self._pending)
        return len(trace_ids)

    def _forget(self, trace: _Trace, trace_id: str) -> None:
        """A trace's runs were written: its spans no longer wait, later ones are late."""
        self._pending -= trace.held
        self._written[trace_id] = None
        while len(self._written) > REMEMBERED_TRACES:
            self._written.popitem(last=False)

    def start(self) -> None:
        """Run the assembly loop on the running event loop."""
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="otlp-assembly")

    async def stop(self) -> None:
        """Stop the loop after its current round; what is pending stays in the store."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                while await self.assemble() >= MAX_TRACES_PER_ROUND:
                    pass
                now = time.time()
                if now - self._last_forget >= FORGET_EVERY_SECONDS:
                    self._last_forget = now
                    await asyncio.to_thread(self._store.pending.forget_assembled, now - LATE_WINDOW_SECONDS)
            except StoreError as exc:
                log.warning("OTLP: writing assembled runs failed, retrying: %s", exc)
                await asyncio.sleep(1.0)
            except Exception:
                log.exception("OTLP: the assembly round failed; retrying")
                await asyncio.sleep(1.0)
            await asyncio.sleep(TICK_SECONDS)
