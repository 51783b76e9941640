"""`Store.pending` on both backends: OTLP spans held per trace and request, a re-sent request adding
nothing, the traces settled (their spans deleted, the trace remembered) in one transaction, and a
request for a settled trace told it is late."""

from __future__ import annotations

from agent_exporter.store import Store
from agent_exporter.store.pending import Chunk

A, B = "a" * 32, "b" * 32


def chunk(trace: str, key: str, spans: int, at: float, closed: bool = False) -> Chunk:
    return Chunk(trace, key, at, at if closed else None, spans, f"{trace}:{key}".encode())


def test_held_chunks_are_loaded_back_and_a_resent_one_adds_nothing(store: Store) -> None:
    assert store.pending.hold([chunk(A, "k1", 3, 10.0), chunk(B, "k1", 2, 11.0)]) == set()
    assert store.pending.hold([chunk(A, "k1", 3, 12.0), chunk(A, "k2", 4, 13.0, closed=True)]) == set()
    loaded = store.pending.load()
    assert [(c.trace_id, c.chunk, c.received_at, c.closed_at, c.spans, c.body) for c in loaded] == [
        (A, "k1", 10.0, None, 3, f"{A}:k1".encode()),
        (B, "k1", 11.0, None, 2, f"{B}:k1".encode()),
        (A, "k2", 13.0, 13.0, 4, f"{A}:k2".encode()),
    ]
    assert [c.chunk for c in store.pending.load([A])] == ["k1", "k2"]
    assert store.pending.chunk_counts([A, B, "c" * 32]) == {A: 2, B: 1}
    assert store.pending.span_count() == 9


def test_settling_deletes_a_traces_spans_and_later_spans_of_it_are_late(store: Store) -> None:
    store.pending.hold([chunk(A, "k1", 3, 10.0), chunk(A, "k2", 4, 11.0), chunk(B, "k1", 2, 12.0)])
    assert store.pending.settle([A], now=20.0) == {A: 7}
    assert [c.trace_id for c in store.pending.load()] == [B]
    assert store.pending.hold([chunk(A, "k3", 1, 21.0), chunk(B, "k2", 1, 21.0)]) == {A}
    assert store.pending.span_count() == 3  # B's two chunks; A's late one was not held
    assert store.pending.settle([A], now=22.0) == {}  # settled twice: nothing more, no error
    assert store.pending.forget_assembled(before=20.5) == 1
    assert store.pending.hold([chunk(A, "k4", 1, 30.0)]) == set()  # forgotten: held again
