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
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any, Final

from . import schema
from .schema import DAY_SECONDS, HOUR_SECONDS, ROLLUP_DIMENSIONS, ROLLUP_FACTS, Kind
from .sketch import bucket_of, encode, merge

log = logging.getLogger(__name__)

#: the run columns a cell is made of, in the order `accumulate` reads them
INPUTS: Final = (
    "ended_at",
    *ROLLUP_DIMENSIONS,
    *dict.fromkeys(c for f in ROLLUP_FACTS for c in f.source if c not in ("ended_at", "duration_seconds")),
    "duration_seconds",
)
_AT: Final = {name: i for i, name in enumerate(INPUTS)}
_DIMS: Final = len(ROLLUP_DIMENSIONS)
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


def inputs_of(run: Any) -> tuple[Any, ...]:
    """A run's values in `INPUTS` order (a `record.Run`, or a row mapping of the runs table)."""
    if isinstance(run, Mapping):
        return tuple(run[name] for name in INPUTS)
    return tuple(getattr(run, name) for name in INPUTS)


def _empty() -> Cell:
    cell: Cell = [None if kind in (Kind.MIN, Kind.MAX) else 0 for kind, _ in _PLAN]
    cell.append({})
    return cell


def accumulate(rows: Iterable[Sequence[Any]], grain: int = HOUR_SECONDS) -> dict[Key, Cell]:
    """The cells of `grain` seconds that `rows` (in `INPUTS` order) make."""
    cells: dict[Key, Cell] = {}
    for row in rows:
        key = (int(row[0] // grain), *[v if v is not None else "" for v in row[1 : 1 + _DIMS]])
        cell = cells.get(key)
        if cell is None:
            cell = cells[key] = _empty()
        for i, (kind, at) in enumerate(_PLAN):
            if kind is Kind.COUNT:
                cell[i] += 1
            elif kind is Kind.SUM:
                value = row[at[0]]
                if value is not None:
                    cell[i] += value
            elif kind is Kind.PRESENT:
                for a in at:
                    if row[a] is not None:
                        cell[i] += 1
                        break
            else:
                value = row[at[0]]
                if value is not None and (
                    cell[i] is None or (value < cell[i] if kind is Kind.MIN else value > cell[i])
                ):
                    cell[i] = value
        bins = cell[-1]
        b = bucket_of(row[_DURATION])
        bins[b] = bins.get(b, 0) + 1
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


def grains(rows: Iterable[Sequence[Any]]) -> dict[int, dict[Key, Cell]]:
    """The hour and day cells of `rows`."""
    hours = accumulate(rows, HOUR_SECONDS)
    return {HOUR_SECONDS: hours, DAY_SECONDS: coarsen(hours, DAY_SECONDS // HOUR_SECONDS)}


# --- statements -----------------------------------------------------------------------------------


def _marks(dialect: str, count: int) -> str:
    mark = "?" if dialect == "sqlite" else "%s"
    return ", ".join([mark] * count)


@lru_cache(maxsize=256)
def _select_sketches(dialect: str, table: str, keys: int) -> str:
    row = f"({_marks(dialect, len(_KEY))})"
    on = " AND ".join(f"t.{k} = v.column{i + 1}" for i, k in enumerate(_KEY))
    picked = ", ".join(f"t.{k}" for k in _KEY)
    extremes = ", ".join(f"t.{f.name}" for f in ROLLUP_FACTS if not f.additive)
    return (
        f"SELECT {picked}, t.sketch, {extremes} FROM (VALUES {', '.join([row] * keys)}) AS v "  # noqa: S608
        f"JOIN {table} AS t ON {on}"
    )


@lru_cache(maxsize=256)
def _upsert(dialect: str, table: str, rows: int, *, removing: bool) -> str:
    least, greatest = ("min", "max") if dialect == "sqlite" else ("LEAST", "GREATEST")
    sets = []
    for f in ROLLUP_FACTS:
        if f.additive:
            sets.append(f"{f.name} = {table}.{f.name} + excluded.{f.name}")
        elif removing:  # looked up again once the runs are gone (`_refresh_extremes`)
            continue
        else:
            pick = least if f.kind is Kind.MIN else greatest
            sets.append(f"{f.name} = {pick}({table}.{f.name}, excluded.{f.name})")
    sets.append("sketch = excluded.sketch")
    row = f"({_marks(dialect, len(_COLUMNS))})"
    return (
        f"INSERT INTO {table} ({', '.join(_COLUMNS)}) VALUES {', '.join([row] * rows)} "  # noqa: S608
        f"ON CONFLICT ({', '.join(_KEY)}) DO UPDATE SET {', '.join(sets)}"
    )


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _flat(rows: Iterable[Sequence[Any]]) -> list[Any]:
    return [v for row in rows for v in row]


def _stored(cursor: Any, dialect: str, table: str, keys: Sequence[Key]) -> dict[Key, tuple[Any, ...]]:
    """The stored sketch and extremes of the cells among `keys` that exist."""
    found: dict[Key, tuple[Any, ...]] = {}
    for chunk in _chunks(keys):
        cursor.execute(_select_sketches(dialect, table, len(chunk)), _flat(chunk))
        for row in cursor.fetchall():
            found[tuple(row[: len(_KEY)])] = tuple(row[len(_KEY) :])
    return found


def _lock(cursor: Any, dialect: str) -> None:
    if dialect == "postgresql":
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_LOCK,))


def add(cursor: Any, dialect: str, runs: Iterable[Any]) -> None:
    """Fold `runs` (newly stored, `record.Run` or row mappings) into the rollups, in the caller's
    transaction."""
    _write(cursor, dialect, grains(inputs_of(r) for r in runs), removing=False)


def remove(cursor: Any, dialect: str, rows: Iterable[Mapping[Any, Any]]) -> None:
    """Take runs out of the rollups, given their rows as they were stored, after the runs table
    changed (the runs deleted or updated) in the caller's transaction."""
    _write(cursor, dialect, grains(inputs_of(r) for r in rows), removing=True)


def _write(cursor: Any, dialect: str, by_grain: Mapping[int, Mapping[Key, Cell]], *, removing: bool) -> None:
    if not any(by_grain.values()):
        return
    _lock(cursor, dialect)
    for grain, cells in by_grain.items():
        table = schema.ROLLUPS[grain].name
        keys = sorted(cells)
        stored = _stored(cursor, dialect, table, keys)
        rows = []
        for key in keys:
            cell = cells[key]
            bins = cell[-1]
            facts = cell[:-1]
            if removing:
                bins = {b: -n for b, n in bins.items()}
                facts = [-v if f.additive else v for f, v in zip(ROLLUP_FACTS, facts, strict=True)]
            old = stored.get(key)
            if removing and old is None:
                log.warning("a run removed from %s had no cell there: %s", table, key)
                continue
            blob = merge(old[0], bins) if old is not None else encode(bins)
            rows.append((*key, *facts, blob))
        for chunk in _chunks(rows):
            cursor.execute(_upsert(dialect, table, len(chunk), removing=removing), _flat(chunk))
        if removing:
            _drop_empty_and_refresh(cursor, dialect, table, grain, [r[: len(_KEY)] for r in rows])


def _drop_empty_and_refresh(cursor: Any, dialect: str, table: str, grain: int, keys: Sequence[Key]) -> None:
    """Delete the cells among `keys` left without runs; look the others' minima and maxima up
    again from the runs (all of a cell's runs are there: retention deletes whole days)."""
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
    return len(rows)
