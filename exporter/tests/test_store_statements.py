"""Multi-row INSERTs come in a few sizes (powers of two), so that sqlite3's per-connection cache of
prepared statements holds a dozen texts a table, not one for every group size that came."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from agent_exporter.store.rows import statement_chunks


@given(count=st.integers(min_value=0, max_value=5000), most=st.integers(min_value=1, max_value=1100))
def test_chunks_cover_the_rows_in_order_in_sizes_that_are_powers_of_two(count: int, most: int) -> None:
    chunks = list(statement_chunks(count, most))
    assert [start for start, _ in chunks] == [0, *(stop for _, stop in chunks)][: len(chunks)]
    assert (chunks[-1][1] if chunks else 0) == count
    sizes = {stop - start for start, stop in chunks}
    assert all(size & (size - 1) == 0 and size <= most for size in sizes)


def test_every_group_size_up_to_a_thousand_needs_eleven_statement_texts_at_most() -> None:
    sizes = {stop - start for count in range(1, 1001) for start, stop in statement_chunks(count, 1092)}
    assert sizes == {1, 2, 4, 8, 16, 32, 64, 128, 256, 512}
