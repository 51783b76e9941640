"""OTLP spans held in the store until their trace is assembled (`Store.pending`).

A request's spans are held in one transaction, one row per trace (`Chunk`), before the request is
answered: a restart or a SIGKILL between a trace's requests loses none. A trace's chunks are
deleted, and the trace marked assembled, only after its runs were committed; a crash between the
two assembles the trace again, and the runs' own idempotency (same run id, same body) counts them
once. The marks let a span that arrives after its trace's runs were written be told apart (late).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import Store

_IN_CHUNK = 500  # keeps `IN (...)` under every backend's parameter limit


@dataclass(frozen=True, slots=True)
class Chunk:
    """The spans of one trace that arrived in one request."""

    trace_id: str
    chunk: str  # a digest of the span ids: the same spans sent again are the same chunk
    received_at: float
    closed_at: float | None  # the receipt time, when the chunk holds the trace's root span
    spans: int
    body: bytes


def _slices(items: Sequence[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), _IN_CHUNK):
        yield list(items[start : start + _IN_CHUNK])


class PendingSpans:
    """The pending-span tables of one store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def _mark(self) -> str:
        return "?" if self._store.dialect == "sqlite" else "%s"

    def _marks(self, n: int) -> str:
        return ", ".join([self._mark] * n)

    def hold(self, chunks: Sequence[Chunk]) -> set[str]:
        """Hold `chunks` in one transaction, except those of traces assembled already; return the
        ids of those traces (their spans are late). A chunk held already changes nothing."""
        ids = sorted({c.trace_id for c in chunks})
        late: set[str] = set()
        with self._store.write_cursor() as cursor:
            for part in _slices(ids):
                cursor.execute(
                    f"SELECT trace_id FROM otlp_traces WHERE trace_id IN ({self._marks(len(part))})",  # noqa: S608
                    part,
                )
                late.update(row[0] for row in cursor.fetchall())
            rows = [
                (c.trace_id, c.chunk, c.received_at, c.closed_at, c.spans, c.body)
                for c in chunks
                if c.trace_id not in late
            ]
            if rows:
                cursor.executemany(
                    "INSERT INTO otlp_pending (trace_id, chunk, received_at, closed_at, spans, body) "  # noqa: S608
                    f"VALUES ({self._marks(6)}) ON CONFLICT (trace_id, chunk) DO NOTHING",
                    rows,
                )
        return late

    def load(self, trace_ids: Sequence[str] | None = None) -> list[Chunk]:
        """The held chunks of `trace_ids` (all of them: None), oldest first."""
        columns = "trace_id, chunk, received_at, closed_at, spans, body"
        found: list[Any] = []
        with self._store.write_cursor() as cursor:
            if trace_ids is None:
                cursor.execute(f"SELECT {columns} FROM otlp_pending ORDER BY received_at")  # noqa: S608
                found = cursor.fetchall()
            else:
                for part in _slices(trace_ids):
                    cursor.execute(
                        f"SELECT {columns} FROM otlp_pending "  # noqa: S608
                        f"WHERE trace_id IN ({self._marks(len(part))}) ORDER BY received_at",
                        part,
                    )
                    found.extend(cursor.fetchall())
        return [Chunk(t, c, r, closed, n, bytes(body)) for t, c, r, closed, n, body in found]

    def chunk_counts(self, trace_ids: Sequence[str]) -> dict[str, int]:
        """How many chunks the store holds for each of `trace_ids` (absent: none)."""
        counts: dict[str, int] = {}
        with self._store.write_cursor() as cursor:
            for part in _slices(trace_ids):
                cursor.execute(
                    "SELECT trace_id, COUNT(*) FROM otlp_pending "  # noqa: S608
                    f"WHERE trace_id IN ({self._marks(len(part))}) GROUP BY trace_id",
                    part,
                )
                counts.update({row[0]: int(row[1]) for row in cursor.fetchall()})
        return counts

    def settle(self, trace_ids: Sequence[str], now: float) -> dict[str, int]:
        """Delete the chunks of `trace_ids` and mark the traces assembled at `now`, in one
        transaction; the spans deleted per trace (counting any that arrived since they were read)."""
        deleted: dict[str, int] = {}
        with self._store.write_cursor() as cursor:
            for part in _slices(trace_ids):
                cursor.execute(
                    f"DELETE FROM otlp_pending WHERE trace_id IN ({self._marks(len(part))}) "  # noqa: S608
                    "RETURNING trace_id, spans",
                    part,
                )
                for trace_id, spans in cursor.fetchall():
                    deleted[trace_id] = deleted.get(trace_id, 0) + int(spans)
            cursor.executemany(
                f"INSERT INTO otlp_traces (trace_id, assembled_at) VALUES ({self._marks(2)}) "  # noqa: S608
                "ON CONFLICT (trace_id) DO NOTHING",
                [(t, now) for t in trace_ids],
            )
        return deleted

    def forget_assembled(self, before: float) -> int:
        """Drop the marks of traces assembled before `before`; how many."""
        with self._store.write_cursor() as cursor:
            cursor.execute(f"DELETE FROM otlp_traces WHERE assembled_at < {self._mark}", (before,))  # noqa: S608
            return int(cursor.rowcount)

    def span_count(self) -> int:
        """How many spans are held."""
        with self._store.write_cursor() as cursor:
            cursor.execute("SELECT COALESCE(SUM(spans), 0) FROM otlp_pending")
            row = cursor.fetchone()
        return int(row[0]) if row else 0
