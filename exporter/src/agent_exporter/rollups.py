"""Rollups: the runs folded per UTC hour and per dimension in the writer's transaction, and per
UTC day and week by compaction.

An hour cell (`rollup_hour`) holds, for one hour and one combination of the dimensions
(`schema.ROLLUP_DIMENSIONS`), the facts of `schema.ROLLUP_FACTS` and a duration sketch
(`sketch.py`). The store folds each committed group of new runs into hour cells in Python (`add`,
a loop written out from the facts) and writes them with one upsert that reads nothing: sums add
up, extremes keep the extreme, the sketch is appended to; the same commit writes the coarse hour
cells (`rollup_hour_coarse`) and the five-minute edge cells (`rollup_edge`, `edges`) of the same
runs. A late run of a closed hour lands in its hour like any other. The days written to are marked
dirty; `compact` makes their day cells (`rollup_day`) from the hours, and until it has, reads take
those days from the hours. Making a day's cells marks its week; `compact` then makes the week's
cells (`rollup_week`) from its days, once the week is over and none of its days is dirty, and until
then reads take it from its days.

Repricing and deleting runs take their old contribution back out (`remove`): sums subtract, the
sketch gets negative counts appended, and the minima and maxima of the cells touched are looked up
again from the runs. Retention deletes runs without touching the rollups, the history, but for the
edge cells before its cut (`Store.delete_ended_before`).

The statements go to the DB-API cursor of the caller's transaction (sqlite3 or psycopg). On
PostgreSQL a transaction-level advisory lock orders the rollup step of concurrent writers
(replicas) and compaction, and cells are written in key order.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any, Final

from . import schema
from .record import Run
from .schema import (
    COARSE_DIMENSIONS,
    DAY_SECONDS,
    EDGE_DIMENSIONS,
    EDGE_SECONDS,
    HOUR_SECONDS,
    ROLLUP_DIMENSIONS,
    ROLLUP_FACTS,
    WEEK_ORIGIN,
    WEEK_SECONDS,
    Kind,
)
from .sketch import Bin, add_bin, bucket_of, decode, encode

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
#: the key of the coarse hour cells, and where each of its columns is in a full cell's key
_COARSE_KEY: Final = ("bucket", *COARSE_DIMENSIONS)
_COARSE_AT: Final = tuple(_KEY.index(k) for k in _COARSE_KEY)
#: table -> (its key, its grain in seconds, its dimensions) of the cells the writer upserts
_WRITTEN: Final = {
    schema.rollup_hour.name: (_KEY, HOUR_SECONDS, ROLLUP_DIMENSIONS),
    schema.rollup_hour_coarse.name: (_COARSE_KEY, HOUR_SECONDS, COARSE_DIMENSIONS),
    schema.rollup_edge.name: (("bucket", *EDGE_DIMENSIONS), EDGE_SECONDS, EDGE_DIMENSIONS),
}
#: keys of the cells touched by one statement: SQLite allows 32,766 parameters
_CHUNK: Final = 500
#: any constant: the PostgreSQL advisory lock the rollup step takes
_PG_LOCK: Final = 0x726F6C6C7570

Key = tuple[Any, ...]  # (bucket, *dimensions)
Cell = list[Any]  # the facts in ROLLUP_FACTS order, then the sketch's {bucket: [count, sum]}


def inputs_of(row: Mapping[Any, Any]) -> tuple[Any, ...]:
    """A row mapping of the runs table in `INPUTS` order."""
    return tuple(row[name] for name in INPUTS)


def _compile(
    attributes: bool, dimensions: tuple[str, ...] = ROLLUP_DIMENSIONS
) -> Callable[[Iterable[Any], dict[Key, Cell], int], None]:
    """The loop that folds runs into cells keyed on `dimensions`, written out from `ROLLUP_FACTS`:
    a statement per fact instead of a loop over them (this runs for every run stored, in the
    writer's thread).

    With `attributes` it reads `record.Run` objects, otherwise rows in `INPUTS` order.
    """
    enums = {"status", "cost_source"}

    def read(name: str) -> str:
        if not attributes:
            return f"r[{_AT[name]}]"
        return f"r.{name}.value" if name in enums else f"r.{name}"

    # a missing dimension is '' in the key; a run always has an agent, a status and a cost_source
    dims = ", ".join(
        read(d) if attributes and d in ("agent", *enums) else f"{read(d)} or ''" for d in dimensions
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
        f"        d = {read('duration_seconds')}",
        "        b = bucket_of(d)",
        "        e = c[-1].get(b)",
        "        if e is None: c[-1][b] = [1, d]",
        "        else: e[0] += 1; e[1] += d",
    ]
    namespace: dict[str, Any] = {"bucket_of": bucket_of}
    exec(compile("\n".join(lines), f"<rollups fold {'runs' if attributes else 'rows'}>", "exec"), namespace)  # noqa: S102
    fold: Callable[[Iterable[Any], dict[Key, Cell], int], None] = namespace["fold"]
    return fold


_FOLD_RUNS: Final = _compile(attributes=True)
_FOLD_ROWS: Final = _compile(attributes=False)
_FOLD_EDGE_RUNS: Final = _compile(attributes=True, dimensions=EDGE_DIMENSIONS)
_FOLD_EDGE_ROWS: Final = _compile(attributes=False, dimensions=EDGE_DIMENSIONS)


def accumulate(items: Iterable[Any], grain: int = HOUR_SECONDS, *, runs: bool = False) -> dict[Key, Cell]:
    """The cells of `grain` seconds that `items` make: `record.Run` objects with `runs`, otherwise
    rows in `INPUTS` order."""
    cells: dict[Key, Cell] = {}
    (_FOLD_RUNS if runs else _FOLD_ROWS)(items, cells, grain)
    return cells


def edges(items: Iterable[Any], *, runs: bool = False) -> dict[Key, Cell]:
    """The edge cells (`schema.rollup_edge`: five minutes, `EDGE_DIMENSIONS`) that `items` make."""
    cells: dict[Key, Cell] = {}
    (_FOLD_EDGE_RUNS if runs else _FOLD_EDGE_ROWS)(items, cells, EDGE_SECONDS)
    return cells


# --- statements -----------------------------------------------------------------------------------


def _marks(dialect: str, count: int) -> str:
    mark = "?" if dialect == "sqlite" else "%s"
    return ", ".join([mark] * count)


@lru_cache(maxsize=256)
def _upsert(dialect: str, rows: int, *, removing: bool, table: str) -> str:
    """One statement that adds `rows` cells to `table` (or takes them out), reading nothing: sums
    add up, minima and maxima keep the extreme (a removal leaves them to `_drop_empty_and_refresh`),
    the sketch is appended to."""
    key = _WRITTEN[table][0]
    columns = (*key, *_FACT_NAMES, "sketch")
    least, greatest = ("min", "max") if dialect == "sqlite" else ("LEAST", "GREATEST")
    sets = []
    for f in ROLLUP_FACTS:
        if f.additive:
            sets.append(f"{f.name} = {table}.{f.name} + excluded.{f.name}")
        elif not removing:
            pick = least if f.kind is Kind.MIN else greatest
            sets.append(f"{f.name} = {pick}({table}.{f.name}, excluded.{f.name})")
    # SQLite's || makes text of two blobs: the cast takes the bytes back as they are
    concat = f"{table}.sketch || excluded.sketch"
    sets.append(f"sketch = CAST({concat} AS BLOB)" if dialect == "sqlite" else f"sketch = {concat}")
    row = f"({_marks(dialect, len(columns))})"
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([row] * rows)} "  # noqa: S608
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {', '.join(sets)}"
    )


@lru_cache(maxsize=64)
def _dirty(dialect: str, days: int) -> str:
    row = f"({_marks(dialect, 1)}, 1)"
    return (
        f"INSERT INTO rollup_dirty_days (day, writes) VALUES {', '.join([row] * days)} "  # noqa: S608
        "ON CONFLICT (day) DO UPDATE SET writes = rollup_dirty_days.writes + 1"
    )


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _flat(rows: Iterable[Sequence[Any]]) -> list[Any]:
    return [v for row in rows for v in row]


def _lock(cursor: Any, dialect: str) -> None:
    if dialect == "postgresql":
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_LOCK,))


def add(cursor: Any, dialect: str, runs: Sequence[Run]) -> None:
    """Fold newly stored runs into the rollups, in the caller's transaction."""
    _write(cursor, dialect, accumulate(runs, runs=True), edges(runs, runs=True), removing=False)


def remove(cursor: Any, dialect: str, rows: Iterable[Mapping[Any, Any]]) -> None:
    """Take runs out of the rollups, given their rows as they were stored, after the runs table
    changed (the runs deleted or updated) in the caller's transaction."""
    inputs = [inputs_of(r) for r in rows]
    _write(cursor, dialect, accumulate(inputs), edges(inputs), removing=True)


def add_rows(cursor: Any, dialect: str, rows: Iterable[Mapping[Any, Any]]) -> None:
    """`add` for runs given as row mappings of the runs table (a repriced run's new row)."""
    inputs = [inputs_of(r) for r in rows]
    _write(cursor, dialect, accumulate(inputs), edges(inputs), removing=False)


def coarsen(cells: Mapping[Key, Cell]) -> dict[Key, Cell]:
    """The coarse hour cells that hour cells fold into (`schema.COARSE_DIMENSIONS`)."""
    out: dict[Key, Cell] = {}
    for key, cell in cells.items():
        _fold_cell(out, tuple(key[i] for i in _COARSE_AT), list(cell[:-1]), cell[-1])
    return out


def _write(
    cursor: Any, dialect: str, cells: Mapping[Key, Cell], edge_cells: Mapping[Key, Cell], *, removing: bool
) -> None:
    """Write hour cells, their coarse hour cells and the same runs' edge cells, and mark their days
    for compaction."""
    if not cells:
        return
    _lock(cursor, dialect)
    tables = (schema.rollup_hour, schema.rollup_hour_coarse, schema.rollup_edge)
    for table, written in zip(tables, (cells, coarsen(cells), edge_cells), strict=True):
        keys = sorted(written)  # the same order in every writer: no deadlock between replicas
        rows = []
        for key in keys:
            cell = written[key]
            bins, facts = cell[-1], cell[:-1]
            if removing:
                bins = {b: (-n, -t) for b, (n, t) in bins.items()}
                facts = [-v if f.additive else v for f, v in zip(ROLLUP_FACTS, facts, strict=True)]
            rows.append((*key, *facts, encode(bins)))
        for chunk in _chunks(rows):
            cursor.execute(_upsert(dialect, len(chunk), removing=removing, table=table.name), _flat(chunk))
        if removing:
            _drop_empty_and_refresh(cursor, dialect, keys, table.name)
    days = sorted({key[0] // _DAY_HOURS for key in cells})
    cursor.execute(_dirty(dialect, len(days)), days)


def _drop_empty_and_refresh(cursor: Any, dialect: str, keys: Sequence[Key], table: str) -> None:
    """Delete the cells of `table` among `keys` left without runs; look the others' minima and
    maxima up again from the runs (all of a cell's runs are there: retention deletes whole days)."""
    key, grain, dimensions = _WRITTEN[table]
    mark = "?" if dialect == "sqlite" else "%s"
    match = " AND ".join(f"{k} = {mark}" for k in key)
    extremes = [f for f in ROLLUP_FACTS if not f.additive]
    runs_match = " AND ".join(
        f"coalesce(r.{d}, '') = t.{d}" if d not in ("agent", "status", "cost_source") else f"r.{d} = t.{d}"
        for d in dimensions
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
_WEEK_DAYS: Final = WEEK_SECONDS // DAY_SECONDS
#: the day (counted from the epoch) that week 0 begins on
_FIRST_MONDAY: Final = WEEK_ORIGIN // DAY_SECONDS


def week_of(day: int) -> int:
    """The week (Monday to Sunday, counted from `schema.WEEK_ORIGIN`) that `day` is in."""
    return (day - _FIRST_MONDAY) // _WEEK_DAYS


def first_day_of(week: int) -> int:
    """The Monday of `week`, as a day counted from the epoch."""
    return week * _WEEK_DAYS + _FIRST_MONDAY


def compact(cursor: Any, dialect: str, *, limit: int = 10, days: Iterable[int] = ()) -> int:
    """Make the day cells of up to `limit` dirty days (or of the given `days`, if dirty) from their
    hours' cells, normalising the hours' appended sketches on the way; then, unless `days` are
    given, the week cells of up to `limit` weeks whose days are all made. The days and weeks made."""
    wanted = list(days)
    made = _compact_days(cursor, dialect, limit=limit, days=wanted)
    return made if wanted else made + compact_weeks(cursor, dialect, limit=limit)


def _compact_days(cursor: Any, dialect: str, *, limit: int, days: Sequence[int]) -> int:
    mark = "?" if dialect == "sqlite" else "%s"
    _lock(cursor, dialect)
    if days:
        cursor.execute(
            f"SELECT day, writes FROM rollup_dirty_days WHERE day IN ({_marks(dialect, len(days))})",  # noqa: S608
            list(days),
        )
    else:
        cursor.execute(f"SELECT day, writes FROM rollup_dirty_days ORDER BY day DESC LIMIT {int(limit)}")  # noqa: S608
    dirty = cursor.fetchall()
    for day, writes in dirty:
        first, last = day * _DAY_HOURS, (day + 1) * _DAY_HOURS
        source, target = schema.rollup_hour.name, schema.rollup_day.name
        _remake(cursor, dialect, source=source, target=target, bucket=day, span=(first, last), merge=True)
        _normalise(cursor, dialect, schema.rollup_hour_coarse.name, (first, last))
        per_hour = HOUR_SECONDS // EDGE_SECONDS
        span = (first * per_hour, last * per_hour)
        _normalise(cursor, dialect, schema.rollup_edge.name, span, longer_than=EDGE_SKETCH_BYTES)
        cursor.execute(
            f"DELETE FROM rollup_dirty_days WHERE day = {mark} AND writes = {mark}",  # noqa: S608
            (day, writes),
        )
    mark_weeks(cursor, dialect, {week_of(int(day)) for day, _ in dirty})
    return len(dirty)


def _remake(
    cursor: Any, dialect: str, *, source: str, target: str, bucket: int, span: tuple[int, int], merge: bool
) -> None:
    """Replace the cells of the table `target` at `bucket` with the fold of the cells of the table
    `source` in the buckets [span); with `merge`, store back each source cell's appended sketch
    merged."""
    mark = "?" if dialect == "sqlite" else "%s"
    cursor.execute(f"DELETE FROM {target} WHERE bucket = {mark}", (bucket,))  # noqa: S608
    cursor.execute(
        f"SELECT {', '.join(_KEY)}, {', '.join(_FACT_NAMES)}, sketch FROM {source} "  # noqa: S608
        f"WHERE bucket >= {mark} AND bucket < {mark}",
        span,
    )
    update = _sketch_update(dialect, source, _KEY)
    cells: dict[Key, Cell] = {}
    for row in cursor.fetchall():
        key = row[: len(_KEY)]
        counts = _merged(cursor, update, key, row[-1]) if merge else decode(bytes(row[-1]))
        _fold_cell(cells, (bucket, *key[1:]), list(row[len(_KEY) : -1]), counts)
    _insert(cursor, dialect, target, cells)


def _sketch_update(dialect: str, table: str, key: Sequence[str]) -> str:
    mark = "?" if dialect == "sqlite" else "%s"
    match = " AND ".join(f"{k} = {mark}" for k in key)
    return f"UPDATE {table} SET sketch = {mark} WHERE {match}"  # noqa: S608


def _merged(cursor: Any, update: str, key: Sequence[Any], blob: Any) -> dict[int, Bin]:
    """A cell's sketch decoded, and stored back merged (an entry per bucket) if it had appended parts."""
    counts = decode(bytes(blob))
    normal = encode(counts)
    if len(normal) != len(blob):
        cursor.execute(update, (normal, *key))
    return counts


#: an edge cell's sketch is merged by compaction once it is longer than this: the five minutes that
#: runs are arriving in get an append per commit (at a thousand runs a commit, a few hundred bytes
#: each), and an edge cell is read far less often than the day's cells are remade
EDGE_SKETCH_BYTES: Final = 4096


def _normalise(cursor: Any, dialect: str, table: str, span: tuple[int, int], *, longer_than: int = 0) -> None:
    """Merge the appended sketches of the cells of `table` in the buckets [span) (those longer than
    `longer_than` bytes)."""
    mark = "?" if dialect == "sqlite" else "%s"
    key = _WRITTEN[table][0]
    cursor.execute(
        f"SELECT {', '.join(key)}, sketch FROM {table} "  # noqa: S608
        f"WHERE bucket >= {mark} AND bucket < {mark} AND length(sketch) > {int(longer_than)}",
        span,
    )
    update = _sketch_update(dialect, table, key)
    for row in cursor.fetchall():
        _merged(cursor, update, row[:-1], row[-1])


def mark_weeks(cursor: Any, dialect: str, weeks: Iterable[int]) -> None:
    """Note that the week cells of `weeks` are to be made again (their days changed)."""
    mark = "?" if dialect == "sqlite" else "%s"
    for week in sorted(weeks):
        cursor.execute(
            f"INSERT INTO rollup_dirty_weeks (week, writes) VALUES ({mark}, 1) "  # noqa: S608
            "ON CONFLICT (week) DO UPDATE SET writes = rollup_dirty_weeks.writes + 1",
            (week,),
        )


def current_week(now: float | None = None) -> int:
    """The week that `now` (default: the clock) is in."""
    return week_of(int((time.time() if now is None else now) // DAY_SECONDS))


def compact_weeks(cursor: Any, dialect: str, *, limit: int = 10, now: float | None = None) -> int:
    """Make the week cells of up to `limit` weeks marked for it that are over (before the week of
    `now`) and whose days all have their cells (no day of theirs dirty), from those days' cells;
    the weeks made. The current week is read from its days: its cells would be made again at
    every compaction while runs arrive."""
    mark = "?" if dialect == "sqlite" else "%s"
    _lock(cursor, dialect)
    monday = f"w.week * {_WEEK_DAYS} + {_FIRST_MONDAY}"
    cursor.execute(
        "SELECT w.week, w.writes FROM rollup_dirty_weeks AS w WHERE NOT EXISTS "  # noqa: S608
        f"(SELECT 1 FROM rollup_dirty_days AS d WHERE d.day >= {monday} AND d.day < {monday} + {_WEEK_DAYS}) "
        f"AND w.week < {int(current_week(now))} ORDER BY w.week DESC LIMIT {int(limit)}"
    )
    ready = cursor.fetchall()
    for week, writes in ready:
        first = first_day_of(int(week))
        source, target = schema.rollup_day.name, schema.rollup_week.name
        span = (first, first + _WEEK_DAYS)
        _remake(cursor, dialect, source=source, target=target, bucket=week, span=span, merge=False)
        cursor.execute(
            f"DELETE FROM rollup_dirty_weeks WHERE week = {mark} AND writes = {mark}",  # noqa: S608
            (week, writes),
        )
    return len(ready)


def _insert(cursor: Any, dialect: str, table: str, cells: Mapping[Key, Cell]) -> None:
    """Insert made cells, in key order."""
    rows = [(*key, *cell[:-1], encode(cell[-1])) for key, cell in sorted(cells.items())]
    insert = f"INSERT INTO {table} ({', '.join(_COLUMNS)}) VALUES ({_marks(dialect, len(_COLUMNS))})"  # noqa: S608
    if rows:
        cursor.executemany(insert, rows)


def _fold_cell(cells: dict[Key, Cell], key: Key, facts: list[Any], bins: Mapping[int, Bin]) -> None:
    into = cells.get(key)
    if into is None:
        cells[key] = [*facts, {b: list(e) for b, e in bins.items()}]
        return
    for i, (kind, _) in enumerate(_PLAN):
        if kind is Kind.MIN:
            into[i] = min(into[i], facts[i])
        elif kind is Kind.MAX:
            into[i] = max(into[i], facts[i])
        else:
            into[i] += facts[i]
    for b, (n, t) in bins.items():
        add_bin(into[-1], b, n, t)


# --- rebuilding from the runs ---------------------------------------------------------------------


def rebuild_days(cursor: Any, dialect: str, first_day: int, last_day: int) -> int:
    """Rebuild every cell of the UTC days [first_day, last_day] from the runs; the runs read."""
    start, end = first_day * DAY_SECONDS, (last_day + 1) * DAY_SECONDS
    mark = "?" if dialect == "sqlite" else "%s"
    _lock(cursor, dialect)
    grains = {
        schema.rollup_day.name: DAY_SECONDS,
        **{name: grain for name, (_, grain, _) in _WRITTEN.items()},
    }
    for table, grain in grains.items():
        cursor.execute(
            f"DELETE FROM {table} WHERE bucket >= {mark} AND bucket < {mark}",  # noqa: S608
            (start // grain, end // grain),
        )
    cursor.execute(
        f"SELECT {', '.join(INPUTS)} FROM runs WHERE ended_at >= {mark} AND ended_at < {mark}",  # noqa: S608
        (float(start), float(end)),
    )
    rows = cursor.fetchall()
    _write(cursor, dialect, accumulate(rows), edges(rows), removing=False)
    compact(cursor, dialect, days=range(first_day, last_day + 1))
    # a day left without runs made no cells and was not compacted: its week is stale all the same
    mark_weeks(cursor, dialect, {week_of(day) for day in range(first_day, last_day + 1)})
    return len(rows)
