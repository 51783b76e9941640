"""The read side of the store: run history, aggregates, percentiles and health facts, in SQL.

Everything is computed by the database, on SQLite and PostgreSQL alike: counts and sums by
`GROUP BY`, time buckets by arithmetic on the epoch seconds of `ended_at`, percentiles by
`percentile_cont` on PostgreSQL and by `ROW_NUMBER()` / `COUNT(*)` window functions on SQLite
(which has no percentile function), fetching only the two rows around each percentile. Python
receives a few rows per group, never a row per run.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

from sqlalchemy import (
    ColumnElement,
    Connection,
    Float,
    Integer,
    RowMapping,
    Select,
    Table,
    case,
    cast,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    tuple_,
    union_all,
)

from . import schema
from .analytics import PERCENTILES, interpolate, percentile_rank
from .record import FAILED_STATUSES, Status

R: Final = schema.runs

#: the run fields that `group_by` and the dimension filters accept
DIMENSIONS: Final = ("agent", "model", "provider", "issue_type", "status", "project", "team", "environment")
#: the statuses of a failed run (`record.FAILED_STATUSES`); `cancelled` is neither success nor failure
FAILED: Final = tuple(s.value for s in FAILED_STATUSES)


@dataclass(frozen=True, slots=True)
class RunFilter:
    """Which runs a query looks at: a half-open range of `ended_at` and dimension values.

    Within a dimension the values are alternatives (`agent` fixer or reviewer); across dimensions
    all must hold. An empty tuple does not filter.
    """

    start: float | None = None  # ended_at >= start (Unix seconds)
    end: float | None = None  # ended_at < end
    dimensions: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @classmethod
    def of(cls, start: float | None = None, end: float | None = None, **values: Sequence[str]) -> RunFilter:
        """A filter from keyword lists: `RunFilter.of(agent=["fixer"], status=["failure"])`."""
        unknown = set(values) - set(DIMENSIONS)
        if unknown:
            raise ValueError(f"not filterable: {', '.join(sorted(unknown))}")
        dims = tuple((name, tuple(values[name])) for name in DIMENSIONS if values.get(name))
        return cls(start, end, dims)

    def narrowed(self, start: float | None = None, end: float | None = None) -> RunFilter:
        """The same filter on the intersection of its range and [start, end)."""
        new_start = self.start if start is None else start if self.start is None else max(self.start, start)
        new_end = self.end if end is None else end if self.end is None else min(self.end, end)
        return replace(self, start=new_start, end=new_end)

    def values(self, name: str) -> tuple[str, ...]:
        """The values asked for dimension `name` (empty: not filtered)."""
        return dict(self.dimensions).get(name, ())

    def conditions(self, table: Table = R) -> list[ColumnElement[bool]]:
        """The WHERE conditions on `table` (the runs table or an alias of it)."""
        c = table.c
        conds: list[ColumnElement[bool]] = []
        if self.start is not None:
            conds.append(c.ended_at >= self.start)
        if self.end is not None:
            conds.append(c.ended_at < self.end)
        for name, wanted in self.dimensions:
            column = c[name]
            conds.append(column == wanted[0] if len(wanted) == 1 else column.in_(wanted))
        return conds


# ---------------------------------------------------------------------------------------------
# run history


LIST_COLUMNS: Final = (
    "run_id",
    "agent",
    "agent_version",
    "model",
    "provider",
    "issue_type",
    "project",
    "team",
    "environment",
    "status",
    "started_at",
    "ended_at",
    "duration_seconds",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cost_usd",
    "cost_source",
    "llm_calls",
    "tool_calls",
    "retries",
    "error_type",
    "error_summary",
)


def list_runs(
    conn: Connection, flt: RunFilter, *, limit: int, after: tuple[float, str] | None = None
) -> list[RowMapping]:
    """Up to `limit` runs, newest first by (`ended_at`, `run_id`), strictly after the keyset `after`.

    Keyset pagination: the page after a cursor costs the same as the first, however deep.
    """
    query = select(*(R.c[name] for name in LIST_COLUMNS)).where(*flt.conditions())
    if after is not None:
        ended_at, run_id = after
        # a row-value comparison: both databases turn it into one range of (ended_at, run_id)
        query = query.where(tuple_(R.c.ended_at, R.c.run_id) < tuple_(ended_at, run_id))
    query = query.order_by(R.c.ended_at.desc(), R.c.run_id.desc()).limit(limit)
    return list(conn.execute(query).mappings())


@dataclass(frozen=True, slots=True)
class RunDetail:
    """One stored run with its breakdowns, as stored."""

    run: RowMapping
    usage: list[RowMapping]
    tools: list[RowMapping]
    phases: list[RowMapping]


def get_run(conn: Connection, run_id: str) -> RunDetail | None:
    """The run stored under `run_id` with its per-model usage, tools and phases, or None."""
    row = conn.execute(select(R).where(R.c.run_id == run_id)).mappings().first()
    if row is None:
        return None

    def children(table: Table) -> list[RowMapping]:
        query = select(table).where(table.c.run_id == run_id).order_by(table.c.position)
        return list(conn.execute(query).mappings())

    return RunDetail(row, children(schema.run_usage), children(schema.run_tools), children(schema.run_phases))


#: the orders a run listing can take, each (the value sorted on, the condition of a run without it)
SORTS: Final[dict[str, Callable[[], tuple[ColumnElement[Any], ColumnElement[bool] | None]]]] = {
    "ended_at": lambda: (R.c.ended_at, None),
    "duration_seconds": lambda: (R.c.duration_seconds, None),
    "cost_usd": lambda: (R.c.cost_usd, R.c.cost_usd.is_(None)),
    "total_tokens": lambda: (
        func.coalesce(R.c.input_tokens, 0) + func.coalesce(R.c.output_tokens, 0),
        R.c.input_tokens.is_(None) & R.c.output_tokens.is_(None),
    ),
    "llm_calls": lambda: (R.c.llm_calls, R.c.llm_calls.is_(None)),
    "tool_calls": lambda: (R.c.tool_calls, R.c.tool_calls.is_(None)),
}


def list_runs_sorted(
    conn: Connection, flt: RunFilter, *, sort: str, descending: bool, limit: int, offset: int
) -> list[RowMapping]:
    """Up to `limit` runs ordered by `sort` (a key of SORTS), skipping `offset`; ties newest first.

    Runs without the value (a cost nobody knows) come last either way. An offset page: newest first
    walks the (ended_at, run_id) index; any other order reads the whole filtered range, so narrow
    the range for speed.
    """
    key, missing = SORTS[sort]()
    order: list[ColumnElement[Any]] = [] if missing is None else [case((missing, 1), else_=0)]
    if sort == "ended_at":  # the index's own order: no sort at all
        order += [R.c.ended_at.desc(), R.c.run_id.desc()] if descending else [R.c.ended_at, R.c.run_id]
    else:
        order += [key.desc() if descending else key.asc(), R.c.ended_at.desc(), R.c.run_id.desc()]
    query = (
        select(*(R.c[name] for name in LIST_COLUMNS))
        .where(*flt.conditions())
        .order_by(*order)
        .offset(offset)
        .limit(limit)
    )
    return list(conn.execute(query).mappings())


def count_runs(conn: Connection, flt: RunFilter) -> int:
    """How many runs the filter matches (a count over an index range)."""
    return int(conn.execute(select(func.count()).select_from(R).where(*flt.conditions())).scalar_one())


def adjacent_run(
    conn: Connection, flt: RunFilter, key: tuple[float, str], *, newer: bool, failed: bool = False
) -> str | None:
    """The run_id of the filtered run just newer (or older) than the keyset `key` (ended_at, run_id).

    With `failed`, only failed runs (failure, error, timeout) count: the previous and next failure.
    """
    position = tuple_(R.c.ended_at, R.c.run_id)
    query = select(R.c.run_id).where(*flt.conditions(), position > key if newer else position < key)
    if failed:
        query = query.where(R.c.status.in_(FAILED))
    order = (R.c.ended_at.asc(), R.c.run_id.asc()) if newer else (R.c.ended_at.desc(), R.c.run_id.desc())
    found: str | None = conn.execute(query.order_by(*order).limit(1)).scalar()
    return found


#: dimensions with an index that leads with them: their distinct values cost a probe each
_INDEXED: Final = frozenset({"agent", "model", "status", "issue_type", "project"})
#: the newest runs looked at for the values of a dimension without such an index
RECENT_SAMPLE: Final = 5_000


def dimension_values(conn: Connection, name: str, *, limit: int) -> list[str]:
    """Up to `limit` distinct non-empty values of dimension `name`, sorted.

    An indexed dimension is read by a skip scan (the next value after the last one, one index probe
    each: milliseconds at any size); another one from the newest RECENT_SAMPLE runs.
    """
    column = R.c[name]
    if name in _INDEXED:
        first = select(func.min(column)).scalar_subquery()
        walk = select(first.label("value")).cte("walk", recursive=True)
        following = select(func.min(column)).where(column > walk.c.value).scalar_subquery()
        walk = walk.union_all(select(following).where(walk.c.value.is_not(None)))
        query = select(walk.c.value).where(walk.c.value.is_not(None)).limit(limit)
        return [str(v) for v in conn.execute(query).scalars()]
    recent = (
        select(column.label("value")).order_by(R.c.ended_at.desc()).limit(RECENT_SAMPLE).subquery("recent")
    )
    query = (
        select(recent.c.value)
        .where(recent.c.value.is_not(None))
        .distinct()
        .order_by(recent.c.value)
        .limit(limit)
    )
    return [str(v) for v in conn.execute(query).scalars()]


# ---------------------------------------------------------------------------------------------
# aggregates


@dataclass(frozen=True, slots=True)
class Bucket:
    """Time buckets of `size` seconds counted from `origin` (Unix seconds)."""

    size: int
    origin: float = 0.0

    def start(self, index: int) -> float:
        """Where bucket `index` begins."""
        return self.origin + index * self.size


HOUR: Final = 3600
DAY: Final = 86400
WEEK: Final = 7 * DAY
#: 1970-01-05T00:00Z was a Monday: weeks counted from it start on Mondays, as ISO weeks do
MONDAY_ORIGIN: Final = 4 * DAY


@dataclass(slots=True)
class Aggregate:
    """Sums and counts over a group of runs (and a time bucket), as SQL returned them."""

    key: tuple[str | None, ...] = ()
    bucket: int | None = None
    runs: int = 0  # every run, cancelled ones included
    successes: int = 0
    cancelled: int = 0
    statuses: dict[str, int] = field(default_factory=dict)  # runs per status, when asked for
    duration_sum: float = 0.0
    duration_max: float | None = None
    duration_percentiles: dict[float, float | None] = field(default_factory=dict)
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    token_runs: int = 0  # runs that reported any tokens
    cost_sum: float = 0.0
    cost_runs: int = 0  # runs whose cost is known
    llm_calls: int = 0
    llm_runs: int = 0
    tool_calls: int = 0
    tool_runs: int = 0
    confidence_sum: float = 0.0
    confidence_runs: int = 0
    quality_sum: float = 0.0
    quality_runs: int = 0
    first_ended_at: float | None = None
    last_ended_at: float | None = None

    @property
    def attempts(self) -> int:
        """Runs with a verdict: every run but the cancelled ones. The denominator of success rates."""
        return self.runs - self.cancelled

    @property
    def failures(self) -> int:
        """Failed runs (failure, error or timeout): attempts that did not succeed."""
        return self.attempts - self.successes

    def add(self, other: Aggregate) -> None:
        """Fold `other` into this one (percentiles are not additive and are dropped)."""
        self.runs += other.runs
        self.successes += other.successes
        self.cancelled += other.cancelled
        for status, count in other.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + count
        self.duration_sum += other.duration_sum
        if other.duration_max is not None:
            self.duration_max = max(self.duration_max or 0.0, other.duration_max)
        self.duration_percentiles = {}
        for name in _ADDITIVE:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        if other.first_ended_at is not None:
            self.first_ended_at = min(self.first_ended_at or other.first_ended_at, other.first_ended_at)
        if other.last_ended_at is not None:
            self.last_ended_at = max(self.last_ended_at or other.last_ended_at, other.last_ended_at)


_ADDITIVE: Final = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "token_runs",
    "cost_sum",
    "cost_runs",
    "llm_calls",
    "llm_runs",
    "tool_calls",
    "tool_runs",
    "confidence_sum",
    "confidence_runs",
    "quality_sum",
    "quality_runs",
)


def _bucket_index(dialect: str, bucket: Bucket) -> ColumnElement[Any]:
    scaled = (R.c.ended_at - literal_column(repr(float(bucket.origin)), Float)) / literal_column(
        str(int(bucket.size)), Integer
    )
    # CAST truncates toward zero on SQLite; callers keep ended_at >= origin, where that is floor
    return cast(func.floor(scaled), Integer) if dialect == "postgresql" else cast(scaled, Integer)


def _figure_columns(*, report: bool, span: bool) -> list[ColumnElement[Any]]:
    # Each aggregate costs about as much as reading the row on SQLite: keep the list lean, and
    # leave the per-status counts to their own query (`_status_counts`), which an index answers.
    c = R.c
    columns: list[ColumnElement[Any]] = [
        func.count().label("runs"),
        func.sum(case((c.status == Status.SUCCESS.value, 1), else_=0)).label("successes"),
        func.sum(case((c.status == Status.CANCELLED.value, 1), else_=0)).label("cancelled"),
        func.sum(c.duration_seconds).label("duration_sum"),
        func.sum(c.input_tokens).label("input_tokens"),
        func.sum(c.output_tokens).label("output_tokens"),
        # runs that reported any tokens: COUNT skips the rows where both are null
        func.count(func.coalesce(c.input_tokens, c.output_tokens)).label("token_runs"),
        func.sum(c.cost_usd).label("cost_sum"),
        func.count(c.cost_usd).label("cost_runs"),
    ]
    if not report:  # the report reads only what ix_runs_report covers, and needs no more
        columns += [
            func.max(c.duration_seconds).label("duration_max"),
            func.sum(c.cache_read_tokens).label("cache_read_tokens"),
            func.sum(c.cache_write_tokens).label("cache_write_tokens"),
            func.sum(c.reasoning_tokens).label("reasoning_tokens"),
            func.sum(c.llm_calls).label("llm_calls"),
            func.count(c.llm_calls).label("llm_runs"),
            func.sum(c.tool_calls).label("tool_calls"),
            func.count(c.tool_calls).label("tool_runs"),
        ]
    if span:
        columns += [func.min(c.ended_at).label("first_ended_at"), func.max(c.ended_at).label("last_ended_at")]
    return columns


def _aggregate_from_row(row: RowMapping, by: Sequence[str], bucketed: bool) -> Aggregate:
    def num(name: str) -> float:
        value = row.get(name)
        return float(value) if value is not None else 0.0

    def count(name: str) -> int:
        value = row.get(name)
        return int(value) if value is not None else 0

    return Aggregate(
        key=tuple(row[f"g_{name}"] for name in by),
        bucket=int(row["bucket_index"]) if bucketed else None,
        runs=count("runs"),
        successes=count("successes"),
        cancelled=count("cancelled"),
        duration_sum=num("duration_sum"),
        duration_max=float(row["duration_max"]) if row.get("duration_max") is not None else None,
        input_tokens=count("input_tokens"),
        output_tokens=count("output_tokens"),
        cache_read_tokens=count("cache_read_tokens"),
        cache_write_tokens=count("cache_write_tokens"),
        reasoning_tokens=count("reasoning_tokens"),
        token_runs=count("token_runs"),
        cost_sum=num("cost_sum"),
        cost_runs=count("cost_runs"),
        llm_calls=count("llm_calls"),
        llm_runs=count("llm_runs"),
        tool_calls=count("tool_calls"),
        tool_runs=count("tool_runs"),
        confidence_sum=num("confidence_sum"),
        confidence_runs=count("confidence_runs"),
        quality_sum=num("quality_sum"),
        quality_runs=count("quality_runs"),
        first_ended_at=row.get("first_ended_at"),
        last_ended_at=row.get("last_ended_at"),
    )


GroupKey = tuple[tuple[str | None, ...], int | None]


def aggregate(
    conn: Connection,
    flt: RunFilter,
    *,
    by: Sequence[str] = (),
    bucket: Bucket | None = None,
    percentiles: bool = True,
    statuses: bool = True,
    report: bool = False,
) -> list[Aggregate]:
    """Figures per group of the dimensions `by` (and per time `bucket`), in one pass over the runs.

    With `percentiles`, duration p50/p95/p99 are added (linear interpolation, as `percentile_cont`);
    with `statuses`, the count of each status. With `report`, the report's figures: the sums of
    confidence and quality, and not the cache, reasoning and call counts. Groups come back ordered
    by bucket, then by run count, largest first.
    """
    dialect = conn.dialect.name
    if report and not percentiles and not statuses and bucket is None and tuple(by) == REPORT_CELLS:
        days = _rollup_days(dialect, flt)
        if days is not None:
            cells = _report_cells(conn, flt, days)
            if cells:
                _add_ratings(conn, flt, by, None, cells)
            cells.sort(key=lambda a: (-a.runs, [k or "" for k in a.key]))
            return cells
    keys: list[ColumnElement[Any]] = [R.c[name].label(f"g_{name}") for name in by]
    group_exprs: list[ColumnElement[Any]] = [R.c[name] for name in by]
    if bucket is not None:
        keys.append(_bucket_index(dialect, bucket).label("bucket_index"))
        group_exprs.append(literal_column("bucket_index"))
    # over everything, the first and last ended_at are two index probes (below), not two aggregates
    whole = not by and bucket is None
    columns = _figure_columns(report=report, span=not report and not whole)
    pg_percentiles = percentiles and dialect == "postgresql"
    if pg_percentiles:
        wanted = ",".join(repr(p) for p in PERCENTILES)
        columns.append(
            func.percentile_cont(literal_column(f"ARRAY[{wanted}]::float8[]"))
            .within_group(R.c.duration_seconds)
            .label("duration_percentiles")
        )
    # SQLite groups by sorting every row; for time buckets alone, a range scan per bucket of the
    # covering index is several times faster (and the buckets' order is the index's)
    sliced = bucket is not None and not by and dialect == "sqlite"
    indices = bucket_range(conn, flt, bucket) if sliced and bucket is not None else range(0)
    if sliced and bucket is not None:
        rows = _sliced(conn, flt, bucket, indices, lambda f: select(*columns).where(*f.conditions()))
    else:
        query = select(*keys, *columns).where(*flt.conditions())
        if group_exprs:
            query = query.group_by(*group_exprs)
        rows = list(conn.execute(query).mappings())
    rows = [row for row in rows if row["runs"]]
    result = [_aggregate_from_row(row, by, bucket is not None) for row in rows]
    if pg_percentiles:
        for agg, row in zip(result, rows, strict=True):
            values = row["duration_percentiles"] or [None] * len(PERCENTILES)
            agg.duration_percentiles = dict(zip(PERCENTILES, values, strict=True))
    elif percentiles and result:
        if not by and bucket is None:
            result[0].duration_percentiles = _sqlite_percentiles_walk(conn, flt, result[0].runs)
        else:
            if sliced and bucket is not None:
                found = _interpolated(
                    _sliced(conn, flt, bucket, indices, lambda f: _near_percentiles((), f, None)), ()
                )
            else:
                found = _interpolated(conn.execute(_near_percentiles(by, flt, bucket)).mappings(), by)
            for agg in result:
                agg.duration_percentiles = found.get((agg.key, agg.bucket), {})
    if whole and not report and result:
        first = select(R.c.ended_at).where(*flt.conditions())
        result[0].first_ended_at = conn.execute(first.order_by(R.c.ended_at).limit(1)).scalar()
        result[0].last_ended_at = conn.execute(first.order_by(R.c.ended_at.desc()).limit(1)).scalar()
    if report and result:
        _add_ratings(conn, flt, by, bucket, result)
    if statuses and result:
        if sliced and bucket is not None:
            per_bucket = _sliced(
                conn,
                flt,
                bucket,
                indices,
                lambda f: (
                    select(R.c.status, func.count().label("n")).where(*f.conditions()).group_by(R.c.status)
                ),
            )
            counts: dict[GroupKey, dict[str, int]] = defaultdict(dict)
            for row in per_bucket:
                counts[((), int(row["bucket_index"]))][row["status"]] = int(row["n"])
        else:
            counts = _status_counts(conn, flt, by, bucket)
        for agg in result:
            agg.statuses = counts.get((agg.key, agg.bucket), {})
    result.sort(key=lambda a: (a.bucket if a.bucket is not None else 0, -a.runs, [k or "" for k in a.key]))
    return result


#: the groups of the report, which the SQLite rollup (`schema.run_rollup`) keeps per day
REPORT_CELLS: Final = ("agent", "model", "issue_type")
RU: Final = schema.run_rollup
_DAY: Final = schema.ROLLUP_DAY_SECONDS


def _day_of(column: ColumnElement[Any]) -> ColumnElement[Any]:
    # the same expression as the rollup's triggers (migration 0003), so a run is in the same day
    return cast(column / literal_column(str(_DAY), Integer), Integer)


def _rollup_days(dialect: str, flt: RunFilter) -> tuple[int | None, int | None] | None:
    """The whole days [first, last) of `flt`'s range that the rollup answers (None: open-ended),
    or None when it cannot answer (PostgreSQL, a filter it does not key on, no whole day inside).

    The days keep a second away from the range's ends: a run whose ended_at is within rounding of
    a midnight is in the day the triggers' division put it in, and inside the range either way.
    """
    if dialect != "sqlite" or any(name not in schema.ROLLUP_KEYS for name, _ in flt.dimensions):
        return None
    first = math.ceil((flt.start + 1) / _DAY) if flt.start is not None else None
    last = math.floor((flt.end - 1) / _DAY) if flt.end is not None else None
    if first is not None and last is not None and first >= last:
        return None
    return first, last


def _report_cells(conn: Connection, flt: RunFilter, days: tuple[int | None, int | None]) -> list[Aggregate]:
    """The report's figures per (agent, model, issue_type): whole days from the rollup, the partial
    days at the range's ends from the runs."""
    first, last = days
    wanted: list[ColumnElement[bool]] = []
    for name, values in flt.dimensions:
        wanted.append(RU.c[name] == values[0] if len(values) == 1 else RU.c[name].in_(values))
    if first is not None:
        wanted.append(RU.c.day >= first)
    if last is not None:
        wanted.append(RU.c.day < last)
    query = (
        select(
            RU.c.agent,
            RU.c.model,
            RU.c.issue_type,
            RU.c.status,
            func.sum(RU.c.runs).label("runs"),
            func.sum(RU.c.duration_sum).label("duration_sum"),
            func.sum(RU.c.input_tokens).label("input_tokens"),
            func.sum(RU.c.output_tokens).label("output_tokens"),
            func.sum(RU.c.token_runs).label("token_runs"),
            func.sum(RU.c.cost_sum).label("cost_sum"),
            func.sum(RU.c.cost_runs).label("cost_runs"),
        )
        .where(*wanted)
        .group_by(RU.c.agent, RU.c.model, RU.c.issue_type, RU.c.status)
    )
    cells: dict[tuple[str | None, ...], Aggregate] = {}

    def merge(cell: Aggregate) -> None:
        if cell.key in cells:
            cells[cell.key].add(cell)
        else:
            cells[cell.key] = cell

    for row in conn.execute(query).mappings():
        runs = int(row["runs"])
        if runs <= 0:
            continue
        key = (row["agent"], row["model"] or None, row["issue_type"] or None)
        merge(
            Aggregate(
                key=key,
                runs=runs,
                successes=runs if row["status"] == Status.SUCCESS.value else 0,
                cancelled=runs if row["status"] == Status.CANCELLED.value else 0,
                duration_sum=float(row["duration_sum"]),
                input_tokens=int(row["input_tokens"]),
                output_tokens=int(row["output_tokens"]),
                token_runs=int(row["token_runs"]),
                cost_sum=float(row["cost_sum"]),
                cost_runs=int(row["cost_runs"]),
            )
        )
    # the ends of the range outside the whole days, from the runs themselves
    day = _day_of(R.c.ended_at)
    edges: list[tuple[RunFilter, ColumnElement[bool]]] = []
    if first is not None:
        edges.append((flt.narrowed(end=first * _DAY + 1.0), day < first))
    if last is not None:
        edges.append((flt.narrowed(start=last * _DAY - 1.0), day >= last))
    keys = [R.c[name].label(f"g_{name}") for name in REPORT_CELLS]
    for part, condition in edges:
        raw = (
            select(*keys, *_figure_columns(report=True, span=False))
            .where(*part.conditions(), condition)
            .group_by(*(R.c[name] for name in REPORT_CELLS))
        )
        for row in conn.execute(raw).mappings():
            if not row["runs"]:
                continue
            merge(_aggregate_from_row(row, REPORT_CELLS, False))
    return list(cells.values())


def _add_ratings(
    conn: Connection, flt: RunFilter, by: Sequence[str], bucket: Bucket | None, result: list[Aggregate]
) -> None:
    """Sums of confidence and quality per group, from the partial index of the runs that have any:
    free when no agent reports them."""
    keys: list[ColumnElement[Any]] = [R.c[name].label(f"g_{name}") for name in by]
    group_exprs: list[ColumnElement[Any]] = [R.c[name] for name in by]
    if bucket is not None:
        keys.append(_bucket_index(conn.dialect.name, bucket).label("bucket_index"))
        group_exprs.append(literal_column("bucket_index"))
    query = select(
        *keys,
        func.sum(R.c.confidence).label("confidence_sum"),
        func.count(R.c.confidence).label("confidence_runs"),
        func.sum(R.c.quality_score).label("quality_sum"),
        func.count(R.c.quality_score).label("quality_runs"),
    ).where(*flt.conditions(), text(f"({schema.RATED})"))
    if group_exprs:
        query = query.group_by(*group_exprs)
    index = {(a.key, a.bucket): a for a in result}
    for row in conn.execute(query).mappings():
        bucket_index = row.get("bucket_index")
        agg = index.get(
            (tuple(row[f"g_{name}"] for name in by), None if bucket_index is None else int(bucket_index))
        )
        if agg is not None:
            agg.confidence_sum = float(row["confidence_sum"] or 0.0)
            agg.confidence_runs = int(row["confidence_runs"])
            agg.quality_sum = float(row["quality_sum"] or 0.0)
            agg.quality_runs = int(row["quality_runs"])


def _status_counts(
    conn: Connection, flt: RunFilter, by: Sequence[str], bucket: Bucket | None
) -> dict[GroupKey, dict[str, int]]:
    """Runs per status in each group."""
    if not by and bucket is None:
        # one count per status, each a range of the (status, ended_at) index: no scan of the rest
        per_status = union_all(
            *(
                select(literal(status.value).label("status"), func.count().label("n")).where(
                    *flt.conditions(), R.c.status == status.value
                )
                for status in Status
            )
        )
        found = {row.status: int(row.n) for row in conn.execute(per_status) if row.n}
        return {((), None): found}
    keys: list[ColumnElement[Any]] = [R.c[name].label(f"g_{name}") for name in by]
    group_exprs: list[ColumnElement[Any]] = [R.c[name] for name in by]
    if bucket is not None:
        keys.append(_bucket_index(conn.dialect.name, bucket).label("bucket_index"))
        group_exprs.append(literal_column("bucket_index"))
    query = (
        select(*keys, R.c.status, func.count().label("n"))
        .where(*flt.conditions())
        .group_by(*group_exprs, R.c.status)
    )
    out: dict[GroupKey, dict[str, int]] = defaultdict(dict)
    for row in conn.execute(query).mappings():
        key = (tuple(row[f"g_{name}"] for name in by), int(row["bucket_index"]) if bucket else None)
        out[key][row["status"]] = int(row["n"])
    return out


def _sqlite_percentiles_walk(conn: Connection, flt: RunFilter, n: int) -> dict[float, float | None]:
    """Duration percentiles of all the filtered runs, `n` of them, without sorting them.

    `ORDER BY duration_seconds LIMIT 2 OFFSET k` walks the (duration_seconds, ended_at) index in
    order and stops at rank k: a few milliseconds where ranking every run takes a second. High
    percentiles walk down from the top, so that p99 reads 1 % of the index, not 99 %.
    """
    out: dict[float, float | None] = {}
    for p in PERCENTILES:
        rank, _ = percentile_rank(n, p)
        last = min(rank + 1, n)
        if rank <= n - rank:
            query = select(R.c.duration_seconds).where(*flt.conditions())
            query = query.order_by(R.c.duration_seconds).offset(rank - 1).limit(last - rank + 1)
            values = [float(v) for v in conn.execute(query).scalars()]
        else:
            query = select(R.c.duration_seconds).where(*flt.conditions())
            query = query.order_by(R.c.duration_seconds.desc()).offset(n - last).limit(last - rank + 1)
            values = [float(v) for v in conn.execute(query).scalars()][::-1]
        out[p] = interpolate(n, p, dict(zip(range(rank, last + 1), values, strict=False)))
    return out


def _near_percentiles(by: Sequence[str], flt: RunFilter, bucket: Bucket | None) -> Select[Any]:
    """The rows on either side of each percentile of each group (at most six a group), found by
    ranking the durations of each group with window functions."""
    partition: list[ColumnElement[Any]] = [R.c[name] for name in by]
    keys: list[ColumnElement[Any]] = [R.c[name].label(f"g_{name}") for name in by]
    if bucket is not None:
        index = _bucket_index("sqlite", bucket)
        partition.append(index)
        keys.append(index.label("bucket_index"))
    ranked = (
        select(
            *keys,
            R.c.duration_seconds.label("v"),
            func.row_number().over(partition_by=partition or None, order_by=R.c.duration_seconds).label("rn"),
            func.count().over(partition_by=partition or None).label("n"),
        )
        .where(*flt.conditions())
        .subquery()
    )
    near: list[ColumnElement[bool]] = []
    for p in PERCENTILES:
        # rank of the lower neighbour, as analytics.percentile_rank computes it
        lower = cast((ranked.c.n - 1) * p, Integer) + 1
        near += [ranked.c.rn == lower, ranked.c.rn == lower + 1]
    return select(*(ranked.c[k.name] for k in keys), ranked.c.v, ranked.c.rn, ranked.c.n).where(or_(*near))


def _interpolated(rows: Iterable[RowMapping], by: Sequence[str]) -> dict[GroupKey, dict[float, float | None]]:
    grouped: dict[GroupKey, tuple[int, dict[int, float]]] = {}
    for row in rows:
        bucket = row.get("bucket_index")
        key = (tuple(row[f"g_{name}"] for name in by), int(bucket) if bucket is not None else None)
        _, values = grouped.setdefault(key, (int(row["n"]), {}))
        values[int(row["rn"])] = float(row["v"])
    return {key: {p: interpolate(n, p, values) for p in PERCENTILES} for key, (n, values) in grouped.items()}


_SLICES_PER_STATEMENT: Final = 200  # SQLite allows 500 terms in a compound SELECT


def _sliced(
    conn: Connection,
    flt: RunFilter,
    bucket: Bucket,
    indices: range,
    make: Callable[[RunFilter], Select[Any]],
) -> list[RowMapping]:
    """`make`'s query run on each bucket's range of `flt`, as UNION ALL, tagged `bucket_index`."""
    rows: list[RowMapping] = []
    for first in range(indices.start, indices.stop, _SLICES_PER_STATEMENT):
        parts = [
            make(flt.narrowed(bucket.start(i), bucket.start(i + 1))).add_columns(
                literal_column(str(i), Integer).label("bucket_index")
            )
            for i in range(first, min(first + _SLICES_PER_STATEMENT, indices.stop))
        ]
        statement = union_all(*parts) if len(parts) > 1 else parts[0]
        rows += conn.execute(statement).mappings()
    return rows


def bucket_range(conn: Connection, flt: RunFilter, bucket: Bucket) -> range:
    """The indices of the buckets that `flt`'s time range (or else its runs) covers."""
    start, end = flt.start, flt.end
    if start is None or end is None:
        span = time_span(conn, flt)
        if span is None:
            return range(0)
        start = span[0] if start is None else start
        end = math.nextafter(span[1], math.inf) if end is None else end
    first = math.floor((start - bucket.origin) / bucket.size)
    last = math.ceil((end - bucket.origin) / bucket.size) - 1
    return range(first, max(first, last + 1))


def time_span(conn: Connection, flt: RunFilter) -> tuple[float, float] | None:
    """The first and last `ended_at` among the filtered runs, or None when there are none."""
    # two probes of an ended_at index: min() and max() together, under a WHERE, scan the range
    first = select(R.c.ended_at).where(*flt.conditions())
    low = conn.execute(first.order_by(R.c.ended_at).limit(1)).scalar()
    if low is None:
        return None
    high = conn.execute(first.order_by(R.c.ended_at.desc()).limit(1)).scalar_one()
    return float(low), float(high)


# ---------------------------------------------------------------------------------------------
# health facts


def latest_run(conn: Connection, flt: RunFilter, *, failed: bool = False) -> RowMapping | None:
    """The newest run (with `failed`, the newest failed one: failure, error or timeout), or None."""
    query = select(*(R.c[name] for name in LIST_COLUMNS)).where(*flt.conditions())
    if failed:
        query = query.where(R.c.status.in_(FAILED))
    query = query.order_by(R.c.ended_at.desc(), R.c.run_id.desc()).limit(1)
    return conn.execute(query).mappings().first()


@dataclass(frozen=True, slots=True)
class Streak:
    """An agent's unbroken run of failures up to its most recent run, cancelled runs aside."""

    agent: str
    failures: int
    since: float  # ended_at of the first failure of the streak
    last: float  # ended_at of the most recent failure
    error_types: list[str]
    bounded: bool  # no success inside the period looked at: the streak may be longer
    cancelled: int = 0  # cancelled runs since the last success: they neither break nor extend it


def failure_streaks(
    conn: Connection, flt: RunFilter, *, agents: Sequence[str], min_failures: int
) -> list[Streak]:
    """Those of `agents` whose latest runs all failed, `min_failures` or more in a row, within
    `flt`'s range.

    A cancelled run is ignored: someone stopped it, which says nothing about whether the agent
    works, so it neither breaks a streak (it is not a success) nor extends it (it is not a
    failure), as the failure-rate alerts leave it out of both sides of their ratio.

    Per agent, two index walks: back from the newest run to its last success, then a count of the
    failed and the cancelled runs after it (nothing else can follow the last success). An agent
    with no success in range has every failed run in range counted, and the streak is marked as
    possibly longer.
    """
    is_failed = R.c.status.in_(FAILED)
    streaks = []
    for agent in agents:
        mine = [*flt.conditions(), R.c.agent == agent]
        last_ok = conn.execute(
            select(R.c.ended_at)
            .where(*mine, R.c.status == Status.SUCCESS.value)
            .order_by(R.c.ended_at.desc())
            .limit(1)
        ).scalar()
        after = [*mine, R.c.ended_at > last_ok] if last_ok is not None else mine
        count, cancelled, since, last = conn.execute(
            select(
                func.sum(case((is_failed, 1), else_=0)),
                func.sum(case((R.c.status == Status.CANCELLED.value, 1), else_=0)),
                func.min(case((is_failed, R.c.ended_at))),
                func.max(case((is_failed, R.c.ended_at))),
            ).where(*after)
        ).one()
        if not count or count < min_failures:
            continue
        type_query = (
            select(R.c.error_type)
            .where(*after, is_failed, R.c.error_type.is_not(None))
            .group_by(R.c.error_type)
            .order_by(func.count().desc(), R.c.error_type)
            .limit(5)
        )
        streaks.append(
            Streak(
                agent=agent,
                failures=int(count),
                since=float(since),
                last=float(last),
                error_types=list(conn.execute(type_query).scalars()),
                bounded=last_ok is None,
                cancelled=int(cancelled or 0),
            )
        )
    return sorted(streaks, key=lambda s: (-s.failures, s.agent))


@dataclass(frozen=True, slots=True)
class ErrorGroup:
    """The failed runs (failure, error, timeout) sharing one `error_type` (None: failed runs that
    gave no type). Cancelled runs are not failures and are not grouped."""

    error_type: str | None
    runs: int
    agents: int
    first_seen: float
    last_seen: float
    statuses: dict[str, int]
    latest_run_id: str
    latest_agent: str
    latest_summary: str | None


def error_groups(conn: Connection, flt: RunFilter, *, limit: int) -> list[ErrorGroup]:
    """Failed runs grouped by `error_type`, most frequent first, each with its newest example."""
    failed = [*flt.conditions(), R.c.status.in_(FAILED)]
    counts = (
        select(
            R.c.error_type,
            func.count().label("runs"),
            func.count(R.c.agent.distinct()).label("agents"),
            func.min(R.c.ended_at).label("first_seen"),
            func.max(R.c.ended_at).label("last_seen"),
            *(func.sum(case((R.c.status == status, 1), else_=0)).label(f"n_{status}") for status in FAILED),
        )
        .where(*failed)
        .group_by(R.c.error_type)
        .order_by(func.count().desc(), R.c.error_type)
        .limit(limit)
    )
    rows = list(conn.execute(counts).mappings())
    if not rows:
        return []
    ranked = (
        select(
            R.c.error_type,
            R.c.run_id,
            R.c.agent,
            R.c.error_summary,
            func.row_number()
            .over(partition_by=R.c.error_type, order_by=(R.c.ended_at.desc(), R.c.run_id.desc()))
            .label("rn"),
        )
        .where(*failed)
        .subquery()
    )
    latest = {
        row.error_type: row
        for row in conn.execute(select(ranked).where(ranked.c.rn == 1))
        if row.error_type in {r["error_type"] for r in rows}
    }
    groups = []
    for row in rows:
        example = latest[row["error_type"]]
        groups.append(
            ErrorGroup(
                error_type=row["error_type"],
                runs=int(row["runs"]),
                agents=int(row["agents"]),
                first_seen=float(row["first_seen"]),
                last_seen=float(row["last_seen"]),
                statuses={s: int(row[f"n_{s}"]) for s in FAILED if row[f"n_{s}"]},
                latest_run_id=example.run_id,
                latest_agent=example.agent,
                latest_summary=example.error_summary,
            )
        )
    return groups
