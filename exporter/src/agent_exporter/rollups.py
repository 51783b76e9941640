"""Rollups: the runs folded per UTC hour and day and per dimension, kept exact in the writer's
transaction.

A cell of `rollup_hour` or `rollup_day` holds, for one time bucket and one combination of the
dimensions (`schema.ROLLUP_DIMENSIONS`), the facts of `schema.ROLLUP_FACTS` and a duration sketch
(`sketch.py`). The store folds each committed group of new runs into cells in Python (`add`), then
merges them into the stored cells in the same transaction as the runs: a late run of a closed
bucket lands in that bucket's cells like any other. Repricing and deleting runs take their old
contribution back out (`remove`); sums and counts subtract, sketches subtract their counts, and the
minima and maxima of the cells touched are looked up again from the runs. Retention deletes runs
without touching the rollups: the history stays.

The statements go to the DB-API cursor of the writer's transaction (sqlite3 or psycopg), so that
ingest pays for a handful of statements per commit and no SQLAlchemy layer. On PostgreSQL a
transaction-level advisory lock serialises the rollup step of concurrent writers (replicas): the
sketches are read, merged and written back, which must not interleave.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any, Final

from . import schema
from .record import Run
from .schema import DAY_SECONDS, HOUR_SECONDS, ROLLUP_DIMENSIONS, ROLLUP_FACTS, Kind
from .sketch import bucket_of, decode, encode

log = logging.getLogger(__name__)

#: the run columns a cell is made of, in the order `accumulate` reads them
INPUTS: Final = (
    "ended_at",
    *ROLLUP_DIMENSIONS,
    *dict.fromkeys(c for f in ROLLUP_FACTS for c in f.source if c not in ("ended_at", "duration_seconds")),
    "duration_seconds",
)
_AT: Final = {name: i for i, name in enumerate(INPUTS)}
_PLAN: Final = tuple((f.kind, tuple(_AT[c] for c in f.source)) for f in ROLLUP_FACTS)
_DURATION: Final = _AT["duration_seconds"]
_KEY: Final = ("bucket", *ROLLUP_DIMENSIONS)
_FACT_NAMES: Final = tuple(f.name for f in ROLLUP_FACTS)
_COLUMNS: Final = (*_KEY, *_FACT_NAMES, "sketch")
#: keys of the cells touched by one statement: SQLite allows 32,766 parameters
_CHUNK: Final = 500
#: any constant: the PostgreSQL advisory lock the rollup step takes
_PG_LOCK: Final = 0x726F6C6C7570

Key = tuple[Any, ...]  # (bucket, *dimensions)
Cell = list[Any]  # the facts in ROLLUP_FACTS order, then the sketch's {bucket: count}


def inputs_of(row: Mapping[Any, Any]) -> tuple[Any, ...]:
    """A row mapping of the runs table in `INPUTS` order."""
    return tuple(row[name] for name in INPUTS)


def _compile(attributes: bool) -> Callable[[Iterable[Any], dict[Key, Cell], int], None]:
    """The loop that folds runs into cells, written out from `ROLLUP_FACTS`: a statement per fact
    instead of a loop over them (this runs for every run stored, in the writer's thread).

    With `attributes` it reads `record.Run` objects, otherwise rows in `INPUTS` order.
    """
    enums = {"status", "cost_source"}

    def read(name: str) -> str:
        if not attributes:
            return f"r[{_AT[name]}]"
        return f"r.{name}.value" if name in enums else f"r.{name}"

    # a missing dimension is '' in the key; a run always has an agent, a status and a cost_source
    dims = ", ".join(
        read(d) if attributes and d in ("agent", *enums) else f"{read(d)} or ''" for d in ROLLUP_DIMENSIONS
    )
    empty = ", ".join("None" if kind in (Kind.MIN, Kind.MAX) else "0" for kind, _ in _PLAN)
    lines = [
        "def fold(rows, cells, grain):",
        "    for r in rows:",
        f"        key = (int({read('ended_at')} // grain), {dims})",
        "        c = cells.get(key)",
        "        if c is None:",
        f"            c = cells[key] = [{empty}, {{}}]",
    ]
    for i, fact in enumerate(ROLLUP_FACTS):
        if fact.kind is Kind.COUNT:
            lines.append(f"        c[{i}] += 1")
            continue
        if fact.kind is Kind.PRESENT:
            test = " or ".join(f"{read(n)} is not None" for n in fact.source)
            lines.append(f"        if {test}: c[{i}] += 1")
            continue
        lines.append(f"        v = {read(fact.source[0])}")
        if fact.kind is Kind.SUM:
            lines.append(f"        if v is not None: c[{i}] += v")
        else:
            better = "<" if fact.kind is Kind.MIN else ">"
            lines.append(f"        if v is not None and (c[{i}] is None or v {better} c[{i}]): c[{i}] = v")
    lines += [
        f"        b = bucket_of({read('duration_seconds')})",
        "        s = c[-1]",
        "        s[b] = s.get(b, 0) + 1",
    ]
    namespace: dict[str, Any] = {"bucket_of": bucket_of}
    exec(compile("\n".join(lines), f"<rollups fold {'runs' if attributes else 'rows'}>", "exec"), namespace)  # noqa: S102
    fold: Callable[[Iterable[Any], dict[Key, Cell], int], None] = namespace["fold"]
    return fold


_FOLD_RUNS: Final = _compile(attributes=True)
_FOLD_ROWS: Final = _compile(attributes=False)


def accumulate(items: Iterable[Any], grain: int = HOUR_SECONDS, *, runs: bool = False) -> dict[Key, Cell]:
    """The cells of `grain` seconds that `items` make: `record.Run` objects with `runs`, otherwise
    rows in `INPUTS` order."""
    cells: dict[Key, Cell] = {}
    (_FOLD_RUNS if runs else _FOLD_ROWS)(items, cells, grain)
    return cells


def coarsen(cells: Mapping[Key, Cell], factor: int) -> dict[Key, Cell]:
    """Cells of a grain `factor` times larger (hours into days), folded as their facts fold."""
    out: dict[Key, Cell] = {}
    for key, cell in cells.items():
        coarse = (key[0] // factor, *key[1:])
        into = out.get(coarse)
        if into is None:
            out[coarse] = [*cell[:-1], dict(cell[-1])]
            continue
        for i, (kind, _) in enumerate(_PLAN):
            if kind is Kind.MIN:
                into[i] = cell[i] if into[i] is None else min(into[i], cell[i])
            elif kind is Kind.MAX:
                into[i] = cell[i] if into[i] is None else max(into[i], cell[i])
            else:
                into[i] += cell[i]
        bins = into[-1]
        for b, n in cell[-1].items():
            bins[b] = bins.get(b, 0) + n
    return out


def grains(items: Iterable[Any], *, runs: bool = False) -> dict[int, dict[Key, Cell]]:
    """The hour and day cells of `items` (as `accumulate` reads them)."""
    hours = accumulate(items, HOUR_SECONDS, runs=runs)
    return {HOUR_SECONDS: hours, DAY_SECONDS: coarsen(hours, DAY_SECONDS // HOUR_SECONDS)}


# --- statements -----------------------------------------------------------------------------------


def _marks(dialect: str, count: int) -> str:
    mark = "?" if dialect == "sqlite" else "%s"
    return ", ".join([mark] * count)


@lru_cache(maxsize=256)
def _upsert(dialect: str, grain: int, rows: int, *, removing: bool) -> str:
    """One statement that adds `rows` cells to the rollup of `grain` (or takes them out): no read.

    Sums add up, minima and maxima keep the extreme (a removal leaves them to
    `_drop_empty_and_refresh`); an hour cell's sketch is appended to, a day cell's version goes up.
    """
    table = schema.ROLLUPS[grain].name
    least, greatest = ("min", "max") if dialect == "sqlite" else ("LEAST", "GREATEST")
    sets = []
    for f in ROLLUP_FACTS:
        if f.additive:
            sets.append(f"{f.name} = {table}.{f.name} + excluded.{f.name}")
        elif not removing:
            pick = least if f.kind is Kind.MIN else greatest
            sets.append(f"{f.name} = {pick}({table}.{f.name}, excluded.{f.name})")
    columns = list(_COLUMNS)
    if grain == DAY_SECONDS:
        # a new day cell's sketch is this commit's, and current; an existing one's goes stale
        sets.append(f"version = {table}.version + 1")
        columns += ["version", "sketch_version"]
    else:
        # SQLite's || makes text of two blobs: the cast takes the bytes back as they are
        concat = f"{table}.sketch || excluded.sketch"
        sets.append(f"sketch = CAST({concat} AS BLOB)" if dialect == "sqlite" else f"sketch = {concat}")
    row = f"({_marks(dialect, len(columns))})"
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([row] * rows)} "  # noqa: S608
        f"ON CONFLICT ({', '.join(_KEY)}) DO UPDATE SET {', '.join(sets)}"
    )


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _flat(rows: Iterable[Sequence[Any]]) -> list[Any]:
    return [v for row in rows for v in row]


def _lock(cursor: Any, dialect: str) -> None:
    if dialect == "postgresql":
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_LOCK,))


def add(cursor: Any, dialect: str, runs: Iterable[Run]) -> None:
    """Fold newly stored runs into the rollups, in the caller's transaction."""
    _write(cursor, dialect, grains(runs, runs=True), removing=False)


def remove(cursor: Any, dialect: str, rows: Iterable[Mapping[Any, Any]]) -> None:
    """Take runs out of the rollups, given their rows as they were stored, after the runs table
    changed (the runs deleted or updated) in the caller's transaction."""
    _write(cursor, dialect, grains(inputs_of(r) for r in rows), removing=True)


def add_rows(cursor: Any, dialect: str, rows: Iterable[Mapping[Any, Any]]) -> None:
    """`add` for runs given as row mappings of the runs table (a repriced run's new row)."""
    _write(cursor, dialect, grains(inputs_of(r) for r in rows), removing=False)


def _write(cursor: Any, dialect: str, by_grain: Mapping[int, Mapping[Key, Cell]], *, removing: bool) -> None:
    if not any(by_grain.values()):
        return
    _lock(cursor, dialect)
    for grain, cells in by_grain.items():
        keys = sorted(cells)  # the same order in every writer: no deadlock between replicas
        rows = []
        for key in keys:
            cell = cells[key]
            bins, facts = cell[-1], cell[:-1]
            if removing:
                bins = {b: -n for b, n in bins.items()}
                facts = [-v if f.additive else v for f, v in zip(ROLLUP_FACTS, facts, strict=True)]
            row = (*key, *facts, encode(bins))
            rows.append((*row, 1, 1) if grain == DAY_SECONDS else row)
        for chunk in _chunks(rows):
            cursor.execute(_upsert(dialect, grain, len(chunk), removing=removing), _flat(chunk))
        if removing:
            _drop_empty_and_refresh(cursor, dialect, grain, keys)


def _drop_empty_and_refresh(cursor: Any, dialect: str, grain: int, keys: Sequence[Key]) -> None:
    """Delete the cells among `keys` left without runs; look the others' minima and maxima up
    again from the runs (all of a cell's runs are there: retention deletes whole days)."""
    table = schema.ROLLUPS[grain].name
    mark = "?" if dialect == "sqlite" else "%s"
    match = " AND ".join(f"{k} = {mark}" for k in _KEY)
    extremes = [f for f in ROLLUP_FACTS if not f.additive]
    runs_match = " AND ".join(
        f"coalesce(r.{d}, '') = t.{d}" if d not in ("agent", "status", "cost_source") else f"r.{d} = t.{d}"
        for d in ROLLUP_DIMENSIONS
    )
    lookups = ", ".join(
        f"{f.name} = (SELECT {f.kind.value}(r.{f.source[0]}) FROM runs AS r WHERE "  # noqa: S608
        f"r.ended_at >= t.bucket * {grain} AND r.ended_at < (t.bucket + 1) * {grain} AND {runs_match})"
        for f in extremes
    )
    for key in keys:
        cursor.execute(f"DELETE FROM {table} WHERE {match} AND runs <= 0", key)  # noqa: S608
        cursor.execute(f"UPDATE {table} AS t SET {lookups} WHERE {match.replace('bucket', 't.bucket')}", key)  # noqa: S608


# --- compaction -----------------------------------------------------------------------------------

_DAY_HOURS: Final = DAY_SECONDS // HOUR_SECONDS


def compact(cursor: Any, dialect: str, *, limit: int = 200, days: Sequence[int] = ()) -> int:
    """Bring up to `limit` stale day cells (written since their sketch was merged) up to date: the
    merge of their hours' sketches, which are normalised on the way. With `days`, those days' stale
    cells only. The number compacted."""
    mark = "?" if dialect == "sqlite" else "%s"
    keys = ", ".join(_KEY)
    _lock(cursor, dialect)
    which = f"WHERE {schema.STALE_DAY}"
    if days:
        which += f" AND bucket IN ({_marks(dialect, len(days))})"
    cursor.execute(f"SELECT {keys}, version FROM rollup_day {which} LIMIT {int(limit)}", list(days))  # noqa: S608
    stale = cursor.fetchall()
    dims = " AND ".join(f"{d} = {mark}" for d in ROLLUP_DIMENSIONS)
    for *key, version in stale:
        day, values = key[0], key[1:]
        cursor.execute(
            f"SELECT bucket, sketch FROM rollup_hour WHERE bucket >= {mark} AND bucket < {mark} AND {dims}",  # noqa: S608
            (day * _DAY_HOURS, (day + 1) * _DAY_HOURS, *values),
        )
        merged: dict[int, int] = {}
        for hour, blob in cursor.fetchall():
            counts = decode(bytes(blob))
            cursor.execute(
                f"UPDATE rollup_hour SET sketch = {mark} WHERE bucket = {mark} AND {dims}",  # noqa: S608
                (encode(counts), hour, *values),
            )
            for b, n in counts.items():
                merged[b] = merged.get(b, 0) + n
        cursor.execute(
            f"UPDATE rollup_day SET sketch = {mark}, sketch_version = {mark} "  # noqa: S608
            f"WHERE bucket = {mark} AND {dims}",
            (encode(merged), version, day, *values),
        )
    return len(stale)


# --- rebuilding from the runs ---------------------------------------------------------------------


def rebuild_days(cursor: Any, dialect: str, first_day: int, last_day: int) -> int:
    """Rebuild every cell of the UTC days [first_day, last_day] from the runs; the runs read."""
    start, end = first_day * DAY_SECONDS, (last_day + 1) * DAY_SECONDS
    mark = "?" if dialect == "sqlite" else "%s"
    _lock(cursor, dialect)
    for grain, table in schema.ROLLUPS.items():
        cursor.execute(
            f"DELETE FROM {table.name} WHERE bucket >= {mark} AND bucket < {mark}",  # noqa: S608
            (start // grain, end // grain),
        )
    cursor.execute(
        f"SELECT {', '.join(INPUTS)} FROM runs WHERE ended_at >= {mark} AND ended_at < {mark}",  # noqa: S608
        (float(start), float(end)),
    )
    rows = cursor.fetchall()
    _write(cursor, dialect, grains(rows), removing=False)
    while compact(cursor, dialect, days=range(first_day, last_day + 1)):
        pass
    return len(rows)
