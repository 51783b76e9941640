"""Runs as table rows, and the statements that write them: SQLite's multi-row INSERTs in one
transaction, PostgreSQL's COPY through a staging table. `Store.insert_runs` drives them."""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any, Final

import orjson
from sqlalchemy import Connection, Table

from .. import rollups, schema
from ..record import Phase, Run, ToolUsage, UsageLine

#: keeps `run_id IN (...)` under every backend's parameter limit
IN_CHUNK: Final = 500

TABLES = (
    schema.runs,
    schema.run_usage,
    schema.run_tools,
    schema.run_phases,
    schema.run_subagents,
    schema.run_pipeline_attempts,
    schema.run_debugging_cycles,
)
COLUMNS = {t: [c.name for c in t.columns] for t in TABLES}


SQLITE_MAX_PARAMETERS: Final = 32_766  # SQLite's default limit since 3.32


@lru_cache(maxsize=64)
def multi_row_insert(table: Table, rows: int, skip_stored: bool) -> str:
    """One INSERT of `rows` rows: one statement per thousand rows rather than one step per row.

    sqlite3 releases the GIL around each step and must win it back for the next one: under load,
    from request threads that hold it for milliseconds. A few large statements take it a few times.
    """
    one = "(" + ", ".join("?" * len(COLUMNS[table])) + ")"
    values = ", ".join([one] * rows)
    sql = f"INSERT INTO {table.name} ({', '.join(COLUMNS[table])}) VALUES {values}"  # noqa: S608
    return sql + " ON CONFLICT (run_id) DO NOTHING" if skip_stored else sql


def statement_chunks(count: int, most: int) -> Iterator[tuple[int, int]]:
    """[start, stop) slices of `count` rows whose sizes are powers of two (at most `most`).

    sqlite3 keeps each connection's last 128 statements prepared, keyed by their text: a multi-row
    INSERT for every group size that happens to come (1 to 1,000 runs) filled that cache with
    statements of thousands of parameters, a hundred MB and more of SQLite's memory over a day of
    varied groups. Sizes that are powers of two make about a dozen texts a table.
    """
    start = 0
    top = 1 << (most.bit_length() - 1)
    while start < count:
        size = min(top, 1 << ((count - start).bit_length() - 1))
        yield start, start + size
        start += size


class StoredRunsError(Exception):
    """Some of the runs being inserted are stored already: the transaction starts over, looking first."""


def insert_runs_sqlite(cursor: sqlite3.Cursor, runs: Sequence[Run], *, look_first: bool) -> set[str]:
    """Insert the runs whose run_id is not stored yet; the run_ids inserted.

    Optimistically (`look_first` false), a multi-row INSERT ... ON CONFLICT DO NOTHING per chunk,
    without RETURNING (whose rows come back one step, and one GIL hand-off, each): when it inserts
    every row, as it does but for retries, that is the answer, in one statement. When it does
    not, `StoredRunsError` says to roll back and start over with `look_first`: a look-up of the
    stored run_ids, then an INSERT of the others.
    """
    table = schema.runs
    per = SQLITE_MAX_PARAMETERS // len(COLUMNS[table])
    inserted: set[str] = set()
    for start, stop in statement_chunks(len(runs), per):
        chunk = runs[start:stop]
        if look_first:
            stored = stored_hashes_sqlite(cursor, [r.run_id for r in chunk])
            chunk = [r for r in chunk if r.run_id not in stored]
            if not chunk:
                continue
        rows = [run_values(r) for r in chunk]
        sql = multi_row_insert(table, len(rows), not look_first)
        cursor.execute(sql, tuple(itertools.chain.from_iterable(rows)))
        if not look_first and cursor.rowcount != len(rows):
            raise StoredRunsError
        inserted.update(r.run_id for r in chunk)
    return inserted


def write_sqlite_transaction(
    cursor: sqlite3.Cursor, candidates: Sequence[Run], *, look_first: bool
) -> tuple[set[str], dict[str, str]]:
    """One transaction of `Store._write_sqlite`, rolled back if anything fails."""
    # the write lock up front: the duplicate check and the insert see the same database
    cursor.execute("BEGIN IMMEDIATE")
    try:
        inserted = insert_runs_sqlite(cursor, candidates, look_first=look_first)
        known = [r.run_id for r in candidates if r.run_id not in inserted]
        stored = stored_hashes_sqlite(cursor, known) if known else {}
        new = [r for r in candidates if r.run_id in inserted] if known else candidates
        insert_children_sqlite(cursor, new)
        rollups.add(cursor, "sqlite", new)
        cursor.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            cursor.execute("ROLLBACK")
        raise
    return inserted, stored


def insert_children_sqlite(cursor: sqlite3.Cursor, runs: Sequence[Run]) -> None:
    """The runs' usage, tool and phase rows, a multi-row INSERT per table and chunk."""
    for table, values in child_rows(runs):
        if not values:
            continue
        per = SQLITE_MAX_PARAMETERS // len(COLUMNS[table])
        for start, stop in statement_chunks(len(values), per):
            chunk = values[start:stop]
            cursor.execute(
                multi_row_insert(table, len(chunk), False), tuple(itertools.chain.from_iterable(chunk))
            )


def stored_hashes_sqlite(cursor: sqlite3.Cursor, run_ids: Sequence[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for start in range(0, len(run_ids), IN_CHUNK):
        chunk = run_ids[start : start + IN_CHUNK]
        marks = ", ".join("?" * len(chunk))
        cursor.execute(f"SELECT run_id, body_hash FROM runs WHERE run_id IN ({marks})", chunk)  # noqa: S608
        found.update(cursor.fetchall())
    return found


def copy_rows(
    conn: Connection, table: Table, rows: Sequence[tuple[Any, ...]], into: str | None = None
) -> None:
    """PostgreSQL's COPY of `table`'s columns (into `into`, if given): many times faster than INSERT."""
    columns = ", ".join(COLUMNS[table])
    raw = conn.connection.driver_connection  # the psycopg connection, inside the same transaction
    assert raw is not None
    with raw.cursor() as cursor, cursor.copy(f"COPY {into or table.name} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def insert_postgres(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> set[str]:
    """COPY the runs into a staging table, then move the new ones: the run_ids actually inserted.

    ON CONFLICT DO NOTHING makes a run another replica stored meanwhile a duplicate, not an error.
    """
    columns = ", ".join(COLUMNS[schema.runs])
    conn.exec_driver_sql(
        "CREATE TEMPORARY TABLE IF NOT EXISTS incoming_runs (LIKE runs) ON COMMIT DELETE ROWS"
    )
    copy_rows(conn, schema.runs, rows, into="incoming_runs")
    result = conn.exec_driver_sql(
        f"INSERT INTO runs ({columns}) SELECT {columns} FROM incoming_runs "  # noqa: S608 - schema names
        "ON CONFLICT (run_id) DO NOTHING RETURNING run_id"
    )
    return {row[0] for row in result}


def json_text(value: Mapping[str, str | int] | None) -> str | None:
    return orjson.dumps(value).decode() if value else None


# Each tuple follows its table's column order in schema.py (the store tests read every column back).
def run_values(run: Run) -> tuple[Any, ...]:
    return (
        run.run_id,
        run.agent,
        run.agent_version,
        run.model,
        run.provider,
        run.issue_type,
        run.project,
        run.team,
        run.environment,
        run.status.value,
        run.started_at,
        run.ended_at,
        run.duration_seconds,
        run.input_tokens,
        run.output_tokens,
        run.cache_read_tokens,
        run.cache_write_tokens,
        run.reasoning_tokens,
        run.cost_usd,
        run.cost_source.value,
        run.llm_calls,
        run.tool_calls,
        run.retries,
        run.quality_score,
        run.confidence,
        run.error_type,
        run.error_summary,
        json_text(run.labels),
        run.received_at,
        run.body_hash,
        run.session_id,
        run.parent_run_id,
        json_text(run.counts),
        run.pipeline_attempt_count,
        run.pipeline_first_pass,
        run.debugging_cycle_count,
    )


def child_rows(runs: Sequence[Run]) -> list[tuple[Table, list[tuple[Any, ...]]]]:
    """The rows of every breakdown table of `runs`, table by table."""
    return [
        (schema.run_usage, [usage_values(r.run_id, i, u) for r in runs for i, u in enumerate(r.usage)]),
        (schema.run_tools, [tool_values(r.run_id, i, t) for r in runs for i, t in enumerate(r.tools)]),
        (schema.run_phases, [phase_values(r.run_id, i, p) for r in runs for i, p in enumerate(r.phases)]),
        (
            schema.run_subagents,
            [
                (r.run_id, i, s.name, s.attempts, s.successes, s.failures, s.retries, s.duration_seconds)
                for r in runs
                for i, s in enumerate(r.subagents)
            ],
        ),
        (
            schema.run_pipeline_attempts,
            [
                (r.run_id, i, p.status.value, p.id, p.commit, p.duration_seconds)
                for r in runs
                for i, p in enumerate(r.pipeline_attempts)
            ],
        ),
        (
            schema.run_debugging_cycles,
            [
                (r.run_id, i, d.agent, d.error_type, d.attempts, int(d.resolved), d.duration_seconds)
                for r in runs
                for i, d in enumerate(r.debugging_cycles)
            ],
        ),
    ]


def usage_values(run_id: str, position: int, u: UsageLine) -> tuple[Any, ...]:
    return (
        run_id,
        position,
        u.model,
        u.provider,
        u.input_tokens,
        u.output_tokens,
        u.cache_read_tokens,
        u.cache_write_tokens,
        u.reasoning_tokens,
        u.cost_usd,
        u.cost_source.value,
        u.calls,
    )


def tool_values(run_id: str, position: int, t: ToolUsage) -> tuple[Any, ...]:
    return (run_id, position, t.name, t.calls, t.errors, t.duration_seconds)


def phase_values(run_id: str, position: int, p: Phase) -> tuple[Any, ...]:
    return (run_id, position, p.name, p.duration_seconds, p.status.value if p.status is not None else None)
